"""genlab's text-conditioned UNet against diffusers' UNet2DConditionModel: identical config, identical weights, timed
side by side.

    OMP_NUM_THREADS=2 python benchmarks/latent_speed.py [--repeats 7] [--config emoji64-ldm|sd-tiny] [--out NAME]

One denoising step (a no-grad forward with cross-attention to 24 text tokens) at batch 1 and 16, in fp32 and under
bf16 autocast, alternating the two implementations (A B A B ...); reported: medians, and the median of the
per-pair ratios genlab / diffusers (< 1: genlab is faster). ``emoji64-ldm`` is the bundled model's UNet (16 x 16 x 4
latents); ``sd-tiny`` has Stable Diffusion 1.x's block layout (CrossAttn x3 + Down, 8 heads, conv projections) at
a fifth of its width, on 32 x 32 latents.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_pairs, write_result  # noqa: E402

from genlab.diffusion.model import UNet  # noqa: E402
from genlab.latent.convert import cond_unet_config_from_diffusers, rename_transformer_keys  # noqa: E402
from genlab.latent.task import LDM_PRESETS  # noqa: E402

CONTEXT_TOKENS = 24


def diffusers_config(name: str) -> dict:
    """The UNet2DConditionModel config of a benchmark case."""
    if name == "sd-tiny":
        return dict(sample_size=32, in_channels=4, out_channels=4, block_out_channels=(64, 128, 256, 256),
                    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, layers_per_block=2,
                    cross_attention_dim=256, attention_head_dim=8, norm_num_groups=32)
    u = LDM_PRESETS[name].model.diffusion.unet  # genlab's config, written the diffusers way
    heads = [c // u.head_dim if u.head_dim else 1 for c in u.channels] if not u.num_heads else u.num_heads
    return dict(sample_size=u.image_size, in_channels=u.in_channels, out_channels=u.out_channels,
                block_out_channels=u.channels, layers_per_block=u.layers_per_block,
                down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in u.attention),
                up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(u.attention)),
                cross_attention_dim=u.cross_attention_dim, attention_head_dim=heads, norm_num_groups=u.norm_groups,
                transformer_layers_per_block=u.transformer_layers)


def main() -> None:
    import diffusers

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--config", default="emoji64-ldm", choices=["emoji64-ldm", "sd-tiny"])
    ap.add_argument("--out", default="latent_speed")
    args = ap.parse_args()
    torch.manual_seed(0)
    ref = diffusers.UNet2DConditionModel(**diffusers_config(args.config)).eval()
    cfg = cond_unet_config_from_diffusers(dict(ref.config), args.config)
    ours = UNet(cfg).eval()
    ours.load_state_dict(rename_transformer_keys(ref.state_dict()))
    size, d = cfg.image_size, cfg.cross_attention_dim
    results = {"config_name": args.config, "config": asdict(cfg), "context_tokens": CONTEXT_TOKENS,
               "threads": torch.get_num_threads(), "cases": {}}
    results["loadavg_1m_at_start"] = os.getloadavg()[0]  # other processes on the machine: times are inflated
    for batch in (1, 16):
        x, t = torch.randn(batch, cfg.in_channels, size, size), torch.full((batch,), 500)
        context = torch.randn(batch, CONTEXT_TOKENS, d)
        with torch.no_grad():
            diff = (ours(x, t, context) - ref(x, t, encoder_hidden_states=context).sample).abs().max().item()
        for precision in ("fp32", "bf16"):
            def step(model, diffusers_call, x=x, t=t, context=context, precision=precision):
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    return model(x, t, encoder_hidden_states=context) if diffusers_call else model(x, t, context)

            timing = time_pairs(lambda: step(ours, False), lambda: step(ref, True), args.repeats)
            results["cases"][f"batch{batch}_{precision}"] = {
                "genlab_s": timing["a_median_s"], "diffusers_s": timing["b_median_s"],
                "ratio_genlab_over_diffusers": timing["ratio_a_over_b_median"], "repeats": args.repeats,
                "max_abs_output_difference_fp32": diff}
            print(f"batch {batch:2d} {precision}: genlab {timing['a_median_s'] * 1e3:7.1f} ms, diffusers "
                  f"{timing['b_median_s'] * 1e3:7.1f} ms, ratio {timing['ratio_a_over_b_median']:.3f}")
    print(f"wrote {write_result(args.out, results)}")


if __name__ == "__main__":
    main()
