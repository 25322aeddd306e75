"""genlab's UNet against diffusers' UNet2DModel: same config, same weights, same outputs."""

import pytest
import torch

from genlab.diffusion.model import UNet, UNetConfig
from genlab.interop.diffusers import rename_attention_keys

diffusers = pytest.importorskip("diffusers")


def _pair(channels=(32, 64, 64), attention=(False, True, True), layers=2, head_dim=8, mid_attention=True):
    torch.manual_seed(0)
    types_down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention)
    types_up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention))
    ref = diffusers.UNet2DModel(
        sample_size=16, in_channels=3, out_channels=3, block_out_channels=channels, down_block_types=types_down,
        up_block_types=types_up, layers_per_block=layers, attention_head_dim=head_dim, norm_num_groups=8,
        add_attention=mid_attention,
    ).eval()
    ours = UNet(UNetConfig(image_size=16, channels=channels, attention=attention, layers_per_block=layers,
                           head_dim=head_dim, norm_groups=8, mid_attention=mid_attention)).eval()
    ours.load_state_dict(rename_attention_keys(ref.state_dict()), strict=True)
    return ours, ref


@pytest.mark.parametrize("layers,attention", [(2, (False, True, True)), (1, (True, False, True))])
def test_unet_matches_diffusers(layers, attention):
    ours, ref = _pair(layers=layers, attention=attention)
    x = torch.randn(2, 3, 16, 16)
    for t in (torch.tensor([0, 999]), torch.tensor([17.5, 500.0])):
        with torch.no_grad():
            expected = ref(x, t).sample
            got = ours(x, t)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5, rtol=0), (got - expected).abs().max()


def test_unet_without_mid_attention_matches_diffusers():
    ours, ref = _pair(mid_attention=False, layers=1)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(ours(x, 10), ref(x, 10).sample, atol=1e-5, rtol=0)
