"""The autoencoder and latent diffusion tasks under the shared trainer: phases, components, resume, loading."""

import json

import pytest
import torch

from genlab.checkpoint import load_checkpoint, save_checkpoint
from genlab.errors import GenlabError
from genlab.latent.convert import save_vae
from genlab.latent.pipeline import generate, load, load_vae
from genlab.latent.vae import AutoencoderKL, VAEConfig


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_vae_run_has_two_phases_and_the_adversarial_term_from_its_start(vae_run):
    rows = [r for r in _metrics(vae_run) if "step" in r and "vae/loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert "vae/g_loss" not in rows[0] and "vae/g_loss" in rows[1] and "disc/loss" in rows[0]
    ckpt = load_checkpoint(vae_run, kind="vae")
    assert any(k.startswith("discriminator.") for k in ckpt.model) and int(ckpt.model["steps"]) == 3
    vae, weights_hash = load_vae(str(vae_run))
    assert vae.cfg.latent_channels == 2 and len(weights_hash) == 16


def test_vae_step_counter_survives_resume(tmp_path, emoji16, train_vae):
    out = tmp_path / "run"
    train_vae(out, emoji16[0][:16], "train.steps=2")
    task, _ = train_vae(out, emoji16[0][:16], "train.steps=3")  # resumes at step 2
    assert int(task.model.steps) == 3


def test_ldm_checkpoint_references_its_vae_and_samples_deterministically(ldm_run, vae_run):
    ckpt = load_checkpoint(ldm_run, kind="ldm", with_components=False)
    latest = vae_run / "checkpoints" / (vae_run / "checkpoints" / "latest").read_text().strip()
    assert set(ckpt.component_refs) == {"vae"} and ckpt.component_refs["vae"]["ref"] == str(latest.resolve())
    assert not any(k.startswith("vae.") for k in ckpt.model)  # loaded, not copied
    assert any(k.startswith("text.") for k in ckpt.model) and any(k.startswith("unet.") for k in ckpt.model)
    loaded = load(str(ldm_run))
    vae, vae_hash = load_vae(str(vae_run))
    assert loaded.hashes["vae"] == vae_hash
    assert torch.equal(loaded.model.vae.decoder.conv_out.weight, vae.decoder.conv_out.weight)
    a = generate(loaded, "grinning face", n=2, steps=3, seed=1)
    assert a.shape == (2, 3, 16, 16) and a.dtype == torch.uint8
    assert torch.equal(a, generate(loaded, "grinning face", n=2, steps=3, seed=1))
    assert not torch.equal(a, generate(loaded, "grinning face", n=2, steps=3, seed=2))
    assert not torch.equal(a, generate(loaded, "grinning face", negative="red heart", n=2, steps=3, seed=1))
    # Guidance 1 is the conditional model alone: the prompt matters; at guidance 0 (unconditional) it does not.
    uncond = generate(loaded, ["red heart", "dog face"], guidance=0.0, steps=3, seed=1)
    assert torch.equal(uncond[0], generate(loaded, ["dog face", "red heart"], guidance=0.0, steps=3, seed=1)[0])
    cond = generate(loaded, ["red heart", "dog face"], guidance=1.0, steps=3, seed=1)
    assert not torch.equal(cond[0], generate(loaded, ["dog face", "red heart"], guidance=1.0, steps=3, seed=1)[0])


def test_condition_dropout_rate(ldm_run, vae_run, emoji16):
    from genlab.config import apply_overrides
    from genlab.latent.task import LDM_PRESETS, LDMTask

    for p, expected in ((1.0, 1.0), (0.0, 0.0)):
        run = apply_overrides(LDM_PRESETS["tiny"], [f"vae={vae_run}", f"data.cond_drop={p}"])
        task = LDMTask(run, *emoji16)
        task.moments = torch.zeros(len(emoji16[0]), 4, 4, 4)
        tokens = task.batch(torch.arange(64))["tokens"]
        assert (tokens == task.empty).all(1).float().mean().item() == expected


def test_swapping_in_a_vae_whose_latents_do_not_fit_is_refused(ldm_run, tmp_path):
    other = save_vae(tmp_path / "vae3", AutoencoderKL(VAEConfig(image_size=16, channels=(8, 16), latent_channels=3,
                                                                norm_groups=4)))
    with pytest.raises(GenlabError, match="3 latent channels; the UNet denoises 2"):
        load(str(ldm_run), vae=str(other))


def test_frozen_clip_text_tower_is_a_component(tmp_path, emoji16, vae_run, train_ldm):
    from genlab.clip.model import CLIP, PRESETS
    from genlab.clip.text import ClipTokenizer, train_alphabet
    from genlab.config import to_dict

    cfg = PRESETS["tiny"]  # text width 32: the tiny UNet's cross_attention_dim
    torch.manual_seed(0)
    clip = CLIP(cfg)
    tokenizer = ClipTokenizer(train_alphabet(emoji16[1], cfg.text.vocab_size), cfg.text)
    clip_dir = save_checkpoint(tmp_path / "clip", kind="clip", config={"model": to_dict(cfg),
                               "tokenizer": tokenizer.to_json()}, model=clip.state_dict())
    out = tmp_path / "ldm"
    task, _ = train_ldm(out, *emoji16, vae_run, f"clip={clip_dir}", "train.steps=2")
    assert torch.equal(task.model.text.blocks[0].attn.query.weight, clip.text.blocks[0].attn.query.weight)
    ckpt = load_checkpoint(out, kind="ldm", with_components=False)
    assert set(ckpt.component_refs) == {"vae", "clip"} and not any(k.startswith("text.") for k in ckpt.model)
    loaded = load(str(out))
    assert torch.equal(loaded.model.text.token_embedding.weight, clip.text.token_embedding.weight)
    assert loaded.tokenizer.to_json() == tokenizer.to_json()
