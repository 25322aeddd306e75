"""The space-time UNet: shapes, what mixes frames and what does not, and the identity start of temporal attention."""

from dataclasses import replace

import pytest
import torch

from genlab.video.model import TemporalAttention, VideoUNet, VideoUNetConfig

CFG = VideoUNetConfig(frames=6, image_size=16, channels=(8, 16), attention=(False, True),
                      temporal_attention=(True, True), head_dim=8, norm_groups=4)


def _randomise_temporal(model):
    """Temporal attention starts as the identity; give its output projection weights so that it mixes frames."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, TemporalAttention):
            m.attn.out.weight.data = torch.randn(m.attn.out.weight.shape, generator=g) * 0.3


def test_shapes_and_shared_timestep():
    torch.manual_seed(0)
    model = VideoUNet(CFG).eval()
    x = torch.randn(2, 3, 6, 16, 16)
    assert model(x, torch.tensor([5, 900])).shape == (2, 3, 6, 16, 16)
    assert torch.allclose(model(x, 7), model(x, torch.tensor([7, 7])), atol=1e-6)
    assert model(x[:, :, :4], 7).shape == (2, 3, 4, 16, 16)  # shorter clips run through the same weights


@pytest.mark.parametrize("temporal", [False, True])
def test_only_temporal_attention_mixes_frames(temporal):
    torch.manual_seed(0)
    model = VideoUNet(replace(CFG, temporal=temporal)).eval()
    _randomise_temporal(model)
    x = torch.randn(1, 3, 6, 16, 16)
    y = x.clone()
    y[:, :, 2] += torch.randn(3, 16, 16)  # change frame 2 only
    diff = (model(x, 300) - model(y, 300)).abs().amax(dim=(0, 1, 3, 4))  # (F,) change per frame
    assert diff[2] > 1e-3
    others = diff[torch.arange(6) != 2]
    if temporal:
        assert (others > 1e-4).all()  # every frame hears about the change
    else:
        assert (others == 0).all()  # the baseline denoises every frame on its own, bit for bit


def test_baseline_equals_image_unet_per_frame():
    """With temporal=False a clip is a batch of independent images: same output as frames folded into the batch."""
    torch.manual_seed(0)
    model = VideoUNet(replace(CFG, temporal=False)).eval()
    x = torch.randn(2, 3, 6, 16, 16)
    per_frame = torch.stack([model(x[:, :, f : f + 1], 11)[:, :, 0] for f in range(6)], dim=2)
    assert torch.allclose(model(x, 11), per_frame, atol=1e-5)


def test_temporal_model_starts_as_the_baseline():
    torch.manual_seed(0)
    joint = VideoUNet(CFG).eval()
    base = VideoUNet(replace(CFG, temporal=False)).eval()
    missing, unexpected = joint.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(".temporal." in k for k in missing)
    x = torch.randn(2, 3, 6, 16, 16)
    assert torch.equal(joint(x, 40), base(x, 40))  # zero-initialised output projection: the identity


def test_temporal_attention_knows_frame_order():
    """Attention alone is blind to order (reversing the frames reverses its output); with the rotary frame
    positions, reversing time changes what each frame gets, so the model can tell forwards from backwards."""
    torch.manual_seed(0)
    att = TemporalAttention(8, 8, 4, 1e-5)
    torch.nn.init.normal_(att.attn.out.weight)
    h = torch.randn(16, 3, 8)  # (B*H*W, F, C) sequences of frames
    assert torch.allclose(att.attn(h).flip(1), att.attn(h.flip(1)), atol=1e-5)
    assert not torch.allclose(att.attn(h, rope=att.rope).flip(1), att.attn(h.flip(1), rope=att.rope), atol=1e-3)
    x = torch.randn(3, 8, 4, 4)  # (B*F, C, H, W) with B = 1, F = 3: the module uses the positions
    assert not torch.allclose(att(x, 3), att(x.flip(0), 3).flip(0), atol=1e-3)
