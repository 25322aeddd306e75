"""The shared CLI: one train command for every family, one meaning of --fresh, and a tour that says what it does."""

import json
import re

from genlab.tour import write_tour


def _section(name, seen, capsys):
    def section(out_dir, quick):
        seen.append(capsys.readouterr().out)  # what the user has seen when the section starts
        return f"<h2>{name}</h2>"

    section.__module__ = f"genlab.{name}.cli"
    return section


def test_tour_announces_each_section_before_running_it_and_times_it(tmp_path, capsys):
    seen = []
    write_tour(tmp_path, [_section("alpha", seen, capsys), _section("beta", seen, capsys)], quick=True)
    assert re.search(r"alpha.*start", seen[0]) and not re.search(r"beta.*start", seen[0])
    assert re.search(r"alpha.* done in \d+\.\d s", seen[1]) and re.search(r"beta.*start", seen[1])
    assert re.search(r"beta.* done in \d+\.\d s", capsys.readouterr().out)


TINY = ["--preset", "digits", "model.unet.channels=8,16", "model.unet.norm_groups=4", "model.unet.head_dim=8",
        "train.batch_size=8", "train.threads=1", "train.progress=false", "train.steps=2", "train.ckpt_every=0"]


def test_every_family_trains_with_the_same_flags():
    from genlab.cli import FRESH_HELP, build_parser

    _, commands = build_parser()
    assert {"diffusion", "asr"} <= set(commands.train.choices)
    for family, parser in commands.train.choices.items():
        actions = {a.dest: a for a in parser._actions}
        assert {"preset", "out", "fresh", "overrides"} <= set(actions), family
        assert actions["fresh"].help == FRESH_HELP and actions["overrides"].nargs == "*", family


def _steps_logged(run):
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_fresh_moves_the_previous_run_aside_and_starts_over(tmp_path, capsys, monkeypatch):
    from genlab.cli import main

    run = tmp_path / "run"
    assert main(["train", "diffusion", "--out", str(run), *TINY]) == 0
    first = (run / "checkpoints" / "step_0000002" / "model.safetensors").read_bytes()
    # Without --fresh, another model config in the same directory is refused, and nothing moves.
    assert main(["train", "diffusion", "--out", str(run), *TINY, "model.unet.channels=16,32"]) == 2
    assert "--fresh" in capsys.readouterr().err and not (tmp_path / "run.previous-1").exists()
    # With --fresh: the old run is kept whole beside, the new one starts at step 0.
    assert main(["train", "diffusion", "--out", str(run), "--fresh", *TINY, "model.unet.channels=16,32"]) == 0
    out = capsys.readouterr().out
    assert "resumed" not in out and "run.previous-1" in out
    old = tmp_path / "run.previous-1"
    assert (old / "checkpoints" / "step_0000002" / "model.safetensors").read_bytes() == first
    assert _steps_logged(old) == [2] and _steps_logged(run) == [2]
    assert json.loads((run / "checkpoints" / "step_0000002" / "config.json").read_text())["config"]["unet"][
        "channels"] == [16, 32]
    assert main(["train", "diffusion", "--out", str(run), "--fresh", *TINY]) == 0
    assert (tmp_path / "run.previous-2" / "checkpoints").is_dir()
    # A bad override moves nothing; --fresh never moves the working directory (or one above it).
    assert main(["train", "diffusion", "--out", str(run), "--fresh", *TINY, "train.steps=-1"]) == 2
    assert not (tmp_path / "run.previous-3").exists()
    monkeypatch.chdir(run)
    assert main(["train", "diffusion", "--out", ".", "--fresh", *TINY]) == 2
    assert "a run directory of its own" in capsys.readouterr().err
