"""The diffusion CLI end to end on a tiny model, and every bad input giving one clear line and exit code 2."""

import json
import os
import subprocess
import sys

import pytest
import torch

from genlab.cli import main
from genlab.data.images import read_png_provenance

TINY = ["--preset", "digits", "model.unet.channels=8,16", "model.unet.norm_groups=4", "model.unet.head_dim=8",
        "train.batch_size=8", "train.threads=1", "train.progress=false", "train.steps=3", "train.ckpt_every=0"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "digits"
    assert main(["train", "diffusion", "--out", str(out), *TINY]) == 0
    return out


def _cli(*args):
    """Run the real console entry point in a subprocess: what a user sees."""
    return subprocess.run([sys.executable, "-m", "genlab.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_sample_writes_grid_and_singles_with_provenance(tiny_run, tmp_path):
    grid = tmp_path / "grid.png"
    code = main(["sample", "diffusion", "--model", str(tiny_run), "--sampler", "ddim", "--steps", "3", "--n", "4",
                 "--seed", "7", "--out", str(grid), "--save-each", str(tmp_path / "each")])
    assert code == 0
    info = read_png_provenance(grid)
    assert info["sampler"] == "ddim" and info["steps"] == 3 and info["seed"] == 7 and len(info["weights_hash"]) == 16
    singles = sorted((tmp_path / "each").glob("*.png"))
    assert len(singles) == 4 and read_png_provenance(singles[2])["index"] == 2


def test_same_seed_same_images(tiny_run):
    from genlab.diffusion.pipeline import generate, load

    loaded = load(str(tiny_run))
    a = generate(loaded.model, loaded.cfg, n=3, sampler="euler", steps=3, seed=5)
    b = generate(loaded.model, loaded.cfg, n=3, sampler="euler", steps=3, seed=5)
    c = generate(loaded.model, loaded.cfg, n=3, sampler="euler", steps=3, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("args, message", [
    (["train", "diffusion", "--preset", "nope"], "unknown preset 'nope'"),
    (["train", "diffusion", "--preset", "digits", "train.stepz=3"], "has no field 'stepz'"),
    (["train", "diffusion", "--preset", "digits", "train.steps=many"], "train.steps=many: expected int"),
    (["sample", "diffusion", "--model", "/no/such/model"], "model not found"),
])
def test_bad_input_is_one_line(args, message):
    result = _cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_corrupt_checkpoint_and_unwritable_output(tiny_run, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run / "checkpoints" / (tiny_run / "checkpoints" / "latest").read_text().strip(), broken)
    (broken / "ema.safetensors").write_bytes(b"not safetensors at all")
    result = _cli("sample", "diffusion", "--model", str(broken), "--steps", "2", "--n", "1")
    assert result.returncode == 2 and "not a readable safetensors file" in result.stderr
    assert "Traceback" not in result.stderr

    wrong = tmp_path / "wrong"
    shutil.copytree(tiny_run / "checkpoints" / (tiny_run / "checkpoints" / "latest").read_text().strip(), wrong)
    cfg = json.loads((wrong / "config.json").read_text())
    cfg["config"]["unet"]["channels"] = [8, 32]
    (wrong / "config.json").write_text(json.dumps(cfg))
    result = _cli("sample", "diffusion", "--model", str(wrong), "--steps", "2", "--n", "1")
    assert result.returncode == 2 and "weights do not match the config" in result.stderr

    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _cli("sample", "diffusion", "--model", str(tiny_run), "--steps", "2", "--n", "1",
                  "--out", str(blocker / "grid.png"))
    assert result.returncode == 2 and "Traceback" not in result.stderr and str(blocker) in result.stderr


def test_convert_from_diffusers_round_trip(tmp_path):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=16, block_out_channels=(16, 32), layers_per_block=1,
                                 down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8,
                                 attention_head_dim=None, flip_sin_to_cos=False, freq_shift=1)
    sched = diffusers.DDPMScheduler(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
    pipe_dir = tmp_path / "pipe"
    diffusers.DDPMPipeline(unet=unet, scheduler=sched).save_pretrained(pipe_dir)
    assert main(["convert", "--from", "diffusers", str(pipe_dir), "--out", str(tmp_path / "genlab")]) == 0
    from genlab.diffusion.pipeline import load

    loaded = load(str(tmp_path / "genlab"))
    assert loaded.cfg.schedule == "cosine" and loaded.cfg.prediction_type == "v_prediction"
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([3, 700])
    with torch.no_grad():
        assert torch.allclose(loaded.model(x, t), unet(x, t).sample, atol=1e-5)

    # A config genlab's UNet cannot express is refused in one line.
    cfg_path = pipe_dir / "unet" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["resnet_time_scale_shift"] = "scale_shift"
    cfg_path.write_text(json.dumps(cfg))
    result = _cli("convert", "--from", "diffusers", str(pipe_dir), "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "resnet_time_scale_shift='scale_shift' is not supported" in result.stderr


# ---------------------------------------------------------------------------------------------------------------
# What a new user tripped on (issue 20, item 8): each of these failed on the code before the fix.


def _one_line_error(capsys, code, *words):
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def test_resume_with_a_changed_model_override_names_the_keys(tiny_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    code = main(["train", "diffusion", "--out", str(run), *TINY, "model.unet.channels=16,32",
                 "model.unet.layers_per_block=2"])
    err = _one_line_error(capsys, code, "unet.channels", "unet.layers_per_block", "--fresh")
    assert "8, 16" in err and "16, 32" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before  # nothing touched


@pytest.mark.parametrize("override, words", [
    ("model.unet.norm_groups=5", ["model.unet.norm_groups=5", "divisible", "norm_groups"]),
    ("model.unet.channels=8,18", ["model.unet.channels=8,18", "18", "norm_groups"]),
    ("model.unet.attention=true", ["attention", "channels"]),
])
def test_unet_config_that_cannot_be_built_is_one_line(override, words, tmp_path, capsys):
    code = main(["train", "diffusion", "--out", str(tmp_path / "r"), *TINY, override])
    _one_line_error(capsys, code, *words)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("override", ["train.steps=-5", "train.steps=0", "train.batch_size=0", "train.lr=-1e-3",
                                      "train.grad_accum=0", "train.beta2=1.5", "train.ema_decay=1"])
def test_out_of_range_train_settings_are_refused(override, tmp_path, capsys):
    code = main(["train", "diffusion", "--out", str(tmp_path / "r"), *TINY, override])
    _one_line_error(capsys, code, override)
    assert not (tmp_path / "r").exists()


def _no_sampling(monkeypatch):
    from genlab.diffusion import pipeline

    def refuse(*a, **k):
        raise AssertionError("sampled before the output path was checked")

    monkeypatch.setattr(pipeline, "generate", refuse)


def test_unwritable_outputs_are_found_before_sampling(tiny_run, tmp_path, capsys, monkeypatch):
    _no_sampling(monkeypatch)
    blocker = tmp_path / "file"
    blocker.write_text("")
    model = ["--model", str(tiny_run), "--steps", "2", "--n", "1"]
    code = main(["sample", "diffusion", *model, "--out", str(blocker / "grid.png")])
    _one_line_error(capsys, code, str(blocker))
    code = main(["sample", "diffusion", *model, "--out", str(tmp_path / "ok.png"), "--save-each", str(blocker / "d")])
    _one_line_error(capsys, code, str(blocker))
    code = main(["sample", "diffusion", *model, "--out", str(tmp_path)])  # a directory, not a file
    _one_line_error(capsys, code, str(tmp_path))
    code = main(["eval", "fid", *model, "--json", str(blocker / "fid.json")])
    _one_line_error(capsys, code, str(blocker))
    assert not (tmp_path / "ok.png").exists()


@pytest.mark.parametrize("suffix, fmt", [(".jpg", "JPEG"), (".jpeg", "JPEG"), (".webp", "WEBP"), (".png", "PNG")])
def test_out_suffix_chooses_the_image_format_and_provenance_survives(tiny_run, tmp_path, suffix, fmt):
    from PIL import Image

    from genlab.data.images import read_image_provenance

    out = tmp_path / f"grid{suffix}"
    assert main(["sample", "diffusion", "--model", str(tiny_run), "--sampler", "ddim", "--steps", "2", "--n", "2",
                 "--seed", "3", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.format == fmt
    info = read_image_provenance(out)
    assert info["seed"] == 3 and info["sampler"] == "ddim" and len(info["weights_hash"]) == 16


def test_unknown_image_suffix_is_refused_before_sampling(tiny_run, tmp_path, capsys, monkeypatch):
    _no_sampling(monkeypatch)
    code = main(["sample", "diffusion", "--model", str(tiny_run), "--out", str(tmp_path / "grid.gif")])
    _one_line_error(capsys, code, "grid.gif", ".png", ".jpg", ".webp")
