"""The ``genlab`` command.

Verbs are shared across families (``train``, ``sample``, ``eval``, ``convert``, ``data``, ``tour``); each family
adds its own sub-commands in its ``cli.py`` through :class:`Commands`. Family modules import their heavy parts
inside the handlers, so ``genlab --help`` stays quick. Any :class:`GenlabError` ends the program with one line on
stderr and exit code 2 — never a traceback for a user's mistake; a run stopped by SIGINT / SIGTERM
(:class:`Interrupted`) exits 130 / 143 after saving.

Every family trains the same way, ``genlab train FAMILY --preset NAME [--out DIR] [--fresh] key=value ...``: a
family's ``register`` calls :func:`add_train_command` (the flags are defined there, once) and its handler calls
:func:`run_directory` for the run directory with ``--fresh`` applied.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import GenlabError, Interrupted


@dataclass
class Commands:
    """Where a family plugs in: sub-parsers per verb, weight converters, and tour sections."""

    top: argparse._SubParsersAction
    data: argparse._SubParsersAction
    train: argparse._SubParsersAction
    sample: argparse._SubParsersAction
    eval: argparse._SubParsersAction
    generate: argparse._SubParsersAction  # genlab generate MODALITY (text, image, ...)
    # name -> fn(input_path, output_dir, args) used by `genlab convert --from NAME IN --out DIR`
    converters: dict[str, Callable] = field(default_factory=dict)
    # fn(out_dir: Path, quick: bool) -> html fragment, in the order they appear in the report
    tour_sections: list[Callable] = field(default_factory=list)


FRESH_HELP = (
    "start over: a run already in --out (its checkpoints, metrics, samples, configs) is moved aside to "
    "OUT.previous-N, never deleted, and training starts from step 0. Without --fresh, training resumes from the "
    "run in --out (refused in one line if its model config differs from this one)"
)


def add_train_command(commands: Commands, family: str, *, help: str, presets: Iterable[str], default: str,
                      handler: Callable) -> argparse.ArgumentParser:
    """``genlab train FAMILY --preset NAME [--out DIR] [--fresh] key=value ...``: the same flags for every family.

    ``handler(args)`` gets ``args.preset``, ``args.out``, ``args.fresh`` and ``args.overrides``; it builds the run
    config (``apply_overrides``) before it calls :func:`run_directory`, so a bad override moves nothing aside.
    """
    names = list(presets)
    p = commands.train.add_parser(family, help=help, description=(
        f"{help}. Rerunning with the same --out resumes exactly; --fresh starts over, moving the previous run aside "
        "to OUT.previous-N (never deleting it)."))
    p.add_argument("--preset", default=default, help=f"{' | '.join(names)} (default {default})")
    p.add_argument("--out", default=None,
                   help=f"run directory (default runs/{family}-PRESET); rerunning with the same --out resumes")
    p.add_argument("--fresh", action="store_true", help=FRESH_HELP)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="typed, dotted overrides of the preset, e.g. train.steps=500 train.precision=bf16")
    p.set_defaults(handler=handler)
    return p


def run_directory(args: argparse.Namespace, family: str) -> Path:
    """The run directory of a ``genlab train`` command (``--out``, default ``runs/FAMILY-PRESET``), with ``--fresh``
    applied: a previous run in it is moved aside to the first free ``OUT.previous-N``."""
    out = Path(args.out or f"runs/{family}-{args.preset}")
    if args.fresh and out.is_dir() and any(out.iterdir()):
        if out.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
            raise GenlabError(f"--fresh moves the run in {out} aside: give --out a run directory of its own")
        n = 1
        while out.with_name(f"{out.name}.previous-{n}").exists():
            n += 1
        aside = out.with_name(f"{out.name}.previous-{n}")
        try:
            os.replace(out, aside)
        except OSError as e:
            raise GenlabError(f"--fresh: cannot move {out} aside to {aside}: {e.strerror}") from None
        print(f"--fresh: moved the previous run to {aside}")
    return out


def count_parameters(module) -> str:
    """``"1.23M"``: a module's parameters in millions, for the line a training starts with."""
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f}M"


