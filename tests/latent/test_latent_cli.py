"""``genlab generate image``, ``genlab encode|decode`` and ``genlab convert --from diffusers-vae`` end to end on the
tiny runs, and every bad input giving one line on stderr and exit code 2."""

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.data.images import read_image_provenance


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_generate_image_records_a1111_parameters(ldm_run, tmp_path, capsys):
    out = tmp_path / "apple.png"
    code, stdout, _ = _run(capsys, "generate", "image", "red apple", "--model", ldm_run, "--guidance", "4",
                           "--negative", "green apple", "--sampler", "dpmpp-2m-karras", "--steps", "3", "--n", "2",
                           "--seed", "7", "--out", out)
    assert code == 0 and "wrote" in stdout
    with Image.open(out) as im:
        im.load()
        parameters = im.text["parameters"].splitlines()
    assert parameters[0] == "red apple" and parameters[1] == "Negative prompt: green apple"
    for field in ("Steps: 3", "Sampler: DPM++ 2M Karras", "CFG scale: 4", "Seed: 7", "Size: 16x16", "Model hash: ",
                  "VAE hash: ", "Batch size: 2"):
        assert field in parameters[2]
    info = read_image_provenance(out)
    assert info["prompt"] == "red apple" and info["guidance"] == 4.0 and len(info["components"]["vae"]["hash"]) == 16


def test_long_prompt_is_cut_with_a_warning(ldm_run, tmp_path, capsys):
    code, _, err = _run(capsys, "generate", "image", "red apple " * 1000, "--model", ldm_run, "--steps", "2", "--n",
                        "1", "--out", tmp_path / "long.png")
    assert code == 0 and err.count("\n") == 1 and "warning: the prompt is cut to the text tower's 10 tokens" in err


@pytest.mark.parametrize("args, message", [
    (["red apple", "--prompt-less"], None),
    (["  ", "--steps", "2"], "empty prompt"),
    (["red apple", "--guidance", "-1"], "guidance scale must be >= 0"),
    (["red apple", "--guidance", "nan"], "guidance scale must be >= 0"),
    (["red apple", "--sampler", "plms"], "unknown sampler 'plms'"),
    (["red apple", "--out", "apple.gif"], "unknown suffix '.gif'"),
    (["red apple", "--model", "/no/such/model"], "model not found"),
])
def test_bad_generate_input_is_one_line(ldm_run, capsys, args, message):
    if message is None:  # argparse's own usage error: exit 2 as well
        with pytest.raises(SystemExit) as e:
            main(["generate", "image", *args])
        assert e.value.code == 2
        return
    model = [] if "--model" in args else ["--model", str(ldm_run)]
    code, _, err = _run(capsys, "generate", "image", *args, *model)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_vae_that_does_not_fit_the_unet_is_one_line(ldm_run, tmp_path, capsys):
    from genlab.latent.convert import save_vae
    from genlab.latent.vae import AutoencoderKL, VAEConfig

    other = save_vae(tmp_path / "vae8", AutoencoderKL(VAEConfig(channels=(8, 16), latent_channels=8, norm_groups=4)))
    code, _, err = _run(capsys, "generate", "image", "red apple", "--model", ldm_run, "--vae", other,
                        "--out", tmp_path / "x.png")
    assert code == 2 and "8 latent channels; the UNet denoises 2" in err and len(err.strip().splitlines()) == 1


def test_encode_decode_round_trip(vae_run, emoji16, tmp_path, capsys):
    from genlab.latent.pipeline import load_vae
    from genlab.latent.task import reconstruct

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(emoji16[0][i].permute(1, 2, 0).numpy()).save(paths[-1])
    latents = tmp_path / "z.safetensors"
    code, stdout, _ = _run(capsys, "encode", *paths, "--vae", vae_run, "--out", latents)
    assert code == 0 and "3 latents (2, 8, 8)" in stdout
    code, _, _ = _run(capsys, "decode", latents, "--out", tmp_path / "back.png")  # the VAE is read from the file
    assert code == 0 and read_image_provenance(tmp_path / "back.png")["n"] == 3
    vae, _ = load_vae(str(vae_run))
    expected = reconstruct(vae, emoji16[0][:3])
    with Image.open(tmp_path / "back.png") as im:
        grid = torch.from_numpy(np.asarray(im.convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(grid[:, 2:18, 2:18], expected[0])  # the grid's first cell, inside its 2 px border
    code, _, err = _run(capsys, "encode", tmp_path / "missing.png", "--vae", vae_run, "--out", latents)
    assert code == 2 and "missing.png" in err
    code, _, err = _run(capsys, "encode", paths[0], "--vae", vae_run, "--size", "9", "--out", latents)
    assert code == 2 and "multiple of the VAE's downsampling factor 2" in err


def test_convert_diffusers_vae(tmp_path, capsys):
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                                  up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4, sample_size=16)
    ref.save_pretrained(tmp_path / "sd-vae")
    code, stdout, _ = _run(capsys, "convert", "--from", "diffusers-vae", tmp_path / "sd-vae", "--out", tmp_path / "g")
    assert code == 0 and "wrote genlab VAE checkpoint" in stdout
    code, _, err = _run(capsys, "convert", "--from", "diffusers-vae", tmp_path, "--out", tmp_path / "h")
    assert code == 2 and "no config.json" in err


def test_tour_section(ldm_run, tmp_path):
    from genlab.latent.tour import GUIDANCE, PROMPTS, latent_section

    page = latent_section(tmp_path, quick=True, model=str(ldm_run))
    assert "guidance_grid.png" in page and "unconditional" in page
    with Image.open(tmp_path / "latent" / "guidance_grid.png") as im:
        assert im.size == (2 + len(GUIDANCE) * 18, 2 + len(PROMPTS) * 18)  # 16 px cells with 2 px borders
    assert read_image_provenance(tmp_path / "latent" / "conditional.png")["guidance"] == 4.0


def test_eval_vae_report(vae_run, emoji16, monkeypatch, tmp_path, capsys):
    """``genlab eval vae`` on the tiny VAE, with the 16 px glyphs standing in for the held-out split."""
    import json

    from genlab.clip.data import CaptionedImages
    from genlab.latent import evaluate

    images, captions = emoji16
    split = {"test": slice(0, 40), "train": slice(40, None)}
    monkeypatch.setattr(evaluate, "load_captioned_emoji", lambda size, name: CaptionedImages(
        images[split[name]], captions[split[name]], [""] * 0, [], [], []))
    code, stdout, _ = _run(capsys, "eval", "vae", "--vae", vae_run, "--n", "30", "--json", tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and report["n"] == 30 and report["split"] == "test" and report["fid_reconstruction"] >= 0
    assert 0 < report["psnr"] < 60 and -1 <= report["ssim"] <= 1 and len(report["vae_hash"]) == 16
