"""StyleGAN2's ops and networks against their definitions: FIR resampling against scipy, the modulated convolution
against per-sample weights (eq. 1-3), the transposed-convolution upsampling against the generic path, minibatch
stddev by hand, the mapping network's normalisation and truncation, the projection discriminator, DCGAN shapes."""

import math

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F

from genlab.gan.model import GAN, Discriminator, GANConfig, MinibatchStdLayer, StyleGenerator
from genlab.gan.ops import conv2d_resample, modulated_conv2d, setup_filter, upfirdn2d

TINY = dict(image_size=16, z_dim=8, w_dim=12, mapping_layers=2, g_channels=(16, 16, 8), d_channels=(16, 16, 8))


def test_upfirdn2d_matches_scipy_upfirdn_per_axis():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7))
    taps = np.array([1.0, 3.0, 3.0, 1.0])
    f = setup_filter(taps)
    for up, down in ((2, 1), (1, 2), (1, 1)):
        h = taps / taps.sum() * up  # the 2-D gain up^2 is up per axis
        ref = scipy.signal.upfirdn(h, scipy.signal.upfirdn(h, x, up, down, axis=0), up, down, axis=1)
        k = len(taps)
        pad = (k - 1, k - 1 - (up - 1))  # scipy's full convolution of the zero-inserted signal
        ours = upfirdn2d(torch.tensor(x)[None, None], f.double(), up=up, down=down, padding=(*pad, *pad),
                         gain=up**2)[0, 0]
        assert ours.shape == ref.shape and np.allclose(ours.numpy(), ref), (up, down)


def test_transposed_upsampling_equals_the_generic_path():
    """Fast path: stride-2 transposed conv then filter. Generic: zero-insert + filter (gain 4), then a true
    convolution (flipped kernel), NVlabs' fallback with flip_weight=False."""
    torch.manual_seed(0)
    x, w, f = torch.randn(2, 3, 5, 5, dtype=torch.float64), torch.randn(4, 3, 3, 3, dtype=torch.float64), setup_filter()
    fast = conv2d_resample(x, w, f.double(), up=2, padding=1)
    generic = F.conv2d(upfirdn2d(x, f.double(), up=2, padding=(3, 2, 3, 2), gain=4), w.flip([2, 3]))
    assert fast.shape == (2, 4, 10, 10) and torch.allclose(fast, generic, atol=1e-12)
    down = conv2d_resample(x[..., :4, :4], w, f.double(), down=2, padding=1)
    assert down.shape == (2, 4, 2, 2)
    # A constant image stays constant (away from the zero-padded border) through the low-pass upsampler.
    flat = conv2d_resample(torch.ones(1, 1, 6, 6, dtype=torch.float64), torch.ones(1, 1, 1, 1, dtype=torch.float64),
                           f.double(), up=2)
    assert flat.shape == (1, 1, 12, 12) and torch.allclose(flat[..., 2:-2, 2:-2], torch.ones(1).double(), atol=1e-12)


