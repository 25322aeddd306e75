"""Training and sampling end to end on the tiny preset, provenance in the files, and bad input: one line, exit 2."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.video.pipeline import generate, load, read_clip
from genlab.video.task import PRESETS, VideoTask, step_length


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, video_cache):
    out = tmp_path_factory.mktemp("run") / "tiny"
    assert main(["train", "video", "--preset", "tiny", "--out", str(out)]) == 0
    return out


def _cli(*args):
    """The real console entry point in a subprocess: what a user sees."""
    return subprocess.run([sys.executable, "-m", "genlab.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_bundled_presets_differ_only_in_temporal_attention():
    """The benchmark compares joint and frame-by-frame denoising: nothing else may differ between the two runs."""
    joint, frames = PRESETS["sprites-video"], PRESETS["sprites-video-frames"]
    assert joint.model.unet.temporal and not frames.model.unet.temporal
    assert replace(joint.model, unet=replace(joint.model.unet, temporal=False)) == frames.model
    assert joint.train == frames.train


def test_task_cuts_clips_into_every_length(video_cache):
    torch.manual_seed(0)
    task = VideoTask(PRESETS["tiny"].model)
    lengths = set()
    for first in range(12):
        batch = task.batch(torch.tensor([first, 50]))
        L = step_length(torch.tensor([first, 50]), (2, 4))
        assert batch.shape == (2 * 4 // L, 3, L, 32, 32) and batch.dtype == torch.uint8
        lengths.add(L)
        loss, metrics = task.loss(batch, "main")
        assert torch.isfinite(loss) and metrics["loss"] > 0
    assert lengths == {2, 4}
    # Pieces of one clip, in order: the 2-frame pieces of a 4-frame clip glue back into it.
    whole = task.batch(torch.tensor([next(i for i in range(12) if step_length(torch.tensor([i]), (2, 4)) == 4), 7]))
    first = next(i for i in range(12) if step_length(torch.tensor([i]), (2, 4)) == 2)
    assert task.batch(torch.tensor([first, 7]))[2:].transpose(0, 1).reshape(3, 4, 32, 32).equal(whole[1])


def test_sample_gif_with_provenance_and_same_seed(tiny_run, tmp_path):
    out = tmp_path / "clips" / "a.gif"
    assert main(["sample", "video", "--model", str(tiny_run), "--frames", "3", "--n", "2", "--steps", "3",
                 "--seed", "9", "--out", str(out)]) == 0
    frames, info = read_clip(out)
    assert frames.shape[0] == 3 and info["frames"] == 3 and info["seed"] == 9 and len(info["weights_hash"]) == 16
    assert json.loads((tmp_path / "clips" / "a.gif.json").read_text()) == info
    loaded = load(str(tiny_run))
    a = generate(loaded.model, loaded.cfg, n=2, frames=4, sampler="dpmpp-2m", steps=3, seed=1)
    b = generate(loaded.model, loaded.cfg, n=2, frames=4, sampler="dpmpp-2m", steps=3, seed=1)
    assert a.shape == (2, 3, 4, 32, 32) and torch.equal(a, b)


def test_sample_mp4(tiny_run, tmp_path):
    pytest.importorskip("av")
    out = tmp_path / "a.mp4"
    assert main(["sample", "video", "--model", str(tiny_run), "--n", "1", "--steps", "2", "--out", str(out)]) == 0
    frames, info = read_clip(out)
    assert frames.shape[0] == 4 and info["frames"] == 4


def test_eval_writes_report(tiny_run, tmp_path):
    out = tmp_path / "report.json"
    assert main(["eval", "video", "--model", str(tiny_run), "--lengths", "2,4", "--n", "2", "--steps", "2",
                 "--no-fid", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    row = report["by_length"]["4"]
    assert row["real_train_sprites"]["permanence"] == 1 and row["real_held_out_sprites"]["count"] == 1
    assert set(row["generated"]) >= {"count", "identity", "permanence", "jerk"}


@pytest.mark.parametrize("args, message", [
    (["--frames", "0"], "--frames 0: a clip needs at least 1 frame"),
    (["--frames", "5"], "longer clips are refused, not extrapolated"),
    (["--out", "/proc/no/such/dir/a.gif"], "cannot write /proc/no/such/dir/a.gif"),
    (["--out", "clip.png"], "the clip format is chosen by the suffix"),
])
def test_bad_input_is_one_line(tiny_run, tmp_path, capsys, args, message):
    code = main(["sample", "video", "--model", str(tiny_run), "--steps", "2", "--out", str(tmp_path / "a.gif"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a.gif").exists()


@pytest.mark.parametrize("blocker, out, message", [
    ("a.gif/", "a.gif", "a.gif is a directory"),  # a directory where the clip goes
    ("a.gif.json/", "a.gif", "a.gif.json is a directory"),  # ... or where its sidecar goes
    ("file", "file/a.gif", "file is a file, not a directory"),  # a file where a parent directory goes
])
def test_unwritable_output_is_refused_before_sampling(tiny_run, tmp_path, capsys, monkeypatch, blocker, out,
                                                      message):
    from genlab.video import pipeline

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled before checking the output")

    monkeypatch.setattr(pipeline, "generate", no_sampling)
    if blocker.endswith("/"):
        (tmp_path / blocker).mkdir()
    else:
        (tmp_path / blocker).write_text("")
    code = main(["sample", "video", "--model", str(tiny_run), "--steps", "2", "--out", str(tmp_path / out)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_what_a_user_sees(tiny_run, tmp_path):
    result = _cli("sample", "video", "--model", str(tiny_run), "--frames", "9", "--out", str(tmp_path / "a.gif"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("genlab: error: --frames 9: this model makes 1 to 4 frames (it was trained on "
                                     "clips of up to 4; longer clips are refused, not extrapolated)")


@pytest.mark.parametrize("args, message", [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--preset", "tiny", "model.clip_lengths=3"], "each must divide unet.frames=4"),
    (["--preset", "tiny", "model.data.bar_width=6"], "bar_width=6 must exceed"),
])
def test_bad_training_input_is_one_line(capsys, tmp_path, args, message):
    assert main(["train", "video", "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_data_command_writes_clips_with_their_truth(video_cache, tmp_path):
    out = tmp_path / "truth.gif"
    assert main(["data", "sprite-clips", "--preset", "tiny", "--frames", "4", "--n", "2", "--out", str(out)]) == 0
    frames, info = read_clip(out)
    assert frames.shape[0] == 4 and len(info["clips"]) == 2 and info["license"] == "CC BY-SA 4.0"
    assert len(info["clips"][0]["positions_xy"]) == 4 and len(info["clips"][0]["sprites"]) == 2


def test_tour_section_shows_both_models_and_their_scores(tiny_run, tmp_path, monkeypatch):
    """The tour's video section on the tiny run standing in for both bundled models: the GIFs it names exist and
    the score table has the rendered clips' row and one row per model."""
    from genlab.video import tour

    real_load = tour.load
    monkeypatch.setattr(tour, "load", lambda name: real_load(str(tiny_run)))
    html = tour.video_section(tmp_path, quick=True)
    for name in ("real", *tour.MODELS):
        assert (tmp_path / "video" / f"{name}.gif").stat().st_size > 0
        assert f"video/{name}.gif" in html
    assert html.count("<tr>") == 1 + 1 + len(tour.MODELS)  # header, rendered clips, the two models
    assert "rendered clips (ceiling)" in html


def test_tour_section_says_in_one_line_when_the_models_are_not_trained(tmp_path, monkeypatch):
    from genlab.models import ASSETS
    from genlab.video import tour

    if (ASSETS / "sprites-video").exists():
        pytest.skip("sprites-video is bundled in this install")
    with pytest.raises(GenlabError, match="not installed on this machine: train it"):
        tour.video_section(tmp_path, quick=True)
