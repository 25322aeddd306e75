"""Latent diffusion measured: the autoencoder, the cost against pixel diffusion, and text-to-image vs guidance.

    OMP_NUM_THREADS=2 python benchmarks/latent_eval.py vae  [--vae emoji64-vae] [--n 0]
    OMP_NUM_THREADS=2 python benchmarks/latent_eval.py cost [--batch 16] [--repeats 3]
    OMP_NUM_THREADS=2 python benchmarks/latent_eval.py text [--model emoji64-ldm] [--clip emoji-clip] [--n 1000]
    OMP_NUM_THREADS=2 python benchmarks/latent_eval.py diversity [--n 16] [--seeds 4]
    OMP_NUM_THREADS=2 python benchmarks/latent_eval.py curve --budget SECONDS --every SECONDS --n N --device cpu|cuda

- ``vae``: PSNR, SSIM and FID of the reconstructions of the held-out emoji (``test`` split, 64 px), beside the FID
  of as many real training images (``latent_eval_vae.json``).
- ``cost``: the chapter's claim at 64 px, side by side with random weights (time does not depend on them): genlab's
  64 px pixel UNet (the ``emoji64`` diffusion preset) against the ``emoji64-ldm`` UNet on 16 x 16 x 4 latents --
  FLOPs per UNet call, a training step (forward, backward, AdamW; the latent one includes its text tower), and the
  sampling time per image for 25 steps (pixel: one UNet call per step; latent: two under guidance, plus one VAE
  decode), alternating A and B (``latent_eval_cost.json``). FID at equal training wall time: ``curve``.
- ``text``: the model on the held-out combinations and held-out emoji: ``n`` images whose prompts cycle through
  their captions, at guidance 0, 1, 2, 4, 8 and at 4 with a negative prompt; FID, precision and recall against the
  real held-out images (genlab's emoji features) and, with ``--clip``, CLIP score (100 x cosine) and prompt
  retrieval (is the image's own caption the CLIP-nearest among the distinct held-out captions?), each beside the
  same number for the real images (``latent_eval_text.json``).
- ``diversity``: does the noise still matter once a prompt is given? ``n`` captions drawn from the training split and
  ``n`` from the held-out emoji, each sampled with ``--seeds`` different noises at guidance 0, 1, 2 and 4; the mean
  per-pixel standard deviation (0-255) across the noises of one prompt beside that across prompts
  (``latent_eval_diversity.json``). Each training caption names exactly one image, so a model that fits its data
  well maps every noise to that image.
- ``curve``: the same claim as FID against training wall time. The pixel UNet (``emoji64`` preset) and
  ``emoji64-ldm`` (on the frozen ``emoji64-vae``) each train from scratch under ``genlab train`` with their own
  preset's hyper-parameters, on the same 3,263 captioned training images (the pixel model with
  ``model.dataset=captioned-emoji64``), one after the other, for ``--budget`` seconds of training clock each
  (metrics.jsonl's ``time``, which starts with the training loop: data loading and latent encoding are left out).
  A first segment measures seconds per step; the run resumes with a checkpoint about every ``--every`` seconds and
  is stopped by SIGTERM at the budget. Every checkpoint's EMA weights draw ``n`` images (DPM-Solver++ 2M Karras, 25
  steps, seed fixed; the pixel model unconditional, the latent one on the held-out captions cycled, at guidance 4,
  the library's default), scored by FID, precision and recall against the 622 held-out images that ``text`` uses,
  beside the same real-data floor (``latent_eval_curve.json``, rewritten after each point; ``complete`` says
  whether every snapshot was scored). ``scripts/gpu/latent_curve.sh`` runs it on one GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_pairs, write_result  # noqa: E402

GUIDANCE = (0.0, 1.0, 2.0, 4.0, 8.0)


def _load() -> dict:
    return {"loadavg_1m": os.getloadavg()[0], "threads": torch.get_num_threads()}


def run_vae(args) -> dict:
    from genlab.latent.evaluate import vae_report
    from genlab.latent.pipeline import load_vae

    vae, vae_hash = load_vae(args.vae)
    return {"vae": args.vae, "vae_hash": vae_hash, **vae_report(vae, n=args.n or None, seed=args.seed)}


def _flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def run_cost(args) -> dict:
    from genlab.diffusion.model import UNet
    from genlab.diffusion.task import PRESETS
    from genlab.latent.model import LatentDiffusion
    from genlab.latent.task import LDM_PRESETS, VAE_PRESETS

    torch.manual_seed(0)
    pixel = UNet(PRESETS["emoji64"].model.unet)
    ldm_cfg = LDM_PRESETS["emoji64-ldm"].model
    ldm = LatentDiffusion(ldm_cfg.diffusion.unet, VAE_PRESETS["emoji64-vae"].vae, ldm_cfg.text, ldm_cfg.text_embed_dim)
    B, L = args.batch, ldm_cfg.text.context_length
    x, z = torch.randn(B, 3, 64, 64), torch.randn(B, 4, 16, 16)
    t, tokens = torch.randint(0, 1000, (B,)), torch.randint(2, 100, (B, L))
    opt_pixel = torch.optim.AdamW(pixel.parameters(), lr=1e-4)
    opt_latent = torch.optim.AdamW([*ldm.unet.parameters(), *ldm.text.parameters()], lr=1e-4)

    def train_pixel():
        opt_pixel.zero_grad()
        (pixel(x, t) - x).square().mean().backward()
        opt_pixel.step()

    def train_latent():
        opt_latent.zero_grad()
        (ldm.unet(z, t, ldm.encode_text(tokens)[0]) - z).square().mean().backward()
        opt_latent.step()

    train = time_pairs(train_pixel, train_latent, args.repeats)
    context = ldm.encode_text(tokens)[0].detach()
    with torch.no_grad():
        call = time_pairs(lambda: pixel(x, t), lambda: ldm.unet(torch.cat([z, z]), torch.cat([t, t]),
                                                                    torch.cat([context, context])), args.repeats)
        decode = time_pairs(lambda: ldm.vae.decode(z), lambda: ldm.vae.encode(x), args.repeats)
    steps = 25
    pixel_image = steps * call["a_median_s"] / B
    latent_image = (steps * call["b_median_s"] + decode["a_median_s"]) / B
    return {
        "batch": B, "steps": steps, **_load(),
        "gflop_per_unet_call": {"pixel_64px": _flops(lambda: pixel(x[:1], t[:1])),
                                "latent_16x16x4": _flops(lambda: ldm.unet(z[:1], t[:1], context[:1]))},
        "gflop_vae": {"encode": _flops(lambda: ldm.vae.encode(x[:1])), "decode": _flops(lambda: ldm.vae.decode(z[:1]))},
        "parameters_m": {"pixel_unet": sum(p.numel() for p in pixel.parameters()) / 1e6,
                         "latent_unet": sum(p.numel() for p in ldm.unet.parameters()) / 1e6,
                         "text_tower": sum(p.numel() for p in ldm.text.parameters()) / 1e6},
        "train_step_s": {"pixel": train["a_median_s"], "latent": train["b_median_s"],
                         "ratio_pixel_over_latent": train["ratio_a_over_b_median"]},
        "sampling_s_per_image": {"pixel": pixel_image, "latent_with_guidance_and_decode": latent_image,
                                 "ratio_pixel_over_latent": pixel_image / latent_image},
        "vae_s_per_image": {"decode": decode["a_median_s"] / B,
                            "encode_once_per_training_image": decode["b_median_s"] / B},
        "repeats": args.repeats,
    }


def _clip_scores(clip, images: torch.Tensor, prompts: list[str], captions: list[str]) -> dict:
    """CLIP score (100 x cosine of image and prompt) and retrieval accuracy of each image's prompt among
    ``captions``."""
    import torch.nn.functional as F

    from genlab.clip.pipeline import embed_images, embed_texts

    size = clip.cfg.vision.image_size
    small = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True).round().byte()
    image_emb = embed_images(clip.model, small)
    text_emb = embed_texts(clip.model, clip.tokenizer, captions)
    index = torch.tensor([captions.index(p) for p in prompts])
    cosine = (image_emb * text_emb[index]).sum(1)
    hits = (image_emb @ text_emb.T).argmax(1) == index
    return {"clip_score": 100 * cosine.mean().item(), "retrieval_at_1": hits.float().mean().item(),
            "retrieval_chance": 1 / len(captions)}


def _fid(fake: torch.Tensor, real_feats, seed: int) -> dict:
    from genlab.eval.fid import extract_features, frechet_distance, precision_recall

    f = extract_features(fake)
    precision, recall = precision_recall(real_feats, f)
    return {"fid": frechet_distance(f, real_feats), "precision": precision, "recall": recall}


def _reference(n: int, seed: int) -> tuple[torch.Tensor, list[str], np.ndarray, dict]:
    """The held-out reference of the text and curve sections: the 622 held-out images (``heldout`` + ``test``) as
    uint8 ``(622, 3, 64, 64)``, their captions and features, and the real-data floor (``n`` training images drawn by
    ``seed`` against them)."""
    from genlab.eval.fid import extract_features, frechet_distance, precision_recall
    from genlab.latent.data import load_captioned_emoji

    held = [load_captioned_emoji(64, s) for s in ("heldout", "test")]
    real = torch.cat([h.images for h in held])
    real_captions = [c for h in held for c in h.captions]
    real_feats = extract_features(real)
    train = load_captioned_emoji(64, "train").images
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: min(n, len(train))]
    train_feats = extract_features(train[pick])
    p, r = precision_recall(real_feats, train_feats)
    floor = {"fid": frechet_distance(train_feats, real_feats), "precision": p, "recall": r, "n": len(pick),
             "what": "real training images against the same held-out reference"}
    return real, real_captions, real_feats, floor


def _cycled(captions: list[str], n: int) -> list[str]:
    return [captions[i % len(captions)] for i in range(n)]


def run_text(args) -> dict:
    from genlab.latent.pipeline import generate, load

    loaded = load(args.model, device=args.device)
    real, real_captions, real_feats, floor = _reference(args.n, args.seed)
    captions = sorted(set(real_captions))
    prompts = _cycled(real_captions, args.n)
    clip = None
    if args.clip:
        from genlab.clip.pipeline import load as load_clip

        clip = load_clip(args.clip)
        floor |= {"real_" + k: v for k, v in _clip_scores(clip, real, real_captions, captions).items()}
    settings = [(g, "") for g in GUIDANCE] + [(4.0, args.negative)]
    rows = []
    for guidance, negative in settings:
        t0 = time.perf_counter()
        images = generate(loaded, prompts, negative, guidance, args.sampler, args.steps, seed=args.seed,
                          batch_size=args.batch).cpu()
        row = {"guidance": guidance, "negative_prompt": negative, "seconds": time.perf_counter() - t0,
               **_fid(images, real_feats, args.seed)}
        if clip is not None:
            row |= _clip_scores(clip, images, prompts, captions)
        print(row)
        rows.append(row)
    return {"model": args.model, "hashes": loaded.hashes, "clip": args.clip or None, "n": args.n, "seed": args.seed,
            "sampler": args.sampler, "steps": args.steps, "reference": f"{len(real)} held-out images (heldout + test)",
            "distinct_captions": len(captions), "real_floor": floor, "rows": rows, **_load()}


def run_diversity(args) -> dict:
    from genlab.latent.data import load_captioned_emoji
    from genlab.latent.pipeline import generate, load

    loaded = load(args.model, device=args.device)
    rows = []
    for split in ("train", "test"):
        captions = sorted(set(load_captioned_emoji(64, split).captions))
        order = torch.randperm(len(captions), generator=torch.Generator().manual_seed(args.seed))
        picked = [captions[i] for i in order[: args.n].tolist()]
        prompts = [p for p in picked for _ in range(args.seeds)]
        for guidance in (0.0, 1.0, 2.0, 4.0):
            x = generate(loaded, prompts, "", guidance, args.sampler, args.steps, seed=args.seed,
                         batch_size=args.batch).float()
            x = x.view(len(picked), args.seeds, *x.shape[1:])
            row = {"split": split, "guidance": guidance, "std_within_prompt": x.std(1).mean().item(),
                   "std_across_prompts": x[:, 0].std(0).mean().item()}
            print(row)
            rows.append(row)
    return {"model": args.model, "hashes": loaded.hashes, "prompts_per_split": args.n, "seeds": args.seeds,
            "seed": args.seed, "sampler": args.sampler, "steps": args.steps, "rows": rows, **_load()}


# ---------------------------------------------------------------------------------------------------------------
# curve: FID against training wall time, pixel and latent diffusion trained from scratch one after the other

# `genlab train` arguments of the two models: each its own preset's hyper-parameters, both on the 3,263 captioned
# training images (the pixel preset's own emoji64 set holds 632 more glyphs, 85 of them in the held-out reference).
CURVE_RUNS = {
    "pixel": ["diffusion", "--preset", "emoji64", "model.dataset=captioned-emoji64"],
    "latent": ["ldm", "--preset", "emoji64-ldm", "vae=emoji64-vae"],
}
# What the curve changes in both presets: a metrics line per step, no sample grids (they would run inside the
# training clock), every checkpoint kept, no progress bar.
CURVE_TRAIN = ["train.log_every=1", "train.sample_every=0", "train.keep_checkpoints=1000000", "train.progress=false"]
CURVE_GUIDANCE = 4.0  # genlab.latent.pipeline.generate's default, not a value chosen on held-out data
GENLAB = "import sys; from genlab.cli import main; sys.exit(main(sys.argv[1:]))"


class _Metrics:
    """The step records a run appends to its metrics.jsonl, read as they come (a line still being written waits)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.records = path, 0, []

    def read(self) -> list[dict]:
        if self.path.exists():
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            self.offset += end
            self.records += [r for r in map(json.loads, data[:end].splitlines()) if "time" in r]
        return self.records


