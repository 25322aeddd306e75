"""Recipe for the bundled ``emoji64-vae`` and ``emoji64-ldm`` models: text-to-image latent diffusion at 64 px.

    python recipes/emoji64_ldm.py vae          # 1. the KL autoencoder (resumable: rerun to continue), runs/emoji64-vae
    python recipes/emoji64_ldm.py vae-export   # 2. its scaling factor measured -> src/genlab/assets/emoji64-vae
    python recipes/emoji64_ldm.py ldm          # 3. the text-conditioned UNet on its latents, runs/emoji64-ldm
    python recipes/emoji64_ldm.py export       # 4. EMA weights -> src/genlab/assets/emoji64-ldm (fp16)
    python recipes/emoji64_ldm.py all          # 1 to 4 in turn
    python recipes/emoji64_ldm.py smoke        # a few steps of each into runs/smoke-emoji64-*: seconds per step

Data: the captioned OpenMoji set at 64 px (``genlab.latent.data``, CC BY-SA 4.0): 3,263 training images with their
English names; 537 held-out emoji (``test``: reconstruction and FID) and 85 held-out *combinations* (``heldout``: a
skin tone or colour of an object the model saw in other tones or colours).

1. ``emoji64-vae`` (preset of the same name): f = 4, 4 latent channels, 64 x 64 x 3 -> 16 x 16 x 4 (12x fewer
   numbers), channels (32, 64, 128), 2.7M parameters; L1 + 0.25 (1 - MS-SSIM) + 1e-6 KL, no discriminator (the
   ``emoji64-vae-gan`` preset adds one from step 2000). 3,000 steps of batch 32, fp32. Cost: 0.77 GFLOP to encode
   and 2.0 GFLOP to decode an image.
2. The scaling factor: 1 / std of posterior samples of the training images (Rombach et al.'s rule; Stable
   Diffusion's 0.18215 came from it), written into the exported autoencoder's config; weights in fp16, without the
   discriminator. The latent diffusion model then references it by name and weights hash (a component).
3. ``emoji64-ldm``: a 6.7M-parameter UNet (channels 64, 128, 128; cross-attention at 8 and 4 px) over the latents,
   a 3-layer 128-wide text tower trained with it (the LDM paper's choice; ``clip=PATH`` reads a frozen CLIP text
   tower instead), v-prediction, condition dropout 0.1. 10,000 steps of batch 64, fp32, EMA 0.999. Cost: 0.67 GFLOP
   per UNet call on a 64 px image's latents, against 13.0 GFLOP for genlab's 64 px pixel UNet (the ``emoji64``
   diffusion preset) -- the chapter's claim in FLOPs (benchmarks/latent_eval.py cost times it).

Time on 2 CPU cores (AMD EPYC, no bf16 units: fp32 is the fast path there; ``train.precision=bf16`` only where the
CPU has them): one thread spent 5.1 s of CPU time per autoencoder step (batch 32) and 2.7 s per UNet step (batch 64,
text tower included), so about 2.5 h + 4.5 h on 2 quiet cores, plus ~1 min to encode the training set once.
``smoke`` prints seconds per step on the machine at hand (on a loaded one they mean little).

Measured (benchmarks/results/latent_eval_vae.json, latent_eval_text.json, latent_eval_diversity.json; the bundled
weights trained the full recipe on one H200 in 515 s, scripts/gpu/train_ldm.sh): held-out reconstruction PSNR 29.3
dB, SSIM 0.974; on held-out captions FID 3.39 at guidance 2 (real-data floor 2.33), the CLIP score peaks at guidance
2 (48.6; real images 51.4) rather than 4, and guidance 8 costs FID and CLIP score alike. Each training caption names
exactly one image, so with a prompt the sampler's noise hardly changes the image (latent_eval diversity).
"""

import json
import sys
import time
from pathlib import Path

import torch

from genlab.checkpoint import load_checkpoint, save_checkpoint
from genlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs"
ASSETS = ROOT / "src" / "genlab" / "assets"
VAE_RUN, LDM_RUN = RUNS / "emoji64-vae", RUNS / "emoji64-ldm"
THREADS = ["train.threads=2"]


def train_vae(out: Path = VAE_RUN, extra: tuple[str, ...] = (), fresh: bool = False) -> int:
    flags = ["--fresh"] if fresh else []
    return main(["train", "vae", "--preset", "emoji64-vae", "--out", str(out), *flags, *THREADS, *extra])


