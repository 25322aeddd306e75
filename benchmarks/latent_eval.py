"""Latent diffusion measured: the autoencoder, the cost against pixel diffusion, and text-to-image vs guidance.

    OMP_NUM_THREADS=2 python benchmarks/latent_eval.py vae  [--vae emoji64-vae] [--n 0]
    OMP_NUM_THREADS=2 python benchmarks/latent_eval.py cost [--batch 16] [--repeats 3]
    OMP_NUM_THREADS=2 python benchmarks/latent_eval.py text [--model emoji64-ldm] [--clip emoji-clip] [--n 1000]
    OMP_NUM_THREADS=2 python benchmarks/latent_eval.py diversity [--n 16] [--seeds 4]

- ``vae``: PSNR, SSIM and FID of the reconstructions of the held-out emoji (``test`` split, 64 px), beside the FID
  of as many real training images (``latent_eval_vae.json``).
- ``cost``: the chapter's claim at 64 px, side by side with random weights (time does not depend on them): genlab's
  64 px pixel UNet (the ``emoji64`` diffusion preset) against the ``emoji64-ldm`` UNet on 16 x 16 x 4 latents --
  FLOPs per UNet call, a training step (forward, backward, AdamW; the latent one includes its text tower), and the
  sampling time per image for 25 steps (pixel: one UNet call per step; latent: two under guidance, plus one VAE
  decode), alternating A and B (``latent_eval_cost.json``). FID at equal training wall time needs both models
  trained: not measured here (see the report).
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
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

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


def run_text(args) -> dict:
    from genlab.eval.fid import extract_features, frechet_distance, precision_recall
    from genlab.latent.data import load_captioned_emoji
    from genlab.latent.pipeline import generate, load

    loaded = load(args.model, device=args.device)
    held = [load_captioned_emoji(64, s) for s in ("heldout", "test")]
    real = torch.cat([h.images for h in held])
    real_captions = [c for h in held for c in h.captions]
    captions = sorted(set(real_captions))
    prompts = [real_captions[i % len(real_captions)] for i in range(args.n)]
    real_feats = extract_features(real)
    train = load_captioned_emoji(64, "train").images
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))[: min(args.n, len(train))]
    p, r = precision_recall(real_feats, extract_features(train[pick]))
    floor = {"fid": frechet_distance(extract_features(train[pick]), real_feats), "precision": p, "recall": r,
             "n": len(pick), "what": "real training images against the same held-out reference"}
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
                         batch_size=args.batch).float().view(len(picked), args.seeds, 3, 64, 64)
            row = {"split": split, "guidance": guidance, "std_within_prompt": x.std(1).mean().item(),
                   "std_across_prompts": x[:, 0].std(0).mean().item()}
            print(row)
            rows.append(row)
    return {"model": args.model, "hashes": loaded.hashes, "prompts_per_split": args.n, "seeds": args.seeds,
            "seed": args.seed, "sampler": args.sampler, "steps": args.steps, "rows": rows, **_load()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("section", choices=["vae", "cost", "text", "diversity"])
    ap.add_argument("--vae", default="emoji64-vae")
    ap.add_argument("--model", default="emoji64-ldm")
    ap.add_argument("--clip", default="", help="a CLIP checkpoint for CLIP score and retrieval (text section)")
    ap.add_argument("--n", type=int, default=0, help="vae: held-out images (0 = all); text: samples per setting")
    ap.add_argument("--negative", default="black and white, blurry")
    ap.add_argument("--sampler", default="dpmpp-2m-karras")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=4, help="diversity: noises per prompt")
    ap.add_argument("--device", default="cpu", help="text: where the LDM samples (cuda on a GPU machine)")
    ap.add_argument("--out", default=None, help="result name (default latent_eval_SECTION)")
    args = ap.parse_args()
    if args.section in ("text", "diversity") and args.n < 1:
        args.n = 1000 if args.section == "text" else 16
    sections = {"vae": run_vae, "cost": run_cost, "text": run_text, "diversity": run_diversity}
    result = sections[args.section](args)
    print(f"wrote {write_result(args.out or f'latent_eval_{args.section}', result)}")


if __name__ == "__main__":
    main()
