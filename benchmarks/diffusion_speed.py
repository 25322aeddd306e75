"""genlab's UNet against diffusers' UNet2DModel: identical config, identical weights, timed side by side.

    python benchmarks/diffusion_speed.py [--repeats 7]

Measures a training step (forward + backward + AdamW, batch 64) and a sampling step (no-grad forward, batch 256)
at the bundled emoji32 config, in fp32 and with bf16 autocast, alternating the two implementations (A B A B ...)
and reporting medians and the median of the per-pair ratios (genlab time / diffusers time; < 1 is faster).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_pairs, write_result  # noqa: E402

from genlab.diffusion.model import UNet  # noqa: E402
from genlab.diffusion.task import PRESETS  # noqa: E402
from genlab.interop.diffusers import rename_attention_keys  # noqa: E402


def diffusers_twin(cfg):
    import diffusers

    return diffusers.UNet2DModel(
        sample_size=cfg.image_size, in_channels=cfg.in_channels, out_channels=cfg.out_channels,
        block_out_channels=cfg.channels, layers_per_block=cfg.layers_per_block, attention_head_dim=cfg.head_dim,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in cfg.attention),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg.attention)),
        norm_num_groups=cfg.norm_groups, add_attention=cfg.mid_attention,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--layers-per-block", type=int, default=1, help="the bundled recipe uses 1")
    args = ap.parse_args()
    from dataclasses import replace

    cfg = replace(PRESETS["emoji32"].model.unet, layers_per_block=args.layers_per_block)
    torch.manual_seed(0)
    ref = diffusers_twin(cfg)
    ours = UNet(cfg)
    ours.load_state_dict(rename_attention_keys(ref.state_dict()))
    x_train, t_train = torch.randn(64, 3, 32, 32), torch.randint(0, 1000, (64,))
    x_infer, t_infer = torch.randn(256, 3, 32, 32), torch.full((256,), 500)
    with torch.no_grad():
        diff = (ours(x_infer[:8], t_infer[:8]) - ref(x_infer[:8], t_infer[:8]).sample).abs().max().item()
    results = {"config": cfg.__dict__, "max_abs_output_difference": diff, "cases": {}}
    for amp in (False, True):
        tag = "bf16" if amp else "fp32"
        opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4)
        opt_ref = torch.optim.AdamW(ref.parameters(), lr=1e-4)

        def train_step(model, opt, call, amp=amp):
            def run():
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                    loss = (call(model, x_train, t_train).float() - x_train).pow(2).mean()
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            return run

        def sample_step(model, call, amp=amp):
            @torch.no_grad()
            def run():
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                    call(model, x_infer, t_infer)
            return run

        call_ours = lambda m, x, t: m(x, t)  # noqa: E731
        call_ref = lambda m, x, t: m(x, t).sample  # noqa: E731
        results["cases"][f"train_step_b64_{tag}"] = time_pairs(
            train_step(ours, opt_ours, call_ours), train_step(ref, opt_ref, call_ref), args.repeats)
        results["cases"][f"sample_step_b256_{tag}"] = time_pairs(
            sample_step(ours, call_ours), sample_step(ref, call_ref), args.repeats)
        for name in (f"train_step_b64_{tag}", f"sample_step_b256_{tag}"):
            r = results["cases"][name]
            print(f"{name}: genlab {r['a_median_s']:.3f}s diffusers {r['b_median_s']:.3f}s "
                  f"ratio {r['ratio_a_over_b_median']:.3f}", flush=True)
    results["note"] = "A = genlab, B = diffusers UNet2DModel; ratio < 1 means genlab is faster"
    print(write_result("diffusion_speed", results))


if __name__ == "__main__":
    main()
