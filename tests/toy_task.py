"""A deterministic regression task (no randomness in its loss) for testing the trainer's mechanics."""

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
