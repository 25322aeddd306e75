"""Recipe: train genlab's emoji feature network (the feature space of FID) and ship it.

    python recipes/emoji_features.py --steps 2400 --run runs/emoji-features

Trains :class:`genlab.eval.features.EmojiFeatureNet` on the *training split* of OpenMoji at 32 px with genlab's
one trainer, exemplar + category classification under small shifts and brightness/contrast jitter (see the
features module for why), then

- writes the EMA weights (without the training-only exemplar head) to
  ``src/genlab/assets/emoji-features-32.safetensors`` and prints its sha256 (pin it in ``eval/features.py``);
- measures on the held-out split: category accuracy (head), balanced accuracy, 1-NN category accuracy in the
  embedding, and how FID responds to known degradations of the held-out images (it must grow with them);
- records all of it, with this command, in ``benchmarks/results/emoji_features.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from genlab.config import to_dict
from genlab.data.emoji import EmojiSet, load_emoji
from genlab.eval.features import EmojiFeatureNet, FeatureNetConfig, load_feature_net, save_feature_net
from genlab.train import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parent.parent


def augment(images: torch.Tensor, shift: int, jitter: float) -> torch.Tensor:
    """uint8 ``(B, 3, H, W)`` -> float [0, 1]: a random shift of up to ``shift`` px (white fill) and a brightness /
    contrast change of up to ``jitter``. Hue and saturation are left alone on purpose: colour is information."""
    b, _, h, w = images.shape
    x = F.pad(images.float() / 255.0, (shift,) * 4, value=1.0)  # (B, 3, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * shift + 1, (2, b)).tolist()
    x = torch.stack([x[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])  # (B, 3, H, W)
    contrast = 1 + jitter * (2 * torch.rand(b, 1, 1, 1) - 1)
    brightness = 0.5 * jitter * (2 * torch.rand(b, 1, 1, 1) - 1)
    return ((x - 0.5) * contrast + 0.5 + brightness).clamp(0, 1)


class FeatureTask:
    """The trainer's task: exemplar (one class per training glyph) + category cross-entropy."""

    kind = "emoji-features"

    def __init__(self, train: EmojiSet, test: EmojiSet, cfg: FeatureNetConfig, shift: int = 2, jitter: float = 0.1):
        self.train, self.test, self.cfg = train, test, cfg
        self.shift, self.jitter = shift, jitter
        self.model = EmojiFeatureNet(cfg)
        self.num_examples = len(train)

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "images": augment(self.train.images[indices], self.shift, self.jitter),
            "category": self.train.labels[indices],
            "exemplar": indices,  # the example index is the exemplar class
        }

    def loss(self, batch, phase: str):
        _, categories, exemplars = self.model(batch["images"])
        loss_cat = F.cross_entropy(categories.float(), batch["category"])
        loss_ex = F.cross_entropy(exemplars.float(), batch["exemplar"])
        acc = (categories.argmax(1) == batch["category"]).float().mean()
        loss = loss_cat + loss_ex
        return loss, {
            "loss": loss.item(),
            "loss_category": loss_cat.item(),
            "loss_exemplar": loss_ex.item(),
            "train_category_acc": acc.item(),
        }

    def checkpoint_config(self) -> dict:
        return to_dict(self.cfg)

    @torch.no_grad()
    def evaluate(self, step: int, ema_model) -> dict[str, float]:
        return held_out_accuracy(ema_model, self.train, self.test)