@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv_equals_per_sample_demodulated_weights(up):
    torch.manual_seed(1)
    x, weight, styles = torch.randn(3, 5, 6, 6, dtype=torch.float64), torch.randn(7, 5, 3, 3, dtype=torch.float64), \
        torch.randn(3, 5, dtype=torch.float64)
    f = setup_filter().double()
    ours = modulated_conv2d(x, weight, styles, up=up, padding=1, f=f)
    for b in range(3):
        w1 = weight * styles[b][None, :, None, None]  # eq. 1: w'_ijk = s_i w_ijk
        w2 = w1 / (w1.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()  # eq. 3: demodulation
        ref = conv2d_resample(x[b : b + 1], w2, f, up=up, padding=1)
        assert torch.allclose(ours[b : b + 1], ref, atol=1e-10)
    # Demodulation restores unit output variance for unit-variance inputs (the point of eq. 2-3).
    big = modulated_conv2d(torch.randn(64, 32, 16, 16), torch.randn(32, 32, 3, 3), 3 * torch.rand(64, 32) + 0.5,
                           padding=1)
    assert 0.8 < big[..., 1:-1, 1:-1].std().item() < 1.2


def test_minibatch_stddev_by_hand():
    torch.manual_seed(2)
    x = torch.randn(8, 6, 3, 3)
    out = MinibatchStdLayer(group_size=4, num_channels=2)(x)
    assert out.shape == (8, 8, 3, 3) and torch.equal(out[:, :6], x)
    for i in range(8):
        group = x[[j for j in range(8) if j % 2 == i % 2]]  # NVlabs' grouping: i with i + N/G, i + 2N/G, ...
        for f in range(2):
            std = group[:, 3 * f : 3 * f + 3].var(0, unbiased=False).add(1e-8).sqrt().mean()
            assert torch.allclose(out[i, 6 + f], std.expand(3, 3), atol=1e-6)


def test_mapping_normalises_z_and_truncation_pulls_to_w_avg():
    torch.manual_seed(3)
    G = StyleGenerator(GANConfig(**TINY))
    G.mapping.w_avg.normal_()
    z = torch.randn(4, 8)
    w = G.mapping(z, None)
    assert w.shape == (4, G.num_ws, 12) and G.num_ws == 1 + 2 + 2 + 1
    assert torch.allclose(G.mapping(5 * z, None), w, atol=1e-5)  # z is normalised to unit RMS first
    assert torch.allclose(G.mapping(z, None, psi=0.0), G.mapping.w_avg.expand(4, G.num_ws, 12))
    assert torch.allclose(G.mapping(z, None, psi=0.5), (w + G.mapping.w_avg) / 2, atol=1e-6)
    before = G.mapping.w_avg.clone()
    G.mapping.track_w_avg(w[:, 0].mean(0))
    assert torch.allclose(G.mapping.w_avg, w[:, 0].mean(0).lerp(before, 0.995), atol=1e-6)


def test_generator_noise_modes_and_explicit_maps():
    torch.manual_seed(4)
    G = StyleGenerator(GANConfig(**TINY))
    with torch.no_grad():
        for layer in G.synthesis.noise_layers():
            layer.noise_strength.fill_(0.5)
    z = torch.randn(2, 8)
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(2, *shape, generator=g) for shape in G.noise_shapes()]
    assert [m.shape[-1] for m in maps] == [4, 8, 8, 16, 16]
    a = G(z, noise=maps)
    assert a.shape == (2, 3, 16, 16)
    assert torch.equal(G(z, noise=maps), a) and not torch.allclose(G(z, noise="none"), a)
    assert torch.equal(G(z, noise="const"), G(z, noise="const"))
    assert torch.equal(G(z, noise="random", generator=torch.Generator().manual_seed(0)), a)


def test_conditional_discriminator_is_a_projection():
    torch.manual_seed(5)
    D = Discriminator(GANConfig(**TINY, num_classes=3))
    img = torch.randn(4, 3, 16, 16)
    labels = torch.tensor([0, 1, 2, 0])
    logits = D(img, labels)
    x = None
    for res in D.resolutions:
        x = getattr(D, f"b{res}")(x, img)
    h = D.b4.out(D.b4.fc(D.b4.conv(D.b4.mbstd(x)).flatten(1)))  # (B, cmap_dim)
    cmap = D.mapping(None, labels)
    assert torch.allclose(logits, (h * cmap).sum(1) / math.sqrt(cmap.shape[1]), atol=1e-6)
    assert not torch.allclose(D(img, labels), D(img, (labels + 1) % 3))


def test_dcgan_shapes_and_gan_container():
    gan = GAN(GANConfig(arch="dcgan", image_size=32, z_dim=16, g_channels=(32, 16, 8, 4), d_channels=(32, 16, 8, 4),
                        mbstd_group=0), ("translation",))
    img = gan.G(torch.randn(4, 16))
    assert img.shape == (4, 3, 32, 32) and img.abs().max() <= 1
    assert gan.D(img).shape == (4,)
    assert gan.G.num_ws == 1 and torch.allclose(gan.G(torch.randn(4, 16), psi=0.0), gan.G(torch.zeros(4, 16)))
    assert {"step", "augment.p", "augment.signs"} <= set(gan.state_dict())
    with pytest.raises(ValueError, match="unconditional"):
        GANConfig(arch="dcgan", num_classes=3).validate()
    with pytest.raises(ValueError, match="one entry per resolution"):
        GANConfig(image_size=32, g_channels=(8, 8)).validate()


def test_mapping_tracks_w_avg_and_truncates_under_bf16_autocast():
    """Under ``train.precision=bf16`` the mapping's output is bf16 while ``w_avg`` stays fp32: tracking and the
    truncation trick must mix the two (``lerp`` refuses mixed dtypes; the first bf16 GAN step failed on it)."""
    from genlab.gan.model import MappingNetwork

    torch.manual_seed(0)
    net = MappingNetwork(z_dim=8, c_dim=0, w_dim=8, num_ws=3, num_layers=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        w = net(torch.randn(4, 8), None)
        net.track_w_avg(w[:, 0].mean(0))
        truncated = net(torch.randn(4, 8), None, psi=0.5)
    assert net.w_avg.dtype == torch.float32 and net.w_avg.abs().sum() > 0
    assert truncated.shape == (4, 3, 8) and torch.isfinite(truncated).all()
