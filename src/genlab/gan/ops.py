"""The resampling and modulation ops of StyleGAN2, in plain PyTorch.

NVlabs' StyleGAN2-ADA ships these as CUDA kernels (``torch_utils/ops``) with slow reference versions in PyTorch;
this file is a port of the reference versions, reduced to the cases genlab's networks use, so that everything runs
on a CPU and reads as the paper does:

- :func:`upfirdn2d`: upsample by inserting zeros, pad, convolve with a 2-D FIR low-pass filter, keep every n-th
  pixel (Karras et al. 2019b, StyleGAN2, uses the binomial filter [1, 3, 3, 1] for every resampling);
- :func:`conv2d_resample`: a convolution fused with 2x up- or downsampling through that filter;
- :func:`modulated_conv2d`: StyleGAN2's weight modulation and demodulation (Karras et al. 2020, sec. 2.2, eq. 1-3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def setup_filter(taps: list[float] | tuple[float, ...] = (1, 3, 3, 1)) -> torch.Tensor:
    """The separable low-pass filter ``outer(taps, taps)``, normalised to sum 1: ``(k, k)`` float32."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)  # (k, k)
    return f / f.sum()


def upfirdn2d(
    x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1, padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample (zero insertion), pad (negative = crop), FIR-filter and downsample every channel of ``x``.

    ``x``: ``(B, C, H, W)``; ``f``: ``(k, k)``; ``padding``: (x0, x1, y0, y1) in upsampled pixels. The filter is
    applied as a true convolution (flipped), scaled by ``gain`` (``up**2`` keeps the brightness of an upsampled
    image, whose new pixels are zeros).
    """
    b, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])  # (B, C, H, up, W, up): the new pixels are zeros
        x = x.reshape(b, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    kernel = (f * gain).to(x.dtype).flip([0, 1])[None, None].repeat(c, 1, 1, 1)  # (C, 1, k, k), depthwise
    x = F.conv2d(x, kernel, groups=c)
    return x[:, :, ::down, ::down]


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, up H, up W)`` through the FIR filter."""
    k = f.shape[-1]
    p0, p1 = (k + up - 1) // 2, (k - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up**2)


def conv2d_resample(
    x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1, down: int = 1, padding: int = 0
) -> torch.Tensor:
    """``conv2d(x, w)`` fused with ``up``- or ``down``-sampling by 2 through the filter ``f``.

    Padding is given for the upsampled image and applied once. The cases follow NVlabs' ``conv2d_resample``:
    a 1x1 kernel with downsampling filters first and convolves after (cheaper); downsampling filters, then
    convolves with stride 2; upsampling runs a stride-2 transposed convolution (a quarter of the work of
    convolving the upsampled image), then the filter. With ``up`` the kernel acts as a true convolution (NVlabs'
    ``flip_weight=False``); otherwise as a correlation, like ``F.conv2d``.
    """
    kh, kw = w.shape[-2:]
    k = f.shape[-1] if f is not None else 1
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0, px1 = px0 + (k + up - 1) // 2, px1 + (k - up) // 2
        py0, py1 = py0 + (k + up - 1) // 2, py1 + (k - up) // 2
    if down > 1:
        px0, px1 = px0 + (k - down + 1) // 2, px1 + (k - down) // 2
        py0, py1 = py0 + (k - down + 1) // 2, py1 + (k - down) // 2
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample: up- and downsampling at once is not needed here")
    if down > 1 and kw == 1 and kh == 1:
        return F.conv2d(upfirdn2d(x, f, down=down, padding=(px0, px1, py0, py1)), w)
    if down > 1:
        return F.conv2d(upfirdn2d(x, f, padding=(px0, px1, py0, py1)), w, stride=down)
    if up > 1:
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
        x = F.conv_transpose2d(x, w.transpose(0, 1), stride=up, padding=[pyt, pxt])  # (B, O, ~up H, ~up W)
        return upfirdn2d(x, f, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up**2)
    return F.conv2d(x, w, padding=padding)


def modulated_conv2d(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True, up: int = 1,
    padding: int = 0, f: torch.Tensor | None = None,
) -> torch.Tensor:
    """StyleGAN2's modulated convolution (Karras et al. 2020, eq. 1-3), computed without per-sample weights.

    Eq. 1 scales the input channels of the weight by the style, ``w'_ijk = s_i w_ijk``; eq. 3 demodulates each
    output channel, ``w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps)``. Both are per-sample *scalings* of input
    and output channels, so they move onto the activations: scale ``x`` by ``s``, convolve with the shared weight,
    scale by ``d_j = (sum_i s_i^2 sum_k w_ijk^2 + eps)^-1/2``. That equals the grouped convolution with a weight
    per sample (``tests/gan/test_model.py`` checks it) at the cost of one ordinary convolution; NVlabs trains
    with this form too (``fused_modconv=False``).

    ``x``: ``(B, I, H, W)``; ``weight``: ``(O, I, k, k)``; ``styles``: ``(B, I)``.
    """
    x = x * styles[:, :, None, None]  # (B, I, H, W)
    x = conv2d_resample(x, weight, f, up=up, padding=padding)  # (B, O, H', W')
    if demodulate:
        energy = styles.square() @ weight.square().sum(dim=(2, 3)).t()  # (B, O): sum_i s_i^2 sum_k w_ijk^2
        x = x * (energy + 1e-8).rsqrt()[:, :, None, None]
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each vector to unit root-mean-square (StyleGAN's normalisation of z and of label embeddings)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def leaky_relu_gain(x: torch.Tensor, alpha: float = 0.2) -> torch.Tensor:
    """Leaky ReLU times sqrt(2), which keeps unit variance through a layer with equalised weights (He init)."""
    return F.leaky_relu(x, alpha) * 2**0.5
