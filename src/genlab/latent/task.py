"""Training latent diffusion with the shared trainer, in two runs: the autoencoder, then the text-conditioned UNet.

**The autoencoder** (:class:`VAETask`, Rombach et al. 2022 sec. 3.1 and appendix G). Each step encodes a batch,
draws z from the posterior, decodes, and minimises

    l1 * |x - x^| + ms_ssim * (1 - MS-SSIM(x, x^)) + feature * d_feat(x, x^) + kl * KL / P  [+ adversarial term]

with images in [-1, 1] and every term a mean per pixel (``P`` pixels per image, so ``kl=1e-6`` weighs the KL as the
LDM code's 1e-6 does against its summed L1). With ``loss.adversarial > 0`` a second trainer phase trains a patch
discriminator with the hinge loss, and from step ``loss.adversarial_start`` the autoencoder also minimises
``-D(x^)`` scaled by Esser et al.'s adaptive weight (both phases Adam with betas (0.5, 0.9), as in the LDM code).
No EMA for the autoencoder: the weights a latent diffusion model is trained on are the ones it decodes with.

**The latent diffusion model** (:class:`LDMTask`, sec. 3.3 and 4.3). The frozen autoencoder encodes every training
image once (the posterior's mean and log-variance, kept in memory); each step draws ``z`` from that posterior,
scales it, and runs Ho et al.'s Algorithm 1 on ``z`` with the UNet cross-attending to the caption's token states.
Condition dropout (Ho & Salimans 2022, sec. 3.2): with probability ``data.cond_drop`` the caption is replaced by the
empty prompt, so the same network is the unconditional model that classifier-free guidance needs. The text tower is
trained with the UNet, or with ``clip=...`` a CLIP checkpoint's frozen one. The autoencoder (and a frozen CLIP) are
checkpoint *components*: referenced by name and weights hash, never copied (``genlab.checkpoint``).

Captions are shown through CLIP's templates for OpenMoji ("an emoji of {}", ...). Images are not flipped: a
flipped "left arrow" would be a right arrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import load_checkpoint, weights_hash
from ..clip.data import caption_variants
from ..clip.model import TextConfig
from ..clip.text import ClipTokenizer, train_alphabet
from ..config import from_dict, to_dict
from ..diffusion.model import UNetConfig
from ..diffusion.task import DiffusionConfig, to_model_range, to_uint8
from ..errors import GenlabError
from ..train import Phase, TrainConfig
from .loss import MS_SSIM_WEIGHTS, adaptive_weight, feature_distance, hinge_d_loss, kl_divergence, ms_ssim, psnr, ssim
from .model import LatentDiffusion
from .text import tokenize
from .vae import AutoencoderKL, PatchDiscriminator, VAEConfig

VAE_KIND, LDM_KIND = "vae", "ldm"

# ---------------------------------------------------------------------------------------------------------------
# The autoencoder


@dataclass
class VAELossConfig:
    l1: float = 1.0
    ms_ssim: float = 0.25  # weight of 1 - MS-SSIM (images mapped to [0, 1])
    ms_ssim_window: int = 7  # taps of the Gaussian window; three scales (64, 32, 16 px) at 64 px
    ms_ssim_scales: int = 3
    feature: float = 0.0  # genlab's emoji feature network (the FID network: off by default, see loss.py)
    kl: float = 1e-6
    adversarial: float = 0.0  # > 0: a patch discriminator in a second phase, and this weight on its term
    adversarial_start: int = 0  # step from which the autoencoder's loss includes the adversarial term
    disc_width: int = 64
    disc_layers: int = 3

    def __post_init__(self):
        weights = (self.l1, self.ms_ssim, self.feature, self.kl, self.adversarial)
        if min(weights) < 0 or self.ms_ssim_scales < 1 or self.adversarial_start < 0:
            raise GenlabError("loss weights must be >= 0, loss.ms_ssim_scales >= 1, loss.adversarial_start >= 0")


@dataclass
class VAERun:
    """A preset: ``genlab train vae --preset NAME key=value ...``."""

    vae: VAEConfig = field(default_factory=VAEConfig)
    loss: VAELossConfig = field(default_factory=VAELossConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(ema_decay=0.0))
    eval_images: int = 256  # held-out images scored by the eval hook (PSNR, SSIM)


VAE_PRESETS: dict[str, VAERun] = {
    # The autoencoder of emoji64-ldm (recipes/emoji64_ldm.py): f = 4, 4 latent channels, 64 px -> 16 x 16 x 4.
    "emoji64-vae": VAERun(
        VAEConfig(image_size=64, channels=(32, 64, 128), layers_per_block=1, latent_channels=4, norm_groups=16),
        VAELossConfig(),
        TrainConfig(steps=3000, batch_size=32, lr=4e-4, warmup_steps=200, ema_decay=0.0, ckpt_every=250,
                    eval_every=500, sample_every=1000),
    ),
    # The same with a patch discriminator from step 2000 (sharper edges, twice the cost per step after that).
    "emoji64-vae-gan": VAERun(
        VAEConfig(image_size=64, channels=(32, 64, 128), layers_per_block=1, latent_channels=4, norm_groups=16),
        VAELossConfig(adversarial=0.1, adversarial_start=2000),
        TrainConfig(steps=6000, batch_size=32, lr=4e-4, warmup_steps=200, ema_decay=0.0, ckpt_every=500,
                    eval_every=500, sample_every=1000),
    ),
    "tiny": VAERun(
        VAEConfig(image_size=16, channels=(8, 16), layers_per_block=1, latent_channels=2, norm_groups=4),
        VAELossConfig(ms_ssim_window=3, ms_ssim_scales=2, disc_width=8, disc_layers=1),
        TrainConfig(steps=20, batch_size=8, lr=1e-3, warmup_steps=2, ema_decay=0.0, ckpt_every=0),
        eval_images=8,
    ),
}


def load_training_images(size: int, split: str) -> torch.Tensor:
    """uint8 ``(N, 3, size, size)`` of the captioned emoji set (``latent/data.py``)."""
    from .data import load_captioned_emoji

    return load_captioned_emoji(size, split).images


class VAETask:
    """The autoencoder task handed to :class:`genlab.train.Trainer` (module docstring)."""

    kind = VAE_KIND

    def __init__(self, run: VAERun, images: torch.Tensor | None = None, eval_images: torch.Tensor | None = None):
        self.run, cfg, loss = run, run.vae, run.loss
        self.images = load_training_images(cfg.image_size, "train") if images is None else images
        size = (cfg.in_channels, cfg.image_size, cfg.image_size)
        if tuple(self.images.shape[1:]) != size:
            raise GenlabError(f"training images are {tuple(self.images.shape[1:])}, the VAE expects {size}")
        if eval_images is None:
            eval_images = load_training_images(cfg.image_size, "test")[: run.eval_images]
        self.eval_images = eval_images
        smallest = cfg.image_size // 2 ** (loss.ms_ssim_scales - 1)
        if loss.ms_ssim > 0 and smallest < loss.ms_ssim_window:
            raise GenlabError(f"loss.ms_ssim_scales={loss.ms_ssim_scales} shrink {cfg.image_size} px images to "
                              f"{smallest} px, smaller than loss.ms_ssim_window={loss.ms_ssim_window}")
        self.model = nn.ModuleDict({"vae": AutoencoderKL(cfg)})
        if loss.adversarial > 0:
            if cfg.image_size < 3 * 2**loss.disc_layers:
                raise GenlabError(f"loss.disc_layers={loss.disc_layers} needs images of at least "
                                  f"{3 * 2**loss.disc_layers} px (vae.image_size is {cfg.image_size})")
            self.model["discriminator"] = PatchDiscriminator(cfg.out_channels, loss.disc_width, loss.disc_layers)
            self.phases = [Phase("vae", betas=(0.5, 0.9)), Phase("disc", betas=(0.5, 0.9))]
        else:
            self.phases = [Phase("vae")]
        # The optimizer steps taken, a buffer so that it is saved and restored with the weights (exact resume).
        self.model.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.feature_net = None
        if loss.feature > 0:
            from ..eval.features import load_feature_net

            self.feature_net = load_feature_net()
        self.num_examples = len(self.images)
        self.meta = {"num_examples": self.num_examples, "eval_images": len(self.eval_images)}

    def parameters(self, phase: str):
        return self.model["discriminator" if phase == "disc" else "vae"].parameters()

    def frozen(self) -> dict[str, nn.Module]:
        return {"feature_net": self.feature_net} if self.feature_net is not None else {}

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        self.model.steps += 1  # called once per optimizer step, before its phases
        x = to_model_range(self.images[indices])
        return torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x, x.flip(-1))  # horizontal flips

    def loss(self, x: torch.Tensor, phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        vae = self.model["vae"]
        if phase == "disc":
            with torch.no_grad():
                mean, logvar = vae.encode(x)
                rec = vae.decode(mean + torch.exp(0.5 * logvar) * torch.randn_like(mean))
            d = self.model["discriminator"]
            loss = hinge_d_loss(d(x), d(rec))
            return loss, {"loss": loss.item()}
        return self._autoencoder_loss(x)

    def _autoencoder_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        w, vae = self.run.loss, self.model["vae"]
        mean, logvar = vae.encode(x)
        rec = vae.decode(mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)).float()
        l1 = (x - rec).abs().mean()
        window, scales = w.ms_ssim_window, w.ms_ssim_scales
        weights = tuple(v / sum(MS_SSIM_WEIGHTS[:scales]) for v in MS_SSIM_WEIGHTS[:scales])  # renormalised
        structure = 1 - ms_ssim((x + 1) / 2, (rec + 1) / 2, window_size=window, weights=weights).mean()
        kl = kl_divergence(mean.float(), logvar.float()).mean() / x[0].numel()
        rec_loss = w.l1 * l1 + w.ms_ssim * structure
        if self.feature_net is not None:
            rec_loss = rec_loss + w.feature * feature_distance(self.feature_net, x, rec).mean()
        loss = rec_loss + w.kl * kl
        metrics = {"l1": l1.item(), "ms_ssim": 1 - structure.item(), "kl": kl.item() * x[0].numel()}
        if w.adversarial > 0 and int(self.model.steps) > w.adversarial_start:
            g_loss = -self.model["discriminator"](rec).mean()
            weight = adaptive_weight(rec_loss, g_loss, vae.decoder.conv_out.weight) * w.adversarial
            loss = loss + weight * g_loss
            metrics |= {"g_loss": g_loss.item(), "adv_weight": weight.item()}
        return loss, {"loss": loss.item(), **metrics}

    def checkpoint_config(self) -> dict:
        return {"vae": to_dict(self.run.vae), "loss": to_dict(self.run.loss)}

    @torch.no_grad()
    def evaluate(self, step: int, ema_model) -> dict[str, float]:
        """PSNR and SSIM of the posterior-mean reconstructions of the held-out images."""
        scores = reconstruction_scores(ema_model["vae"], self.eval_images)
        return {"eval/psnr": scores["psnr"], "eval/ssim": scores["ssim"], "eval/latent_std": scores["latent_std"]}

    @torch.no_grad()
    def sample(self, out_dir: Path, step: int, ema_model) -> None:
        """Held-out images (odd rows) above their reconstructions (even rows)."""
        from ..data.images import make_grid, save_png

        x = self.eval_images[:8]
        rec = reconstruct(ema_model["vae"], x)
        save_png(make_grid(torch.cat([x, rec]), nrow=8), out_dir / f"step_{step:07d}.png",
                 {"step": step, "what": "held-out images (top) and their reconstructions (bottom)"})


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """uint8 images -> uint8 reconstructions through the posterior mean."""
    device = next(vae.parameters()).device
    was_training = vae.training
    vae.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = to_model_range(images[start : start + batch_size]).to(device)
        out.append(to_uint8(vae.decode(vae.encode(x)[0]).float().cpu()))
    vae.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def latent_scale(vae: AutoencoderKL, images: torch.Tensor, seed: int = 0, batch_size: int = 64) -> float:
    """``1 / std`` of posterior samples z of ``images``: the ``scaling_factor`` that gives the diffusion model latents
    of about unit variance (how Rombach et al. set theirs, and Stable Diffusion's 0.18215 was found)."""
    device = next(vae.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    zs = []
    for start in range(0, len(images), batch_size):
        mean, logvar = vae.encode(to_model_range(images[start : start + batch_size]).to(device))
        noise = torch.randn(mean.shape, generator=generator).to(device)
        zs.append((mean + torch.exp(0.5 * logvar) * noise).float().cpu())
    return 1.0 / torch.cat(zs).std().item()


@torch.no_grad()
def reconstruction_scores(vae: AutoencoderKL, images: torch.Tensor) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM (11-tap Gaussian window) of uint8 reconstructions, and the latents' std."""
    rec = reconstruct(vae, images)
    x, y = images.float() / 255, rec.float() / 255
    device = next(vae.parameters()).device
    mean = vae.encode(to_model_range(images[:256]).to(device))[0]
    return {"psnr": psnr(x, y).mean().item(), "ssim": ssim(x, y).mean().item(), "latent_std": mean.std().item(),
            "n": len(images)}


# ---------------------------------------------------------------------------------------------------------------
# The latent diffusion model


@dataclass
class LDMConfig:
    """The UNet (over latents), its noise schedule and the text tower; stored in every LDM checkpoint. The
    autoencoder's config comes with the autoencoder (a component)."""

    diffusion: DiffusionConfig = field(default_factory=lambda: DiffusionConfig(
        UNetConfig(image_size=16, in_channels=4, out_channels=4, channels=(64, 128, 128), attention=(False, True, True),
                   layers_per_block=1, head_dim=32, cross_attention_dim=128), dataset="emoji64",
        prediction_type="v_prediction"))
    text: TextConfig = field(default_factory=lambda: TextConfig(
        vocab_size=1024, context_length=24, width=128, layers=3, heads=4, activation="gelu", pool="eos",
        bos_token_id=0, eos_token_id=1, pad_token_id=1))
    text_embed_dim: int = 128  # the pooled projection's width (CLIP's joint space)

    def __post_init__(self):
        u = self.diffusion.unet
        if u.cross_attention_dim != self.text.width:
            raise GenlabError(f"unet.cross_attention_dim={u.cross_attention_dim} must be the text tower's width "
                              f"text.width={self.text.width}")
        if u.num_heads and any(c % u.num_heads for c in u.channels):
            raise GenlabError(f"unet.channels {tuple(u.channels)} must be divisible by unet.num_heads={u.num_heads}")


@dataclass
class LDMDataConfig:
    size: int = 64  # image size; the latent grid is size / f of the autoencoder
    cond_drop: float = 0.1  # probability of the empty prompt instead of the caption (condition dropout)
    templates: bool = True  # show captions through CLIP's OpenMoji templates


@dataclass
class LDMRun:
    """A preset: ``genlab train ldm --preset NAME vae=PATH key=value ...``."""

    model: LDMConfig = field(default_factory=LDMConfig)
    data: LDMDataConfig = field(default_factory=LDMDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    vae: str = "emoji64-vae"  # the frozen autoencoder: a bundled name or a VAE checkpoint / run directory
    clip: str = ""  # "": train the text tower with the UNet; else a CLIP checkpoint whose text tower stays frozen


LDM_PRESETS: dict[str, LDMRun] = {
    # The bundled model (recipes/emoji64_ldm.py): 16 x 16 x 4 latents of the emoji64-vae, a 128-wide text tower
    # trained with the UNet. 0.67 GFLOP per UNet call: what the 32 px pixel UNet of emoji32-ddpm costs, for 64 px.
    "emoji64-ldm": LDMRun(
        LDMConfig(), LDMDataConfig(),
        TrainConfig(steps=10000, batch_size=64, lr=3e-4, warmup_steps=300, ema_decay=0.999, ckpt_every=500,
                    sample_every=2000),
    ),
    "tiny": LDMRun(
        LDMConfig(DiffusionConfig(UNetConfig(image_size=8, in_channels=2, out_channels=2, channels=(16, 32),
                                             attention=(False, True), layers_per_block=1, norm_groups=8, head_dim=8,
                                             cross_attention_dim=32), dataset="emoji64"),
                  TextConfig(vocab_size=300, context_length=12, width=32, layers=1, heads=2, activation="gelu",
                             pool="eos", bos_token_id=0, eos_token_id=1, pad_token_id=1), text_embed_dim=16),
        LDMDataConfig(size=16),
        TrainConfig(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, ema_decay=0.9, ckpt_every=0),
    ),
}


@dataclass
class Component:
    """A frozen part loaded from elsewhere: its reference, its weights hash, its config and weights."""

    ref: str
    hash: str
    config: dict
    weights: dict[str, torch.Tensor]
    tokenizer: dict | None = None


def component_ref(ref: str) -> str:
    """How a checkpoint records a component: a known name as it is; a path as the absolute path of the checkpoint it
    holds (a run directory's latest one: the run may go on and its next checkpoints would not match the hash)."""
    from ..checkpoint import resolve_checkpoint
    from ..models import REGISTRY, resolve_model

    if ref in REGISTRY:
        return ref
    path = resolve_model(ref)
    return str((resolve_checkpoint(path) if path.is_dir() else path).resolve())


def load_vae_component(ref: str) -> Component:
    """A genlab VAE checkpoint (a training run, a converted diffusers VAE, or a bundled name) as a component."""
    from ..models import resolve_model

    ckpt = load_checkpoint(resolve_model(ref), kind=VAE_KIND)
    if not isinstance(ckpt.config.get("vae"), dict):
        raise GenlabError(f"{ckpt.path}: config.json has no VAE config")
    return Component(component_ref(ref), weights_hash(ckpt.model), ckpt.config, ckpt.model)


def load_clip_component(ref: str) -> Component:
    """A genlab CLIP checkpoint whose text tower (and tokenizer) a latent diffusion model reads, frozen."""
    from ..models import REGISTRY, resolve_model

    ckpt = load_checkpoint(resolve_model(ref), kind="clip")
    if not isinstance(ckpt.config.get("model"), dict) or ckpt.config.get("tokenizer") is None:
        raise GenlabError(f"{ckpt.path}: a CLIP checkpoint needs its model config and tokenizer")
    ref = ref if ref in REGISTRY else str(ckpt.path.resolve())
    return Component(ref, weights_hash(ckpt.model), ckpt.config, ckpt.model, ckpt.config["tokenizer"])


def check_vae_fits(vae: VAEConfig, unet: UNetConfig, source: str) -> None:
    """Refuse, in one line, an autoencoder whose latents are not what the UNet denoises."""
    if vae.latent_channels != unet.in_channels or vae.latent_channels != unet.out_channels:
        raise GenlabError(f"VAE {source} has {vae.latent_channels} latent channels; the UNet denoises "
                          f"{unet.in_channels}")


def check_latent_size(size: int, vae: VAEConfig, unet: UNetConfig, source: str) -> None:
    if size != unet.image_size * vae.factor:
        raise GenlabError(f"{size} px images make {size // vae.factor} px latents with VAE {source} (f = "
                          f"{vae.factor}); model.diffusion.unet.image_size is {unet.image_size}")


def build_ldm(cfg: LDMConfig, vae: VAEConfig) -> LatentDiffusion:
    return LatentDiffusion(cfg.diffusion.unet, vae, cfg.text, cfg.text_embed_dim)


def component_state(model: nn.Module, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A component's weights that are ``model``'s own (same names: a VAE run's ``vae.*``, a CLIP's ``text.*``)."""
    own = model.state_dict()
    return {k: v for k, v in weights.items() if k in own}


class LDMTask:
    """The latent diffusion task handed to :class:`genlab.train.Trainer` (module docstring)."""

    kind = LDM_KIND

    def __init__(self, run: LDMRun, images: torch.Tensor | None = None, captions: list[str] | None = None):
        self.run = run
        if images is None:
            from .data import load_captioned_emoji

            data = load_captioned_emoji(run.data.size, "train")
            images, captions = data.images, data.captions
        self.images, self.captions = images, list(captions)
        self.vae = load_vae_component(run.vae)
        vae_cfg = from_dict(VAEConfig, self.vae.config["vae"])
        check_vae_fits(vae_cfg, run.model.diffusion.unet, run.vae)
        check_latent_size(run.data.size, vae_cfg, run.model.diffusion.unet, run.vae)
        self.clip = load_clip_component(run.clip) if run.clip else None
        self.variants = [caption_variants(c, "openmoji", "") if run.data.templates else [c] for c in self.captions]
        self.cfg, self.tokenizer = self._text_tower(run)
        self.model = build_ldm(self.cfg, vae_cfg)
        for part in (self.vae, self.clip):  # the frozen parts' weights, under the same names in their checkpoints
            if part is not None:
                state = component_state(self.model, part.weights)
                self.model.load_state_dict({**self.model.state_dict(), **state})
        self.schedule = self.cfg.diffusion.noise_schedule()
        self.empty = tokenize(self.tokenizer, [""])  # (1, L): the unconditional prompt
        self.num_examples = len(self.images)
        self.meta = {"num_examples": self.num_examples, "vae": run.vae, "clip": run.clip or None}
        self.moments: torch.Tensor | None = None  # (N, 2c, h, w) posterior mean and log-variance, from setup

    def _text_tower(self, run: LDMRun) -> tuple[LDMConfig, ClipTokenizer]:
        """The model config and tokenizer: a byte-pair alphabet trained on the captions for a text tower trained
        here, or a CLIP checkpoint's shape and tokenizer for its frozen text tower."""
        if self.clip is None:
            texts = [v for vs in self.variants for v in vs]
            return run.model, ClipTokenizer(train_alphabet(texts, run.model.text.vocab_size), run.model.text)
        clip_cfg = self.clip.config["model"]
        cfg = replace(run.model, text=from_dict(TextConfig, clip_cfg["text"]), text_embed_dim=clip_cfg["embed_dim"])
        return cfg, ClipTokenizer.from_json(self.clip.tokenizer, cfg.text)

    def frozen(self) -> dict[str, nn.Module]:
        return {"vae": self.model.vae, **({"clip": self.model.text} if self.clip is not None else {})}

    def components(self) -> dict[str, dict[str, str]]:
        parts = {"vae": self.vae, **({"clip": self.clip} if self.clip is not None else {})}
        return {name: {"ref": c.ref, "hash": c.hash} for name, c in parts.items()}

    @torch.no_grad()
    def setup(self, ctx) -> None:
        """Encode every training image once with the frozen autoencoder (the posterior's moments)."""
        vae = self.model.vae.to(ctx.device).eval()
        out = []
        for start in range(0, len(self.images), 64):
            x = to_model_range(self.images[start : start + 64]).to(ctx.device)
            out.append(torch.cat(vae.encode(x), dim=1).cpu())  # (b, 2c, h, w)
        self.moments = torch.cat(out)

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        texts = [self.variants[i][int(torch.randint(len(self.variants[i]), ()))] for i in indices.tolist()]
        tokens = tokenize(self.tokenizer, texts)  # (b, L)
        drop = torch.rand(len(texts)) < self.run.data.cond_drop  # condition dropout (Ho & Salimans 2022)
        tokens[drop] = self.empty
        return {"moments": self.moments[indices], "tokens": tokens}

    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        vae = self.model.vae.cfg
        mean, logvar = batch["moments"].chunk(2, dim=1)
        z = (mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) - vae.shift_factor) * vae.scaling_factor
        context = self.model.encode_text(batch["tokens"])[0]  # (b, L, width)
        loss = self.schedule.loss(partial(self.model.unet, context=context), z, self.cfg.diffusion.prediction_type)
        return loss, {"loss": loss.item()}

    def checkpoint_config(self) -> dict:
        return {"model": to_dict(self.cfg), "tokenizer": self.tokenizer.to_json()}

    @torch.no_grad()
    def sample(self, out_dir: Path, step: int, ema_model) -> None:
        """Eight training captions at guidance 4, DPM-Solver++ 2M Karras, 20 steps."""
        from .pipeline import LoadedLDM, generate, save_images

        prompts = [self.captions[i] for i in torch.linspace(0, len(self.captions) - 1, 8).long().tolist()]
        loaded = LoadedLDM(ema_model, self.cfg, self.tokenizer, str(out_dir), {}, {})
        images = generate(loaded, prompts, guidance=4.0, sampler="dpmpp-2m-karras", steps=20, seed=0)
        save_images(images, out_dir / f"step_{step:07d}.png", {"step": step, "prompts": prompts, "guidance": 4.0,
                                                                 "sampler": "dpmpp-2m-karras", "steps": 20, "seed": 0})
