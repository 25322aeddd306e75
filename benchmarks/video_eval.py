"""Joint denoising against frame-by-frame: object permanence side by side, and what temporal attention costs.

    python benchmarks/video_eval.py --joint sprites-video --frames-model sprites-video-frames [--n 32]
    python benchmarks/video_eval.py --speed-only
    python benchmarks/video_eval.py --device cuda      # sampling and the timed steps on the GPU, scoring on the CPU

For each model (a bundled name or a run directory) and each clip length (8, 16, 32 frames): ``--n`` sampled clips
scored by genlab.video.coherence, beside the same scores on as many rendered clips of the training sprites and of
the held-out sprites (these must be perfect: they check the metric), the feature-space drift of the frames
(Fréchet distance of each quarter of the clips to rendered frames), and the sampling time per clip. The same clips
are also scored without the sprite detector (genlab.video.blobs: the bar, colour blobs and their tracks), beside
the rendered training-sprite clips (the ceiling) and two floors made of them: their frames shuffled in time, and
every frame taken from another clip.

Speed, at the sprites-video preset (its batch of 32-frame clips of 32 px, on ``--device``): a training step
(forward + backward + AdamW) of the joint UNet and of the same UNet without temporal attention, timed in turn (A B A
B ...); temporal attention's share of the step is 1 - baseline / joint, and its share of the forward pass is also
timed directly with hooks.
Writes benchmarks/results/video_eval.json (or --out).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_pairs, write_result  # noqa: E402

from genlab.video.model import TemporalAttention, VideoUNet  # noqa: E402
from genlab.video.task import PRESETS  # noqa: E402


def train_step_fn(model: VideoUNet, x: torch.Tensor):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    t = torch.randint(0, 1000, (x.shape[0],), generator=torch.Generator().manual_seed(0)).to(x.device)

    def step():
        loss = (model(x, t) - x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        synchronize(x.device)

    return step


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer around a step measures the step (CUDA runs async)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def temporal_forward_share(model: VideoUNet, x: torch.Tensor, repeats: int) -> float:
    """Seconds inside TemporalAttention.forward over seconds of the whole forward, timed with hooks."""
    inside = [0.0]
    starts = {}

    def pre(module, args):
        synchronize(x.device)
        starts[id(module)] = time.perf_counter()

    def post(module, args, out):
        synchronize(x.device)
        inside[0] += time.perf_counter() - starts.pop(id(module))

    handles = [h for m in model.modules() if isinstance(m, TemporalAttention)
               for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    shares = []
    with torch.no_grad():
        model(x, 500)
        for _ in range(repeats):
            inside[0] = 0.0
            synchronize(x.device)
            t0 = time.perf_counter()
            model(x, 500)
            synchronize(x.device)
            shares.append(inside[0] / (time.perf_counter() - t0))
    for h in handles:
        h.remove()
    return statistics.median(shares)


def speed(repeats: int, device: torch.device) -> dict:
    run = PRESETS["sprites-video"]
    cfg = run.model.unet
    torch.manual_seed(0)
    joint, frames = VideoUNet(cfg).to(device), VideoUNet(replace(cfg, temporal=False)).to(device)
    x = torch.randn(run.train.batch_size, 3, cfg.frames, cfg.image_size, cfg.image_size).to(device)
    pair = time_pairs(train_step_fn(joint, x), train_step_fn(frames, x), repeats)
    return {
        "preset": "sprites-video", "clips_per_step": run.train.batch_size, "frames": cfg.frames,
        "device": str(device), "threads": torch.get_num_threads(),
        "params_joint_M": sum(p.numel() for p in joint.parameters()) / 1e6,
        "params_frame_by_frame_M": sum(p.numel() for p in frames.parameters()) / 1e6,
        "train_step_joint_s": pair["a_median_s"], "train_step_frame_by_frame_s": pair["b_median_s"],
        "temporal_share_of_train_step": 1 - 1 / pair["ratio_a_over_b_median"],
        "temporal_share_of_forward_by_hooks": temporal_forward_share(joint, x, repeats),
        "timing": pair,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--joint", default="sprites-video")
    ap.add_argument("--frames-model", default="sprites-video-frames")
    ap.add_argument("--n", type=int, default=32, help="clips per model and length")
    ap.add_argument("--lengths", default="8,16,32")
    ap.add_argument("--sampler", default="ddim")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5, help="timed training steps per model")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--no-fid", dest="fid", action="store_false")
    ap.add_argument("--device", default="cpu", help="where clips are sampled and steps timed (the scores are "
                    "computed on the CPU)")
    ap.add_argument("--out", default="video_eval", help="name of the result file in benchmarks/results")
    args = ap.parse_args()
    device = torch.device(args.device)

    result = {"speed": speed(args.repeats, device)}
    print({k: v for k, v in result["speed"].items() if k != "timing"}, flush=True)
    if not args.speed_only:
        from genlab.video.coherence import report
        from genlab.video.pipeline import load

        lengths = tuple(int(s) for s in args.lengths.split(","))
        result["models"] = {}
        for role, name in (("joint", args.joint), ("frame_by_frame", args.frames_model)):
            loaded = load(name, device=str(device))
            row = report(loaded.model, loaded.cfg, lengths, args.n, args.seed, args.sampler, args.steps, args.fid)
            result["models"][role] = {"model": loaded.source, "weights_hash": loaded.weights_hash,
                                      "step": loaded.meta.get("step"), "temporal": loaded.cfg.unet.temporal, **row}
            for frames, r in row["by_length"].items():
                g = r["generated"]
                print(f"{role:>15} {frames:>3} frames: permanence {g['permanence']}, count {g['count']}, identity "
                      f"{g['identity']}, after occlusion {g['identity_after_occlusion']}, jerk {g['jerk']}", flush=True)
                b = r["blobs"]["generated"]
                print(f"{'':>15} {'':>3} blobs: bar still {b['bar_still']}, count constancy {b['count_constancy']}, "
                      f"linked {b['linked']}, jerk {b['jerk']}, histogram step {b['histogram_step']}, through the bar "
                      f"{b['through_bar']} ({b['crossings']} crossings)", flush=True)
    print(write_result(args.out, result))


if __name__ == "__main__":
    main()
