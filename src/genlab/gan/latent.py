"""The latent space as a map: walks, truncation, style mixing, projection of a real image, path length.

- Walks. A loop through ``K`` keyframe latents, either spherically in ``z`` (slerp, Shoemake 1985: a Gaussian's
  mass lives on a shell, and a straight line between two samples cuts through its improbable centre) or linearly
  in ``w`` (the mapping network has unwarped the space, StyleGAN sec. 4). Noise maps stay fixed, so a frame changes
  only where the latent does.
- Truncation (StyleGAN sec. 3.3): ``w' = w_avg + psi (w - w_avg)`` trades variety (psi 1) for typicality (psi 0,
  the average image).
- Style mixing (StyleGAN sec. 3.1, fig. 3): the coarse layers of one latent with the fine layers of another.
- Projection (StyleGAN2 sec. 5, NVlabs' ``projector.py``): find the ``w`` whose image is perceptually closest to a
  real image, by Adam from ``w_avg``, with a decaying noise on ``w`` early on; the distance is LPIPS-like (Zhang et
  al. 2018, its unweighted "baseline" form) over the stages of genlab's emoji feature network (``eval/features.py``),
  the only perceptual network genlab has (trained on emoji; for greyscale images it sees the grey as RGB).
- Perceptual path length (StyleGAN sec. 4.2): ``E[d(G(l(t)), G(l(t + eps))) / eps^2]`` along z-slerps or w-lerps.

Frames are written as GIF (Pillow, provenance in the comment block) or MP4 (when ``imageio-ffmpeg`` is installed,
provenance in the container's comment tag).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import GenlabError, check_writable
from .pipeline import check_psi, sample_latents
from .task import GANSpec, to_uint8

# ---------------------------------------------------------------------------------------------------------------
# Interpolation


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation of directions (Shoemake 1985) with the norm interpolated linearly; over the last dim.

    ``sin((1 - t) W) / sin W * a^ + sin(t W) / sin W * b^`` with ``W`` the angle between ``a`` and ``b``.
    """
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na, b / nb
    omega = torch.acos((ua * ub).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))  # (..., 1)
    t = torch.as_tensor(t, dtype=a.dtype)
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / torch.sin(omega)
    return direction * lerp(na, nb, t)


def _labels_like(spec: GANSpec, n: int, label: int | None) -> torch.Tensor | None:
    from .pipeline import class_labels

    return class_labels(spec, n, label if label is not None else (0 if spec.net.num_classes else None))


# ---------------------------------------------------------------------------------------------------------------
# Walks, truncation, style mixing


@torch.no_grad()
def walk(G, spec: GANSpec, seed: int = 0, frames: int = 60, keyframes: int = 4, space: str = "w",
         psi: float = 1.0, label: int | None = None) -> torch.Tensor:
    """A closed loop through ``keyframes`` latents of ``seed`` as uint8 frames ``(frames, C, S, S)``.

    ``space="z"`` slerps between the keyframe latents; ``space="w"`` lerps between their mapped ``w``.
    """
    if frames < 1:
        raise GenlabError(f"--frames must be at least 1, got {frames}")
    if keyframes < 2:
        raise GenlabError(f"a walk needs at least 2 keyframes, got {keyframes}")
    if space not in ("z", "w"):
        raise GenlabError(f"walk space must be z or w, got {space!r}")
    check_psi(psi)
    z, _ = sample_latents(G, seed, keyframes)  # (K, z_dim)
    pos = torch.arange(frames, dtype=torch.float32) * keyframes / frames  # position along the loop, in keyframes
    k, t = pos.floor().long(), (pos - pos.floor())[:, None]  # (F,), (F, 1)
    nxt = (k + 1) % keyframes
    c = _labels_like(spec, frames, label)
    if space == "z":
        ws = G.mapping(slerp(z[k], z[nxt], t), c, psi)  # (F, num_ws, w_dim)
    else:
        w_key = G.mapping(z, _labels_like(spec, keyframes, label), psi)  # (K, num_ws, w_dim)
        ws = lerp(w_key[k], w_key[nxt], t[:, :, None])
    return _synthesize(G, ws)


