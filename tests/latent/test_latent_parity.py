"""genlab's autoencoder and text-conditioned UNet against diffusers' AutoencoderKL, UNet2DConditionModel and
StableDiffusionPipeline: same configs, same weights (converted by genlab.latent.convert), same numbers."""

import json

import pytest
import torch

from genlab.diffusion.model import UNet
from genlab.diffusion.samplers import guided, make_sampler, sample_loop
from genlab.diffusion.schedule import NoiseSchedule
from genlab.errors import GenlabError
from genlab.interop.diffusers import rename_attention_keys
from genlab.latent.convert import (
    cond_unet_config_from_diffusers,
    convert_vae,
    load_diffusers_cond_unet,
    rename_transformer_keys,
    vae_config_from_diffusers,
)
from genlab.latent.pipeline import load_vae
from genlab.latent.vae import AutoencoderKL

diffusers = pytest.importorskip("diffusers")


def _vae(layers=1, mid_attention=True, quant=True):
    torch.manual_seed(0)
    ref = diffusers.AutoencoderKL(
        block_out_channels=(16, 32, 32), down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, layers_per_block=layers, latent_channels=4, norm_num_groups=8,
        sample_size=32, mid_block_add_attention=mid_attention, use_quant_conv=quant, use_post_quant_conv=quant,
    ).eval()
    ours = AutoencoderKL(vae_config_from_diffusers(dict(ref.config), "tiny")).eval()
    ours.load_state_dict(rename_attention_keys(ref.state_dict()), strict=True)
    return ours, ref


@pytest.mark.parametrize("layers,mid_attention,quant", [(1, True, True), (2, False, False)])
def test_vae_matches_autoencoder_kl(layers, mid_attention, quant):
    ours, ref = _vae(layers, mid_attention, quant)
    x, z = torch.randn(2, 3, 32, 32), torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        posterior = ref.encode(x).latent_dist
        mean, logvar = ours.encode(x)
        assert mean.shape == (2, 4, 8, 8)
        assert (mean - posterior.mean).abs().max() < 1e-5 and (logvar - posterior.logvar).abs().max() < 1e-5
        assert (ours.decode(z) - ref.decode(z).sample).abs().max() < 1e-5


def test_converted_vae_directory_loads_and_refuses_what_it_cannot_express(tmp_path):
    ours, ref = _vae()
    ref.save_pretrained(tmp_path / "vae")
    out = convert_vae(tmp_path / "vae", tmp_path / "genlab-vae")
    loaded, weights_hash = load_vae(str(out))
    assert loaded.cfg.scaling_factor == pytest.approx(0.18215) and len(weights_hash) == 16
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x)[0], ours.encode(x)[0])
    cfg = json.loads((tmp_path / "vae" / "config.json").read_text())
    for key, value in (("latents_mean", [0.0] * 4), ("down_block_types", ["DownEncoderBlock2D"] * 2),
                       ("act_fn", "gelu")):
        with pytest.raises(GenlabError, match=key if key != "down_block_types" else "block types"):
            vae_config_from_diffusers({**cfg, key: value}, "vae/config.json")


def _cond_unet(linear=False, layers=1, heads=4, transformer_layers=1):
    torch.manual_seed(0)
    ref = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=layers,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=24, attention_head_dim=heads, norm_num_groups=8, use_linear_projection=linear,
        transformer_layers_per_block=transformer_layers,
    ).eval()
    ours = UNet(cond_unet_config_from_diffusers(dict(ref.config), "tiny")).eval()
    ours.load_state_dict(rename_transformer_keys(ref.state_dict()), strict=True)
    return ours, ref


@pytest.mark.parametrize("linear,layers,heads,transformer_layers", [(False, 1, 4, 1), (True, 2, [2, 4], 2)])
def test_conditional_unet_matches_unet2d_condition_model(linear, layers, heads, transformer_layers):
    ours, ref = _cond_unet(linear, layers, heads, transformer_layers)
    x, context = torch.randn(2, 4, 8, 8), torch.randn(2, 7, 24)
    for t in (torch.tensor([0, 999]), torch.tensor([17.5, 500.0])):
        with torch.no_grad():
            expected = ref(x, t, encoder_hidden_states=context).sample
            got = ours(x, t, context)
        assert (got - expected).abs().max() < 1e-5
    with pytest.raises(ValueError, match="needs context"):
        ours(x, t)


def test_conditional_unet_directory_and_refusals(tmp_path):
    ours, ref = _cond_unet()
    ref.save_pretrained(tmp_path / "unet")
    loaded, cfg = load_diffusers_cond_unet(tmp_path)  # a pipeline folder holding unet/
    assert cfg.cross_attention_dim == 24 and cfg.num_heads == 4
    x, context = torch.randn(1, 4, 8, 8), torch.randn(1, 3, 24)
    with torch.no_grad():
        assert torch.equal(loaded(x, 5, context), ours(x, 5, context))
    base = json.loads((tmp_path / "unet" / "config.json").read_text())
    refusals = [("addition_embed_type", "text_time", "addition_embed_type"),
                ("attention_head_dim", [3, 5], "head width"),
                ("up_block_types", ["CrossAttnUpBlock2D", "UpBlock2D"], "mirror"),
                ("cross_attention_dim", [24, 32], "differs between stages"),
                ("down_block_types", ["SimpleCrossAttnDownBlock2D", "DownBlock2D"], "not supported")]
    for key, value, message in refusals:
        with pytest.raises(GenlabError, match=message):
            cond_unet_config_from_diffusers({**base, key: value}, "unet/config.json")


def test_guided_sampling_matches_stable_diffusion_pipeline():
    """The whole text-to-image path on given text embeddings: classifier-free guidance with a negative prompt,
    DPM-Solver++ 2M with Karras sigmas, the VAE's scaling factor and decoder — against StableDiffusionPipeline."""
    torch.manual_seed(0)
    ours_vae, ref_vae = _vae()
    ours_unet, ref_unet = _cond_unet()
    scheduler = diffusers.DPMSolverMultistepScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                                                      use_karras_sigmas=True, steps_offset=1)
    pipe = diffusers.StableDiffusionPipeline(vae=ref_vae, text_encoder=None, tokenizer=None, unet=ref_unet,
                                             scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    cond, negative = torch.randn(2, 5, 24), torch.randn(2, 5, 24)
    with torch.no_grad():
        expected = pipe(prompt_embeds=cond, negative_prompt_embeds=negative, guidance_scale=3.0, height=32,
                        width=32, num_inference_steps=6, generator=torch.Generator().manual_seed(0),
                        output_type="pt").images
        sampler = make_sampler("dpmpp-2m-karras", NoiseSchedule("linear", 1000, 1e-4, 0.02))
        sampler.set_timesteps(6)
        z = sample_loop(guided(ours_unet, cond, negative, 3.0), sampler, (2, 4, 8, 8),
                        torch.Generator().manual_seed(0))
        got = (ours_vae.decode(z / ours_vae.cfg.scaling_factor) / 2 + 0.5).clamp(0, 1)
    assert (got - expected).abs().max() < 1e-5
