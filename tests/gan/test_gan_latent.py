"""Latent tools on a tiny generator: slerp, walks that pass through their keyframes, truncation, style mixing,
projection of an image the generator can draw, path length, and the GIF / MP4 writers with provenance."""

import json
import math

import pytest
import torch
from PIL import Image

from genlab.gan.latent import (
    PerceptualDistance,
    path_length,
    project,
    save_animation,
    slerp,
    style_mixing_grid,
    truncation_row,
    walk,
)
from genlab.gan.pipeline import class_labels, generate_images, load, sample_latents
from genlab.gan.task import to_uint8


def test_slerp_moves_at_constant_angular_speed():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=g), 2 * torch.randn(64, generator=g)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    omega = math.acos(float(a @ b / (a.norm() * b.norm())))
    for t in (0.25, 0.5, 0.9):
        p = slerp(a, b, t)
        angle = math.acos(float(p @ a / (p.norm() * a.norm())))
        assert angle == pytest.approx(t * omega, rel=1e-4)
        assert float(p.norm()) == pytest.approx(float(a.norm() + t * (b.norm() - a.norm())), rel=1e-5)


def test_walks_pass_through_their_keyframes_and_loop(tiny_gan_dir):
    loaded = load(str(tiny_gan_dir))
    G, spec = loaded.G, loaded.spec
    z, _ = sample_latents(G, seed=3, n=4)
    c = class_labels(spec, 4, 0)
    keyframes = to_uint8(G.synthesis(G.mapping(z, c), noise="const"))  # (4, C, S, S)
    for space in ("w", "z"):
        frames = walk(G, spec, seed=3, frames=8, keyframes=4, space=space)
        assert frames.shape == (8, 1, 16, 16)
        assert torch.equal(frames[::2], keyframes), space  # frames 0, 2, 4, 6 sit on the keyframes
        assert not torch.equal(frames[1], frames[0])


def test_truncation_and_style_mixing(tiny_gan_dir):
    loaded = load(str(tiny_gan_dir))
    G, spec = loaded.G, loaded.spec
    rows = truncation_row(G, spec, seed=0, psis=(1.0, 0.5, 0.0), count=3).reshape(3, 3, 1, 16, 16)
    average = to_uint8(G.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1), noise="const"))
    assert all(torch.equal(rows[i, 2], average[0]) for i in range(3))  # psi 0: the average image, for every sample
    assert not torch.equal(rows[0, 0], rows[1, 0])
    grid = style_mixing_grid(G, spec, [1, 2], [5, 6, 7], coarse=2)
    assert grid.shape == (3 * 4, 1, 16, 16)
    z = torch.cat([sample_latents(G, s, 1)[0] for s in (2, 6)])
    w = G.mapping(z, class_labels(spec, 2, 0))
    mixed = torch.cat([w[1:, :2], w[:1, 2:]], dim=1)  # coarse layers of seed 6, the rest of seed 2
    assert torch.equal(grid[2 * 4 + 2], to_uint8(G.synthesis(mixed, noise="const"))[0])  # row seed 2, column seed 6


def test_projection_recovers_an_image_the_generator_draws(tiny_gan_dir):
    loaded = load(str(tiny_gan_dir))
    G, spec = loaded.G, loaded.spec
    target = generate_images(G, spec, 1, seed=11)[0]
    distance = PerceptualDistance()
    result = project(G, spec, target, steps=60, lr=0.1, distance=distance)
    assert result["w"].shape == (1, G.num_ws, 16) and result["image"].shape == target.shape
    start = to_uint8(G.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1), noise="const"))
    start_distance = float(distance(start.float() / 127.5 - 1, target[None].float() / 127.5 - 1))
    assert result["perceptual"] < 0.5 * start_distance
    assert result["history"][-1] < result["history"][0]
    batch = project(G, spec, generate_images(G, spec, 2, seed=12), steps=3, distance=distance)
    assert batch["w"].shape == (2, G.num_ws, 16) and batch["image"].shape == (2, 1, 16, 16)
    assert len(batch["perceptual"]) == len(batch["pixel_rmse"]) == 2


def test_path_length_is_finite_and_positive(tiny_gan_dir):
    loaded = load(str(tiny_gan_dir))
    for space in ("z", "w"):
        r = path_length(loaded.G, loaded.spec, space, n=20, batch_size=10)
        assert r["space"] == space and 0 < r["ppl"] < float("inf") and r["n"] == 20


def test_gif_and_mp4_carry_frames_and_provenance(tmp_path):
    frames = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    path = save_animation(frames, tmp_path / "walk.gif", {"seed": 7, "weights_hash": "abc"}, fps=10, scale=2)
    with Image.open(path) as im:
        assert im.n_frames == 5 and im.size == (16, 16)
        assert json.loads(im.info["comment"]) == {"seed": 7, "weights_hash": "abc"}
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    mp4 = save_animation(frames, tmp_path / "walk.mp4", {"seed": 7}, fps=10, scale=2)
    assert imageio_ffmpeg.count_frames_and_secs(str(mp4))[0] == 5
