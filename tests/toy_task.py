"""Toy tasks for the trainer's tests: a deterministic regression, a 2-D GAN with lazy R1, a two-tower contrastive."""

import math

import torch
import torch.nn.functional as F
from torch import nn


class RegressionTask:
    kind = "toy-regression"

    def __init__(self, n: int = 64):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.randn(4, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
        self.num_examples = n

    def batch(self, indices):
        return self.x[indices], self.y[indices]

    def loss(self, batch, phase):
        x, y = batch
        loss = F.mse_loss(self.model(x), y)
        return loss, {"loss": loss.item()}

    def checkpoint_config(self):
        return {}


# ---------------------------------------------------------------------------------------------------------------
# A GAN on 2-D data: two phases with their own optimizers and a lazy R1 penalty phase.


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.LeakyReLU(0.2), nn.Linear(d_hidden, d_hidden),
                         nn.LeakyReLU(0.2), nn.Linear(d_hidden, d_out))


class ToyGAN(nn.Module):
    def __init__(self, z_dim: int = 4, hidden: int = 32):
        super().__init__()
        self.G = mlp(z_dim, hidden, 2)
        self.D = mlp(2, hidden, 1)


class GANTask:
    """Non-saturating logistic GAN (Goodfellow et al. 2014) with the R1 penalty on real data (Mescheder et al.
    2018), applied lazily every ``r1_every`` steps and scaled by ``r1_every`` (Karras et al. 2020, StyleGAN2 3.1).

    Real data: two Gaussian blobs at (-2, 1) and (2, 1). Every example carries its own latent, drawn once, so the
    batch (and with it the update) depends only on the example indices: 2 processes equal 1 on the same batch.
    """

    kind = "toy-gan"

    def __init__(self, n: int = 2048, z_dim: int = 4, r1_gamma: float = 1.0, r1_every: int = 2):
        from genlab.train import Phase

        g = torch.Generator().manual_seed(1)
        centres = torch.tensor([[-2.0, 1.0], [2.0, 1.0]])
        self.real = centres[torch.arange(n) % 2] + 0.2 * torch.randn(n, 2, generator=g)
        self.z = torch.randn(n, z_dim, generator=g)
        torch.manual_seed(0)
        self.model = ToyGAN(z_dim)
        self.num_examples = n
        self.r1_gamma, self.r1_every = r1_gamma, r1_every
        self.phases = [Phase("D", lr=2e-3, betas=(0.5, 0.9)), Phase("D_r1", lr=2e-3, betas=(0.5, 0.9), every=r1_every),
                       Phase("G", lr=1e-3, betas=(0.5, 0.9), grad_clip=0.0)]
        self.r1_steps = 0

    def batch(self, indices):
        return self.real[indices], self.z[indices]

    def parameters(self, phase):
        return (self.model.G if phase == "G" else self.model.D).parameters()

    def ema_module(self):
        return self.model.G

    def loss(self, batch, phase):
        real, z = batch
        D, G = self.model.D, self.model.G
        if phase == "D":
            loss = F.softplus(D(G(z).detach())).mean() + F.softplus(-D(real)).mean()
        elif phase == "G":
            loss = F.softplus(-D(G(z))).mean()
        else:
            self.r1_steps += 1
            real = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
            penalty = grad.square().sum(1).mean()
            return penalty * (self.r1_gamma / 2) * self.r1_every, {"loss": penalty.item()}
        return loss, {"loss": loss.item()}

    def checkpoint_config(self):
        return {"z_dim": self.z.shape[1]}


def mode_distance(points: torch.Tensor) -> float:
    """Mean distance of points to the nearer of the two blob centres."""
    centres = torch.tensor([[-2.0, 1.0], [2.0, 1.0]])
    return float(torch.cdist(points, centres).min(1).values.mean())


# ---------------------------------------------------------------------------------------------------------------
# A two-tower contrastive task: symmetric InfoNCE with learned temperature, negatives gathered from every rank.


class Tower(nn.Sequential):
    def __init__(self, d_in: int, d_out: int, hidden: int = 32, dropout: float = 0.0):
        super().__init__(nn.Linear(d_in, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, d_out))


class TwoTower(nn.Module):
    def __init__(self, tower_b: nn.Module | None = None, d_embed: int = 16):
        super().__init__()
        self.tower_a = Tower(8, d_embed)
        self.tower_b = tower_b if tower_b is not None else Tower(6, d_embed)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature


class ContrastiveTask:
    """CLIP's symmetric InfoNCE (Radford et al. 2021, figure 3) on two views of one hidden 4-D point: view A is a
    random linear map of it to 8-D, view B a tanh of another map to 6-D. Under DDP the embeddings of every rank
    are gathered (:func:`genlab.train.all_gather`) so that each pair is scored against the whole global batch.

    ``noise`` > 0 perturbs view A with the global RNG (exercises RNG state on resume). ``locked`` gives LiT
    (Zhai et al. 2022): tower B is a frozen component loaded from a checkpoint, only tower A learns.
    """

    kind = "toy-contrastive"

    def __init__(self, n: int = 1024, noise: float = 0.0, locked: str | None = None):
        g = torch.Generator().manual_seed(2)
        hidden = torch.randn(n + 256, 4, generator=g)
        self.view_a = hidden @ torch.randn(4, 8, generator=g)
        self.view_b = torch.tanh(hidden @ torch.randn(4, 6, generator=g))
        self.num_examples, self.noise, self.locked = n, noise, locked
        self.ctx = None
        self.tower_b_training: list[bool] = []
        torch.manual_seed(0)
        tower_b = None
        if locked:
            from genlab.checkpoint import load_checkpoint, weights_hash

            ckpt = load_checkpoint(locked, kind="toy-tower")
            tower_b = Tower(6, 16, dropout=0.5)  # dropout: only eval mode makes a frozen tower deterministic
            tower_b.load_state_dict(ckpt.model)
            self.tower_hash = weights_hash(ckpt.model)
        self.model = TwoTower(tower_b)

    def setup(self, ctx):
        self.ctx = ctx

    def frozen(self):
        return {"tower_b": self.model.tower_b} if self.locked else {}

    def components(self):
        return {"tower_b": {"ref": str(self.locked), "hash": self.tower_hash}} if self.locked else {}

    def batch(self, indices):
        return self.view_a[indices], self.view_b[indices]

    def embed(self, a, b):
        return F.normalize(self.model.tower_a(a), dim=-1), F.normalize(self.model.tower_b(b), dim=-1)

    def loss(self, batch, phase):
        from genlab.train import all_gather

        a, b = batch
        if self.noise:
            a = a + self.noise * torch.randn_like(a)
        self.tower_b_training.append(self.model.tower_b.training)
        ea, eb = self.embed(a, b)
        ea, eb = all_gather(ea, self.ctx), all_gather(eb, self.ctx)  # (W * B, d): every rank's pairs
        logits = self.model.logit_scale.exp() * ea @ eb.T  # (W * B, W * B)
        target = torch.arange(len(ea), device=ea.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        return loss, {"loss": loss.item()}

    @torch.no_grad()
    def retrieval_accuracy(self) -> float:
        """Top-1 A -> B retrieval on 256 held-out pairs (chance: 1/256)."""
        self.model.eval()
        ea, eb = self.embed(self.view_a[-256:], self.view_b[-256:])
        return float(((ea @ eb.T).argmax(1) == torch.arange(256)).float().mean())

    def checkpoint_config(self):
        return {"d_embed": 16}
