"""Parity with NVlabs' StyleGAN2-ADA networks (``training/networks.py``), when a checkout of it is at hand.

NVlabs' code is under a non-commercial licence, so genlab neither ships nor downloads it: point
``GENLAB_STYLEGAN2_ADA`` at a checkout of https://github.com/NVlabs/stylegan2-ada-pytorch to run these tests. Its
custom CUDA ops fall back to their PyTorch reference versions on a CPU. The state dict of each NVlabs network loads
into genlab's unchanged (same names), and outputs must agree to float32 round-off.
"""

import os
import sys
from pathlib import Path

import pytest
import torch

from genlab.gan.model import Discriminator, GANConfig, StyleGenerator

ROOT = os.environ.get("GENLAB_STYLEGAN2_ADA")
pytestmark = pytest.mark.skipif(not ROOT or not (Path(ROOT) / "training" / "networks.py").is_file(),
                                reason="set GENLAB_STYLEGAN2_ADA to a checkout of NVlabs/stylegan2-ada-pytorch")


@pytest.fixture(scope="module")
def nv():
    sys.path.insert(0, ROOT)
    from training import networks

    yield networks
    sys.path.remove(ROOT)


@pytest.mark.parametrize("num_classes", [0, 5])
def test_generator_and_discriminator_match_nvlabs(nv, num_classes):
    torch.manual_seed(0)
    # channel_base 512, channel_max 64 at 16 px: 64 channels at 4 and 8 px, 32 at 16 px.
    cfg = GANConfig(image_size=16, image_channels=3, num_classes=num_classes, z_dim=24, w_dim=32, mapping_layers=3,
                    g_channels=(64, 64, 32), d_channels=(64, 64, 32), mbstd_group=4)
    ref_g = nv.Generator(z_dim=24, c_dim=num_classes, w_dim=32, img_resolution=16, img_channels=3,
                         mapping_kwargs=dict(num_layers=3), synthesis_kwargs=dict(channel_base=512, channel_max=64))
    ref_d = nv.Discriminator(c_dim=num_classes, img_resolution=16, img_channels=3, channel_base=512, channel_max=64,
                             mapping_kwargs=dict(num_layers=3), epilogue_kwargs=dict(mbstd_group_size=4))
    with torch.no_grad():  # non-zero noise strengths and biases, so every term is exercised
        for name, p in [*ref_g.named_parameters(), *ref_d.named_parameters()]:
            if name.endswith(("noise_strength", "bias")):
                p.add_(0.1 * torch.randn_like(p))
        ref_g.mapping.w_avg.normal_()
    ours_g, ours_d = StyleGenerator(cfg), Discriminator(cfg)
    ours_g.load_state_dict(ref_g.state_dict())  # strict: the names and shapes are the same
    ours_d.load_state_dict(ref_d.state_dict())
    z = torch.randn(8, 24)
    labels = torch.arange(8) % num_classes if num_classes else None
    c = torch.nn.functional.one_hot(labels, num_classes).float() if num_classes else torch.zeros(8, 0)
    ref_g.eval()
    with torch.no_grad():
        ws_ref = ref_g.mapping(z, c, truncation_psi=0.7)
        ws = ours_g.mapping(z, labels, psi=0.7)
        assert torch.allclose(ws, ws_ref, atol=1e-5, rtol=1e-5)
        for fused in (True, False):  # NVlabs' grouped per-sample weights, and its activation-scaling form
            img_ref = ref_g.synthesis(ws_ref, noise_mode="const", fused_modconv=fused)
            img = ours_g.synthesis(ws, noise="const")
            assert torch.allclose(img, img_ref, atol=1e-4, rtol=1e-4), (img - img_ref).abs().max()
        logits_ref = ref_d(img_ref, c).squeeze(1)
        logits = ours_d(img_ref, labels)
        assert torch.allclose(logits, logits_ref, atol=1e-4, rtol=1e-4), (logits - logits_ref).abs().max()
