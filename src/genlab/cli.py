"""The ``genlab`` command.

Verbs are shared across families (``train``, ``sample``, ``eval``, ``convert``, ``data``, ``tour``); each family
adds its own sub-commands in its ``cli.py`` through :class:`Commands`. Family modules import their heavy parts
inside the handlers, so ``genlab --help`` stays quick. Any :class:`GenlabError` ends the program with one line on
stderr and exit code 2 — never a traceback for a user's mistake.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from . import __version__
from .errors import GenlabError


@dataclass
class Commands:
    """Where a family plugs in: sub-parsers per verb, weight converters, and tour sections."""

    top: argparse._SubParsersAction
    data: argparse._SubParsersAction
    train: argparse._SubParsersAction
    sample: argparse._SubParsersAction
    eval: argparse._SubParsersAction
    # name -> fn(input_path, output_dir, args) used by `genlab convert --from NAME IN --out DIR`
    converters: dict[str, Callable] = field(default_factory=dict)
    # fn(out_dir: Path, quick: bool) -> html fragment, in the order they appear in the report
    tour_sections: list[Callable] = field(default_factory=list)


def _families() -> list:
    # Explicit imports, no lookup by string: adding a family is one line here.
    from .asr import cli as asr_cli
    from .asr import train_cli as asr_train_cli
    from .data import cli as data_cli
    from .diffusion import cli as diffusion_cli

    return [data_cli, diffusion_cli, asr_cli, asr_train_cli]


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
    )
    for family in _families():
        family.register(commands)

    convert = top.add_parser("convert", help="convert published weights into a genlab checkpoint")
    convert.add_argument("--from", dest="source_format", required=True, choices=sorted(commands.converters))
    convert.add_argument("input", help="the published checkpoint (file or directory)")
    convert.add_argument("--out", required=True, help="directory for the genlab checkpoint")
    convert.set_defaults(handler=lambda args: commands.converters[args.source_format](args.input, args.out, args))

    tour = top.add_parser("tour", help="exercise every bundled model and write an HTML report")
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
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