@torch.no_grad()
def embed_all(model: EmojiFeatureNet, images: torch.Tensor, batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    zs, cs = [], []
    for i in range(0, len(images), batch):
        z, c, _ = model(images[i : i + batch])
        zs.append(z), cs.append(c)
    return torch.cat(zs), torch.cat(cs)


@torch.no_grad()
def held_out_accuracy(model: EmojiFeatureNet, train: EmojiSet, test: EmojiSet) -> dict[str, float]:
    z_train, _ = embed_all(model, train.images)
    z_test, logits = embed_all(model, test.images)
    pred = logits.argmax(1)
    acc = (pred == test.labels).float().mean().item()
    present = test.labels.unique()
    balanced = torch.stack([(pred[test.labels == c] == c).float().mean() for c in present]).mean().item()
    nn_idx = torch.cdist(z_test, z_train).argmin(1)  # 1-NN in the embedding: is the neighbour's category right?
    nn_acc = (train.labels[nn_idx] == test.labels).float().mean().item()
    return {"test_category_acc": acc, "test_category_balanced_acc": balanced, "test_1nn_category_acc": nn_acc}


def degrade(images: torch.Tensor, kind: str, level: float, seed: int = 0) -> torch.Tensor:
    """Known damage to uint8 images, for checking that FID grows with it."""
    g = torch.Generator().manual_seed(seed)
    x = images.float() / 255
    if kind == "noise":
        x = x + level * torch.randn(x.shape, generator=g)
    elif kind == "blur":
        k = int(level)
        x = F.avg_pool2d(F.pad(x, (k // 2, (k - 1) // 2) * 2, mode="replicate"), k, stride=1)
    elif kind == "hue_swap":  # rotate colour channels on a fraction `level` of images
        swap = torch.rand(len(x), generator=g) < level
        x[swap] = x[swap][:, [1, 2, 0]]
    elif kind == "shift":
        x = torch.roll(x, shifts=(int(level), int(level)), dims=(2, 3))
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--channels", default="24,48,96,160")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--run", default="runs/emoji-features")
    ap.add_argument("--asset", default=str(ROOT / "src/genlab/assets/emoji-features-32.safetensors"))
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/emoji_features.json"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    train, test = load_emoji(32, "train"), load_emoji(32, "test")
    cfg = FeatureNetConfig(
        channels=tuple(int(c) for c in args.channels.split(",")),
        num_categories=len(train.category_names),
        num_exemplars=len(train),
    )
    torch.manual_seed(args.seed)  # the initial weights: the trainer seeds only after the task (and model) exist
    task = FeatureTask(train, test, cfg)
    tcfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=100,
        weight_decay=0.05,
        ema_decay=0.999,
        precision="bf16",
        seed=args.seed,
        threads=args.threads,
        log_every=50,
        ckpt_every=500,
        eval_every=500,
        progress=False,
    )
    t0 = time.perf_counter()
    trainer = Trainer(task, tcfg, args.run)
    last = trainer.fit()
    train_seconds = time.perf_counter() - t0
    model = trainer.ema.module if trainer.ema else task.model

    metrics = held_out_accuracy(model, train, test)
    print(json.dumps(metrics))
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    info = {
        "data": "OpenMoji 32 px, split=train",
        "n_train": len(train),
        "n_test": len(test),
        "objective": "exemplar + category cross-entropy, shift 2 px, brightness/contrast 0.1",
        "steps": args.steps,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "command": command,
        **{k: round(v, 4) for k, v in metrics.items()},
    }
    digest = save_feature_net(model, args.asset, info)
    print(f"wrote {args.asset}\nsha256 {digest}")

    # FID must grow with damage: held-out images against damaged copies of themselves.
    from genlab.eval.fid import extract_features, frechet_distance, real_floor

    net = load_feature_net(args.asset, sha256=digest)
    clean = extract_features(test.images, net=net)
    floor = real_floor(clean, extract_features(train.images, net=net), n=len(test), seed=args.seed)
    damage = {
        "noise": [0.02, 0.05, 0.1, 0.2],
        "blur": [2, 3, 5],
        "hue_swap": [0.1, 0.3, 1.0],
        "shift": [1, 2, 4],
    }
    response = {
        kind: {
            str(lv): round(frechet_distance(clean, extract_features(degrade(test.images, kind, lv), net=net)), 3)
            for lv in levels
        }
        for kind, levels in damage.items()
    }
    print(json.dumps({"floor": floor, **response}))
    n_params = sum(v.numel() for v in net.state_dict().values())
    result = {
        "what": "genlab emoji feature network (FID feature space): held-out accuracy and FID response to damage",
        "command": command,
        "asset": "src/genlab/assets/emoji-features-32.safetensors",
        "sha256": digest,
        "params": n_params,
        "config": to_dict(net.cfg),
        "train": {**to_dict(tcfg), "seconds": round(train_seconds, 1), "final_train_metrics": last},
        "split": {"train": len(train), "test": len(test), "seed": args.seed},
        "held_out": metrics,
        "majority_class_acc": (test.labels == train.labels.mode().values).float().mean().item(),
        "fid_floor_train_vs_test": {"fid": round(floor, 3), "n": len(test), "seed": args.seed},
        "fid_test_vs_damaged_test": response,
        "torch_threads": args.threads,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