def _train_until(argv: list[str], run_dir: Path, seconds: float) -> dict:
    """Run ``genlab train ARGV --out RUN_DIR`` in a subprocess and stop it with SIGTERM (it ends its step, saves a
    checkpoint and exits 143) once its training clock has passed ``seconds``. The clock is metrics.jsonl's "time":
    it starts with the training loop, after data loading (and, for the latent model, encoding the training set),
    which is the segment's ``startup_s``. Returns the segment's step records."""
    metrics = _Metrics(run_dir / "metrics.jsonl")
    before = len(metrics.read())
    launched = time.monotonic()
    start = math.inf  # the parent's clock when the run's clock read 0; the earliest reading is the closest
    with open(run_dir / "train.log", "a") as log:
        proc = subprocess.Popen([sys.executable, "-c", GENLAB, "train", *argv, "--out", str(run_dir)],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                time.sleep(0.1)
                new = metrics.read()[before:]
                if new:
                    start = min(start, time.monotonic() - new[-1]["time"])
                    if time.monotonic() - start >= seconds:
                        proc.send_signal(signal.SIGTERM)
                        proc.wait()
        finally:  # this process stopped by an error or a signal: the run saves and stops too
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait()
    if proc.returncode not in (0, 143) or len(metrics.read()) == before:
        tail = (run_dir / "train.log").read_text().splitlines()[-15:]
        raise RuntimeError(f"genlab train {' '.join(argv)} exited {proc.returncode}:\n" + "\n".join(tail))
    return {"records": metrics.read()[before:], "startup_s": start - launched, "exit_code": proc.returncode}


def _step_seconds(segments: list[dict]) -> list[float]:
    """The duration of every step after a segment's first (which also holds the warm-up)."""
    return [b["time"] - a["time"] for seg in segments for a, b in zip(seg["records"], seg["records"][1:])]


def _train_curve_model(argv: list[str], run_dir: Path, args) -> tuple[dict, list[tuple[int, float, Path]]]:
    """One model from scratch for ``args.budget`` seconds of training clock, as one run in two segments. The first,
    without periodic checkpoints, stops after a quarter of ``--every``: its seconds per step give the checkpoint
    interval k (steps) that lands about every ``--every`` seconds, and its stop checkpoint is the curve's first
    point. The run then resumes (exactly: weights, optimizer, RNG and data order) with a checkpoint every k steps and
    is stopped at the budget. Returns the model's record and its snapshots (step, training seconds, directory)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    common = [*argv, *CURVE_TRAIN, f"train.device={args.device}"] + ([f"train.threads={args.threads}"]
                                                                      if args.threads else [])
    segments = [_train_until([*common, "train.ckpt_every=0"], run_dir, min(args.every / 4, args.budget))]
    first = segments[0]["records"]
    per_step = statistics.median(_step_seconds(segments) or [first[-1]["time"] / first[-1]["step"]])
    every_steps = max(1, round(args.every / per_step))
    if first[-1]["time"] < args.budget:
        segments.append(_train_until([*common, f"train.ckpt_every={every_steps}"], run_dir,
                                     args.budget - first[-1]["time"]))
    clock, offset = {}, 0.0  # step -> seconds of training clock, the segments laid end to end
    for seg in segments:
        clock |= {r["step"]: offset + r["time"] for r in seg["records"]}
        offset += seg["records"][-1]["time"]
    snapshots = sorted((int(p.name.removeprefix("step_")), p) for p in (run_dir / "checkpoints").glob("step_*"))
    snapshots = [(step, clock[step], path) for step, path in snapshots]
    durations = _step_seconds(segments)
    median = statistics.median(durations) if durations else per_step
    # A periodic checkpoint written after step s lengthens step s + 1 (the log line of s comes before the write);
    # the first segment's stop checkpoint is written outside the clock.
    resumed = {r["step"] for r in segments[-1]["records"]} if len(segments) > 1 else set()
    after_write = [clock[s + 1] - clock[s] - median for s, _, _ in snapshots if s in resumed and s + 1 in resumed]
    record = {
        "train_command": ["genlab", "train", *common, "--out", str(run_dir)],
        "train_config": json.loads((run_dir / "train_config.json").read_text()),
        "steps": max(clock), "seconds": offset, "median_s_per_step": median,
        "checkpoint_every_steps": every_steps if len(segments) > 1 else None,
        "snapshot_steps": [s for s, _, _ in snapshots],
        "checkpoint_writes_s_estimate": sum(max(0.0, d) for d in after_write),
        "startup_s": [seg["startup_s"] for seg in segments], "exit_codes": [seg["exit_code"] for seg in segments],
    }
    return record, snapshots


def _millions(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def _sample_snapshot(name: str, path: Path, prompts: list[str], args) -> tuple[torch.Tensor, dict, dict]:
    """``args.n`` images uint8 ``(n, 3, 64, 64)`` from a snapshot's EMA weights, with the model's parameters
    (millions) and the checkpoint's meta: the pixel model unconditional, the latent one on ``prompts`` at guidance
    4."""
    if name == "pixel":
        from genlab.diffusion.pipeline import generate, load

        pixel = load(str(path), device=args.device)
        images = generate(pixel.model, pixel.cfg, n=args.n, sampler=args.sampler, steps=args.steps, seed=args.seed,
                          batch_size=args.batch)
        return images.cpu(), {"unet": _millions(pixel.model)}, pixel.meta
    from genlab.latent.pipeline import generate, load

    latent = load(str(path), device=args.device)
    images = generate(latent, prompts, guidance=CURVE_GUIDANCE, sampler=args.sampler, steps=args.steps,
                      seed=args.seed, batch_size=args.batch)
    m = latent.model
    return images.cpu(), {"unet": _millions(m.unet), "text_tower": _millions(m.text),
                          "frozen_vae": _millions(m.vae)}, latent.meta


def run_curve(args) -> dict:
    from genlab.latent.data import load_captioned_emoji

    training_images = len(load_captioned_emoji(64, "train"))
    trained = {}
    for name, argv in CURVE_RUNS.items():
        trained[name] = _train_curve_model(argv, Path(args.runs) / name, args)
        m = trained[name][0]
        print(f"{name}: {m['steps']} steps in {m['seconds']:.1f} s, {m['median_s_per_step']:.4f} s/step, snapshots at "
              f"steps {m['snapshot_steps']}", flush=True)
    real, real_captions, real_feats, floor = _reference(args.n, args.seed)
    prompts = _cycled(real_captions, args.n)
    result = {
        "what": "pixel (emoji64 UNet) against latent (emoji64-ldm) diffusion, each trained from scratch for the same "
                "training-clock budget, one after the other; FID of each snapshot's EMA weights",
        "budget_s": args.budget, "every_s": args.every, "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "training_images": training_images, "n": args.n, "seed": args.seed, "sampler": args.sampler,
        "steps": args.steps, "latent_guidance": CURVE_GUIDANCE, "pixel_prompts": "none (unconditional)",
        "latent_prompts": "the held-out captions, cycled", "reference": f"{len(real)} held-out images (heldout + test)",
        "clock": "metrics.jsonl 'time': seconds since the training loop began (data loading and the latent model's "
                 "one-off encoding of its training set are excluded: startup_s), checkpoint writes included",
        "real_floor": floor, "models": {name: record for name, (record, _) in trained.items()},
        "points": [], "complete": False, **_load(),
    }
    # Each model's last snapshot (at the budget) first, then the rest in order of training time, the two models
    # interleaved: an evaluation cut short still compares them at the budget.
    queue = sorted((seconds, name, step, path) for name, (_, snaps) in trained.items() for step, seconds, path in snaps)
    last = [q for q in queue if q[2] == trained[q[1]][0]["steps"]]
    for seconds, name, step, path in last + [q for q in queue if q not in last]:
        t0 = time.perf_counter()
        images, parameters, meta = _sample_snapshot(name, path, prompts, args)
        if meta.get("num_examples") != training_images:
            raise RuntimeError(f"{path} trained on {meta.get('num_examples')} images, not the {training_images}")
        result["models"][name]["parameters_m"] = parameters
        point = {"model": name, "step": step, "seconds": seconds, **_fid(images, real_feats, args.seed),
                 "sampling_s": time.perf_counter() - t0}
        print(point, flush=True)
        result["points"] = sorted([*result["points"], point], key=lambda p: (p["model"], p["seconds"]))
        write_result(args.out, result)
    return result | {"complete": True}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("section", choices=["vae", "cost", "text", "diversity", "curve"])
    ap.add_argument("--vae", default="emoji64-vae")
    ap.add_argument("--model", default="emoji64-ldm")
    ap.add_argument("--clip", default="", help="a CLIP checkpoint for CLIP score and retrieval (text section)")
    ap.add_argument("--n", type=int, default=0,
                    help="vae: held-out images (0 = all); text: samples per setting; curve: samples per snapshot")
    ap.add_argument("--negative", default="black and white, blurry")
    ap.add_argument("--sampler", default="dpmpp-2m-karras")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=4, help="diversity: noises per prompt")
    ap.add_argument("--device", default="cpu",
                    help="text, diversity: where the LDM samples; curve: where both models train and sample")
    ap.add_argument("--budget", type=float, default=200.0, help="curve: seconds of training clock per model")
    ap.add_argument("--every", type=float, default=40.0, help="curve: about this many seconds between snapshots")
    ap.add_argument("--threads", type=int, default=0, help="curve: train.threads of both runs (0: torch's default)")
    ap.add_argument("--runs", default="runs/latent-curve", help="curve: where the two training runs go (replaced)")
    ap.add_argument("--out", default=None, help="result name (default latent_eval_SECTION)")
    args = ap.parse_args()
    if args.section in ("text", "diversity", "curve") and args.n < 1:
        args.n = 16 if args.section == "diversity" else 1000
    args.out = args.out or f"latent_eval_{args.section}"
    sections = {"vae": run_vae, "cost": run_cost, "text": run_text, "diversity": run_diversity, "curve": run_curve}
    result = sections[args.section](args)
    print(f"wrote {write_result(args.out, result)}")


if __name__ == "__main__":
    main()