def train_ldm(out: Path = LDM_RUN, vae: Path | str = "emoji64-vae", extra: tuple[str, ...] = (),
              fresh: bool = False) -> int:
    flags = ["--fresh"] if fresh else []
    return main(["train", "ldm", "--preset", "emoji64-ldm", "--out", str(out), *flags, f"vae={vae}", *THREADS, *extra])


def _fp16(state: dict) -> dict:
    return {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in state.items()}


def export_vae(run: Path = VAE_RUN, out: Path = ASSETS / "emoji64-vae") -> Path:
    from genlab.config import from_dict, to_dict
    from genlab.latent.data import load_captioned_emoji
    from genlab.latent.task import latent_scale, reconstruction_scores
    from genlab.latent.vae import AutoencoderKL, VAEConfig

    ckpt = load_checkpoint(run, kind="vae")
    state = _fp16({k[4:]: v for k, v in ckpt.model.items() if k.startswith("vae.")})  # no discriminator
    vae = AutoencoderKL(from_dict(VAEConfig, ckpt.config["vae"]))
    vae.load_state_dict({k: v.float() for k, v in state.items()})
    vae.eval()
    scale = latent_scale(vae, load_captioned_emoji(vae.cfg.image_size, "train").images)
    cfg = {**to_dict(vae.cfg), "scaling_factor": scale}
    scores = reconstruction_scores(vae, load_captioned_emoji(vae.cfg.image_size, "test").images[:256])
    meta = {**ckpt.meta, "recipe": "recipes/emoji64_ldm.py", "weights": "fp16, autoencoder only",
            "exported_from": str(ckpt.path), "held_out_256": scores}
    save_checkpoint(out, kind="vae", config={"vae": cfg}, model={f"vae.{k}": v for k, v in state.items()},
                    meta=meta)
    print(json.dumps({"exported": str(out), "step": ckpt.meta.get("step"), "scaling_factor": scale, **scores}))
    return out


def export(run: Path = LDM_RUN, out: Path = ASSETS / "emoji64-ldm") -> None:
    ckpt = load_checkpoint(run, kind="ldm", with_components=False)
    meta = {**ckpt.meta, "recipe": "recipes/emoji64_ldm.py", "weights": "EMA, fp16", "exported_from": str(ckpt.path)}
    save_checkpoint(out, kind="ldm", config=ckpt.config, model=_fp16(ckpt.ema), meta=meta,
                    components=ckpt.component_refs)
    print(json.dumps({"exported": str(out), "step": ckpt.meta.get("step"), "components": ckpt.component_refs}))


def _seconds_per_step(run: Path) -> float:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "time" in r]
    return (rows[-1]["time"] - rows[0]["time"]) / max(1, rows[-1]["step"] - rows[0]["step"])


def smoke() -> None:
    """A few steps of each stage (fresh, in runs/smoke-emoji64-*): checks the recipe end to end and times it."""
    vae_run, vae_out = RUNS / "smoke-emoji64-vae", RUNS / "smoke-emoji64-vae-export"
    ldm_run = RUNS / "smoke-emoji64-ldm"
    quick = ("train.ckpt_every=0", "train.log_every=1", "train.progress=false", "train.sample_every=0")
    t0 = time.perf_counter()
    train_vae(vae_run, (*quick, "train.steps=4", "train.eval_every=0"), fresh=True)
    export_vae(vae_run, vae_out)
    t1 = time.perf_counter()
    train_ldm(ldm_run, vae_out, (*quick, "train.steps=4"), fresh=True)
    export(ldm_run, RUNS / "smoke-emoji64-ldm-export")
    t2 = time.perf_counter()
    vae_s, ldm_s = _seconds_per_step(vae_run), _seconds_per_step(ldm_run)
    print(json.dumps({"vae_s_per_step": vae_s, "ldm_s_per_step": ldm_s, "vae_stages_s": t1 - t0,
                      "ldm_stages_s": t2 - t1, "estimated_hours": {"vae_3000_steps": vae_s * 3000 / 3600,
                                                                  "ldm_10000_steps": ldm_s * 10000 / 3600}}, indent=2))


if __name__ == "__main__":
    stages = {"vae": train_vae, "vae-export": export_vae, "ldm": train_ldm, "export": export, "smoke": smoke}
    names = ["vae", "vae-export", "ldm", "export"] if sys.argv[1:] == ["all"] else sys.argv[1:]
    if len(names) not in (1, 4) or any(name not in stages for name in names):
        sys.exit(__doc__)
    for name in names:
        code = stages[name]()
        if isinstance(code, int) and code:  # a training stage that failed
            sys.exit(code)