def _synthesize(G, ws: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    out = [G.synthesis(ws[i : i + batch_size], noise="const") for i in range(0, len(ws), batch_size)]
    return to_uint8(torch.cat(out))


@torch.no_grad()
def truncation_row(G, spec: GANSpec, seed: int = 0, psis=(1.0, 0.8, 0.6, 0.4, 0.2, 0.0), count: int = 4,
                   label: int | None = None) -> torch.Tensor:
    """``count`` samples of ``seed`` at each psi: uint8 ``(count * len(psis), C, S, S)``, one row per sample."""
    for psi in psis:
        check_psi(psi)
    z, _ = sample_latents(G, seed, count)
    w = G.mapping(z, _labels_like(spec, count, label))  # (count, num_ws, w_dim)
    ws = torch.stack([G.mapping.w_avg.lerp(w, psi) for psi in psis], dim=1)  # (count, P, num_ws, w_dim)
    return _synthesize(G, ws.flatten(0, 1))


@torch.no_grad()
def style_mixing_grid(G, spec: GANSpec, row_seeds: list[int], col_seeds: list[int], coarse: int | None = None,
                      label: int | None = None) -> torch.Tensor:
    """StyleGAN fig. 3: cell (r, c) is row ``r``'s image with its first ``coarse`` layers' styles taken from column
    ``c``. Returns uint8 ``((R + 1) * (C + 1), ch, S, S)``: a blank corner, the column sources on top, the row
    sources on the left."""
    if G.num_ws < 2:
        raise GenlabError("style mixing needs a style-based generator (DCGAN has one latent for all layers)")
    coarse = coarse if coarse is not None else max(1, G.num_ws // 2)
    if not 1 <= coarse < G.num_ws:
        raise GenlabError(f"coarse layers must be in 1..{G.num_ws - 1}, got {coarse}")
    seeds = row_seeds + col_seeds
    z = torch.cat([sample_latents(G, s, 1)[0] for s in seeds])  # (R + C, z_dim)
    w = G.mapping(z, _labels_like(spec, len(seeds), label))  # (R + C, num_ws, w_dim)
    w_rows, w_cols = w[: len(row_seeds)], w[len(row_seeds) :]
    mixed = w_rows[:, None].repeat(1, len(col_seeds), 1, 1)  # (R, C, num_ws, w_dim)
    mixed[:, :, :coarse] = w_cols[None, :, :coarse]
    rows, cols, cells = _synthesize(G, w_rows), _synthesize(G, w_cols), _synthesize(G, mixed.flatten(0, 1))
    blank = torch.full_like(rows[:1], 255)
    grid = [blank, cols]
    for r in range(len(row_seeds)):
        grid += [rows[r : r + 1], cells[r * len(col_seeds) : (r + 1) * len(col_seeds)]]
    return torch.cat(grid)


# ---------------------------------------------------------------------------------------------------------------
# A perceptual distance in genlab's emoji feature space


class PerceptualDistance:
    """LPIPS-like distance: unit-normalise each stage's features over channels, squared difference, spatial mean,
    summed over stages (Zhang et al. 2018, eq. 1 with unit weights). Images are ``(B, C, S, S)`` in [-1, 1]; grey
    images are repeated to RGB and any size is resized to the network's 32 px."""

    def __init__(self, net=None):
        from ..eval.features import load_feature_net

        self.net = net or load_feature_net()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)  # (B, 3, S, S)
        size = self.net.cfg.image_size
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        feats = []
        for stage in self.net.stages:
            x = stage(x)
            feats.append(x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10))  # (B, C_s, h, w)
        return feats

    def __call__(self, a: torch.Tensor, b: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """Distances ``(B,)``; ``b`` may be precomputed :meth:`features`."""
        fb = b if isinstance(b, list) else self.features(b)
        return sum((fa - f).square().sum(1).mean(dim=(1, 2)) for fa, f in zip(self.features(a), fb))


# ---------------------------------------------------------------------------------------------------------------
# Projection and path length


def w_statistics(G, spec: GANSpec, n: int = 2000, seed: int = 123) -> tuple[torch.Tensor, float]:
    """(mean ``w`` ``(w_dim,)``, the RMS distance of ``w`` from it) over ``n`` samples, as NVlabs' projector."""
    with torch.no_grad():
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
        c = torch.arange(n) % spec.net.num_classes if spec.net.num_classes else None
        w = G.mapping(z, c)[:, 0]  # (n, w_dim)
    mean = w.mean(0)
    return mean, float((w - mean).square().sum(1).mean().sqrt())


def project(G, spec: GANSpec, target: torch.Tensor, steps: int = 300, lr: float = 0.1, seed: int = 0,
            distance: PerceptualDistance | None = None, callback=None) -> dict:
    """Project ``target`` uint8 ``(C, S, S)`` — or a batch ``(B, C, S, S)``, each on its own — into ``w`` (one vector
    for all layers), with StyleGAN2's projector schedule.

    Returns ``{"w": (B, num_ws, w_dim), "image": uint8 like target, "perceptual", "pixel_rmse"`` (floats, or lists
    for a batch), ``"history"`` (the summed loss per step)``}``; ``callback(step, images_uint8)`` sees the progress
    (for an animation of the optimisation).
    """
    if steps < 1:
        raise GenlabError(f"projection needs at least 1 step, got {steps}")
    single = target.ndim == 3
    targets = target[None] if single else target  # (B, C, S, S)
    distance = distance or PerceptualDistance()
    G.requires_grad_(False)
    target_feats = [f.detach() for f in distance.features(targets.float() / 127.5 - 1)]
    w_avg, w_std = w_statistics(G, spec)
    w = w_avg[None, None].repeat(len(targets), 1, 1).requires_grad_(True)  # (B, 1, w_dim)
    opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999))
    g = torch.Generator().manual_seed(seed)
    history = []
    for step in range(steps):
        frac = step / steps
        noise_scale = w_std * 0.05 * max(0.0, 1.0 - frac / 0.75) ** 2  # the w noise decays to 0 by 75 %
        ramp = min(1.0, (1.0 - frac) / 0.25) * min(1.0, frac / 0.05)  # lr ramps up over 5 %, cosine down over 25 %
        for group in opt.param_groups:
            group["lr"] = lr * (0.5 - 0.5 * math.cos(ramp * math.pi))
        w_noisy = w + torch.randn(w.shape, generator=g) * noise_scale
        image = G.synthesis(w_noisy.repeat(1, G.num_ws, 1), noise="const")  # (B, C, S, S)
        loss = distance(image, target_feats).sum()  # the targets are independent: a sum keeps their gradients apart
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
        if callback is not None:
            callback(step, to_uint8(image.detach()[0] if single else image.detach()))
    with torch.no_grad():
        ws = w.detach().repeat(1, G.num_ws, 1)  # (B, num_ws, w_dim)
        image = G.synthesis(ws, noise="const")
        perceptual = distance(image, target_feats).tolist()
        rmse = ((to_uint8(image).float() - targets.float()) / 255).square().mean(dim=(1, 2, 3)).sqrt().tolist()
    images = to_uint8(image)
    if single:
        return {"w": ws, "image": images[0], "perceptual": perceptual[0], "pixel_rmse": rmse[0], "history": history}
    return {"w": ws, "image": images, "perceptual": perceptual, "pixel_rmse": rmse, "history": history}


