"""``genlab sample gan`` and ``genlab project``: outputs with provenance, and each bad input refused in one line
(exit 2) before any work."""

import json

import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.data.images import read_png_provenance


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("genlab: error: ")
    return err


def test_sample_grid_walk_and_truncation(tiny_gan_dir, tmp_path, capsys):
    model = ["--model", str(tiny_gan_dir)]
    assert main(["sample", "gan", *model, "--n", "6", "--seed", "4", "--psi", "0.7",
                 "--out", str(tmp_path / "g.png")]) == 0
    info = read_png_provenance(tmp_path / "g.png")
    assert info["seed"] == 4 and info["psi"] == 0.7 and len(info["weights_hash"]) == 16
    assert main(["sample", "gan", *model, "--walk", "--frames", "6", "--out", str(tmp_path / "w.gif")]) == 0
    with Image.open(tmp_path / "w.gif") as im:
        assert im.n_frames == 6 and json.loads(im.info["comment"])["walk"] == "w"
    assert main(["sample", "gan", *model, "--truncation", "--n", "2", "--out", str(tmp_path / "t.png")]) == 0
    assert main(["sample", "gan", *model, "--mixing", "--n", "3", "--class", "2",
                 "--out", str(tmp_path / "m.png")]) == 0


def test_bad_sampling_input_is_one_line(tiny_gan_dir, tmp_path, capsys):
    model = ["--model", str(tiny_gan_dir)]
    assert "--frames must be at least 1" in _error(capsys, ["sample", "gan", *model, "--walk", "--frames", "0",
                                                             "--out", str(tmp_path / "w.gif")])
    assert "psi must be in [0, 1]" in _error(capsys, ["sample", "gan", *model, "--psi", "1.5"])
    assert "psi must be in [0, 1]" in _error(capsys, ["sample", "gan", *model, "--psi", "-0.1"])
    assert ".gif or .mp4" in _error(capsys, ["sample", "gan", *model, "--walk", "--out", str(tmp_path / "w.avi")])
    assert "out of range" in _error(capsys, ["sample", "gan", *model, "--class", "10",
                                             "--out", str(tmp_path / "x.png")])
    assert "model not found" in _error(capsys, ["sample", "gan", "--model", str(tmp_path / "nope")])
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "cannot write" in _error(capsys, ["sample", "gan", *model, "--out", str(blocker / "g.png")])
    assert not (tmp_path / "w.gif").exists()


def test_project_resizes_with_a_note_and_refuses_non_images(tiny_gan_dir, tmp_path, capsys):
    target = tmp_path / "digit.png"
    Image.fromarray((torch.rand(24, 40) * 255).byte().numpy()).save(target)  # wrong size, not square
    out = tmp_path / "proj"
    assert main(["project", str(target), "--model", str(tiny_gan_dir), "--out", str(out), "--steps", "3"]) == 0
    printed = capsys.readouterr().out
    assert "digit.png is 40x24; centre-cropped and resized to the model's 16x16" in printed
    assert {p.name for p in out.iterdir()} >= {"target.png", "projection.png", "progress.gif", "w.safetensors",
                                               "projection.json"}
    record = json.loads((out / "projection.json").read_text())
    assert record["steps"] == 3 and record["perceptual"] >= 0 and len(record["loss_history"]) == 3
    (tmp_path / "notes.png").write_text("not an image")
    assert "not an image" in _error(capsys, ["project", str(tmp_path / "notes.png"), "--model", str(tiny_gan_dir),
                                             "--out", str(out)])
    assert "no such image" in _error(capsys, ["project", str(tmp_path / "missing.png"), "--model",
                                              str(tiny_gan_dir), "--out", str(out)])


def test_cli_lists_every_preset():
    from genlab.gan.cli import PRESET_NAMES
    from genlab.gan.task import PRESETS

    assert PRESET_NAMES == list(PRESETS)


@pytest.mark.parametrize("preset", ["emoji32-gan", "fashion-gan", "emoji32-dcgan", "digits-gan", "tiny"])
def test_presets_build(preset):
    from genlab.gan.model import GAN
    from genlab.gan.task import PRESETS

    spec = PRESETS[preset].model
    gan = GAN(spec.net, spec.loss.augment)
    size, ch = spec.net.image_size, spec.net.image_channels
    img = gan.G(torch.randn(2, spec.net.z_dim), torch.zeros(2, dtype=torch.long) if spec.net.num_classes else None)
    assert img.shape == (2, ch, size, size)
