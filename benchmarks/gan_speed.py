"""Training-step speed of genlab's StyleGAN2 against NVlabs' StyleGAN2-ADA networks, same weights, side by side.

    GENLAB_STYLEGAN2_ADA=/path/to/stylegan2-ada-pytorch python benchmarks/gan_speed.py [--batch 32] [--threads 1]

NVlabs' ``torch_utils`` ops are CUDA kernels with plain-PyTorch reference versions that they fall back to on a CPU;
this compares against those reference versions (NVlabs' own code, not a port), in training mode (its
``fused_modconv=False``, as it trains). Both networks are the ``emoji32-gan`` preset's (NVlabs: channel_base 1024,
channel_max 256), the weights are copied from NVlabs' into genlab's, and inputs are identical; the outputs are
checked equal before timing. Timed: the generator's forward + backward on a batch, the discriminator's forward +
backward on a batch, and the R1 term (double backward). NVlabs' code is not shipped (non-commercial licence):
point ``GENLAB_STYLEGAN2_ADA`` at a checkout. Writes ``benchmarks/results/gan_speed.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_pairs, write_result  # noqa: E402

from genlab.gan.model import Discriminator, StyleGenerator  # noqa: E402
from genlab.gan.task import PRESETS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-commit", default=None, help="the NVlabs commit checked out (recorded)")
    args = parser.parse_args()
    root = os.environ.get("GENLAB_STYLEGAN2_ADA")
    if not root or not (Path(root) / "training" / "networks.py").is_file():
        sys.exit("set GENLAB_STYLEGAN2_ADA to a checkout of NVlabs/stylegan2-ada-pytorch")
    sys.path.insert(0, root)
    from training import networks

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = PRESETS["emoji32-gan"].model.net
    ref_g = networks.Generator(z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim, img_resolution=32, img_channels=3,
                               mapping_kwargs=dict(num_layers=cfg.mapping_layers),
                               synthesis_kwargs=dict(channel_base=1024, channel_max=256)).train()
    ref_d = networks.Discriminator(c_dim=0, img_resolution=32, img_channels=3, channel_base=1024, channel_max=256,
                                   epilogue_kwargs=dict(mbstd_group_size=cfg.mbstd_group)).train()
    ours_g, ours_d = StyleGenerator(cfg).train(), Discriminator(cfg).train()
    ours_g.load_state_dict(ref_g.state_dict())
    ours_d.load_state_dict(ref_d.state_dict())
    z, c = torch.randn(args.batch, cfg.z_dim), torch.zeros(args.batch, 0)
    img = torch.randn(args.batch, 3, 32, 32)
    with torch.no_grad():
        same_g = (ours_g(z, noise="none") - ref_g(z, c, noise_mode="none")).abs().max().item()
        same_d = (ours_d(img) - ref_d(img, c).squeeze(1)).abs().max().item()
    assert same_g < 1e-4 and same_d < 1e-4, (same_g, same_d)

    def g_step(fn):
        return lambda: fn().square().mean().backward()

    def r1(fn):
        def run():
            x = img.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
            grad.square().sum().backward()
        return run

    results = {
        "generator_fwd_bwd": time_pairs(g_step(lambda: ours_g(z, noise="random")),
                                        g_step(lambda: ref_g(z, c, noise_mode="random")), args.repeats),
        "discriminator_fwd_bwd": time_pairs(g_step(lambda: ours_d(img)), g_step(lambda: ref_d(img, c)), args.repeats),
        "discriminator_r1": time_pairs(r1(lambda x: ours_d(x)), r1(lambda x: ref_d(x, c)), args.repeats),
    }
    for name, r in results.items():
        print(f"{name}: genlab {r['a_median_s'] * 1000:.1f} ms, NVlabs (reference ops) {r['b_median_s'] * 1000:.1f} ms,"
              f" ratio {r['ratio_a_over_b_median']:.2f}")
    path = write_result("gan_speed", {
        "reference": "NVlabs stylegan2-ada-pytorch training/networks.py with its PyTorch reference ops (CPU)",
        "reference_env": "GENLAB_STYLEGAN2_ADA=<checkout>", "reference_commit": args.reference_commit,
        "model": "emoji32-gan preset", "batch": args.batch, "max_abs_output_difference": [same_g, same_d],
        **results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