@torch.no_grad()
def path_length(G, spec: GANSpec, space: str, n: int = 2000, eps: float = 1e-4, seed: int = 0,
                distance: PerceptualDistance | None = None, batch_size: int = 100) -> dict:
    """Perceptual path length (StyleGAN sec. 4.2, "full" sampling of t): z-slerp or w-lerp; mean, median, and
    the mean with the 1 % tails dropped (StyleGAN's estimator)."""
    if space not in ("z", "w"):
        raise GenlabError(f"path length space must be z or w, got {space!r}")
    distance = distance or PerceptualDistance()
    g = torch.Generator().manual_seed(seed)
    values = []
    for lo in range(0, n, batch_size):
        b = min(batch_size, n - lo)
        z0, _ = sample_latents(G, seed, b, start=2 * lo)
        z1, _ = sample_latents(G, seed, b, start=2 * lo + b)
        t = torch.rand(b, 1, generator=g)
        c = torch.randint(spec.net.num_classes, (b,), generator=g) if spec.net.num_classes else None
        if space == "z":
            zs = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + eps)])
            ws = G.mapping(zs, torch.cat([c, c]) if c is not None else None)
        else:
            w0, w1 = G.mapping(z0, c)[:, 0], G.mapping(z1, c)[:, 0]  # (b, w_dim)
            ws = torch.cat([lerp(w0, w1, t), lerp(w0, w1, t + eps)])[:, None].repeat(1, G.num_ws, 1)
        img = G.synthesis(ws, noise="const")  # (2b, C, S, S)
        values.append(distance(img[:b], img[b:]) / eps**2)
    v = torch.cat(values).double().numpy()
    lo_q, hi_q = np.percentile(v, [1, 99])
    kept = v[(v >= lo_q) & (v <= hi_q)]
    return {"space": space, "n": n, "eps": eps, "seed": seed, "ppl": float(kept.mean()), "mean": float(v.mean()),
            "median": float(np.median(v))}


# ---------------------------------------------------------------------------------------------------------------
# Animations


def check_animation_path(path: str | Path) -> Path:
    """The output of an animation: ``.gif``, or ``.mp4`` when imageio-ffmpeg is installed; checked writable."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise GenlabError(f"{path}: an animation is written as .gif or .mp4")
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise GenlabError(f"{path}: MP4 needs imageio-ffmpeg (pip install imageio-ffmpeg); write a .gif") from None
    check_writable(path)
    return path


def _upscale(frames: torch.Tensor, scale: int) -> np.ndarray:
    x = frames.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)  # nearest-neighbour
    x = x.permute(0, 2, 3, 1).numpy()  # (F, H, W, C)
    return np.repeat(x, 3, axis=3) if x.shape[3] == 1 else x


def save_animation(frames: torch.Tensor, path: str | Path, info: dict, fps: int = 20, scale: int = 4) -> Path:
    """Write uint8 frames ``(F, C, H, W)`` as a looping GIF or an MP4 (H.264), enlarged ``scale`` times."""
    path = check_animation_path(path)
    pixels = _upscale(frames, scale)
    comment = json.dumps(info, separators=(",", ":"), sort_keys=True, default=str)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        if path.suffix.lower() == ".gif":
            images = [Image.fromarray(p) for p in pixels]
            images[0].save(tmp, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                           comment=comment.encode(), optimize=False)
        else:
            import imageio_ffmpeg

            h, w = pixels.shape[1:3]
            writer = imageio_ffmpeg.write_frames(str(tmp), (w, h), fps=fps, macro_block_size=1, quality=8,
                                                 output_params=["-metadata", f"comment={comment}"])
            writer.send(None)
            for p in pixels:
                writer.send(np.ascontiguousarray(p))
            writer.close()
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise GenlabError(f"cannot write {path}: {e.strerror or e}") from None
    return path