def train_preset(args: argparse.Namespace, family: str, presets: dict, make_task: Callable,
                 describe: Callable | None = None) -> None:
    """The body of every ``genlab train FAMILY``: the preset with its overrides, the seed (the initial weights come
    from it), ``make_task(run)``, and only then the run directory (so a bad override or config moves nothing aside,
    see :func:`run_directory`); one line saying what trains (``describe(task)``, default: parameters and examples),
    the run recorded in the checkpoint's meta, and the trainer."""
    from .config import apply_overrides, pick_preset, to_dict
    from .train import Trainer, seed_everything

    run = apply_overrides(pick_preset(presets, args.preset), args.overrides)
    seed_everything(run.train.seed)
    task = make_task(run)
    out = run_directory(args, family)
    what = describe(task) if describe else f"{count_parameters(task.model)} parameters, {task.num_examples} examples"
    print(f"training {family} {args.preset}: {what}, run dir {out}")
    task.meta.update(preset=args.preset, run=to_dict(run))
    Trainer(task, run.train, out).fit()


def _families() -> list:
    # Explicit imports, no lookup by string: adding a family is one line here.
    from .asr import cli as asr_cli
    from .asr import train_cli as asr_train_cli
    from .clip import cli as clip_cli
    from .codec import cli as codec_cli
    from .data import cli as data_cli
    from .diffusion import cli as diffusion_cli
    from .gan import cli as gan_cli
    from .latent import cli as latent_cli
    from .lm import cli as lm_cli
    from .provenance import cli as provenance_cli
    from .tts import cli as tts_cli
    from .video import cli as video_cli

    return [
        data_cli, diffusion_cli, asr_cli, asr_train_cli, clip_cli, codec_cli, gan_cli, latent_cli, lm_cli, tts_cli,
        provenance_cli, video_cli,
    ]


def build_parser() -> tuple[argparse.ArgumentParser, Commands]:
    parser = argparse.ArgumentParser(prog="genlab", description="Learn a distribution, sample from it.")
    parser.add_argument("--version", action="version", version=f"genlab {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    top.required = True

    def verb(name: str, help: str) -> argparse._SubParsersAction:
        p = top.add_parser(name, help=help)
        sub = p.add_subparsers(dest="family", metavar="FAMILY")
        sub.required = True
        return sub

    commands = Commands(
        top=top,
        data=verb("data", "build and inspect the bundled datasets"),
        train=verb("train", "train a model with the shared trainer"),
        sample=verb("sample", "sample from a trained model"),
        eval=verb("eval", "measure a model (FID, WER, ...)"),
        generate=verb("generate", "generate from a model: text (a language model), image (text to image)"),
    )
    for family in _families():
        family.register(commands)

    convert = top.add_parser("convert", help="convert published weights into a genlab checkpoint")
    convert.add_argument("--from", dest="source_format", required=True, choices=sorted(commands.converters))
    convert.add_argument("input", help="the published checkpoint (file or directory)")
    convert.add_argument("--out", required=True, help="directory for the genlab checkpoint")
    convert.set_defaults(handler=lambda args: commands.converters[args.source_format](args.input, args.out, args))

    tour = top.add_parser("tour", help="exercise every bundled model and write an HTML report (prints a line as "
                                       "each section starts and ends)")
    tour.add_argument("--out", default="tour", help="output directory (default: tour)")
    tour.add_argument("--quick", action="store_true", help="fewer samples, for tests")

    def run_tour(args):
        from .tour import write_tour

        write_tour(args.out, commands.tour_sections, quick=args.quick)

    tour.set_defaults(handler=run_tour)
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except GenlabError as e:
        print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"genlab: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
