"""The contrastive loss against a hand-written figure 3, and data parallelism: 2 gloo processes give the gradient
and the training run of 1 process."""

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from genlab.clip.loss import contrastive_loss

HERE = Path(__file__).parent


def reference(image, text, scale):
    """Radford et al. 2021, figure 3, written out element by element in float64."""
    n = image.shape[0]
    s = [[scale * sum(image[i, d] * text[j, d] for d in range(image.shape[1])) for j in range(n)] for i in range(n)]
    loss_i = -sum(s[i][i] - math.log(sum(math.exp(s[i][j]) for j in range(n))) for i in range(n)) / n
    loss_t = -sum(s[j][j] - math.log(sum(math.exp(s[i][j]) for i in range(n))) for j in range(n)) / n
    return (loss_i + loss_t) / 2


def test_loss_equals_hand_written_figure_3():
    g = torch.Generator().manual_seed(0)
    image = F.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=-1)
    text = F.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=-1)
    for scale in (1.0, 14.3, 100.0):
        loss, logits = contrastive_loss(image, text, torch.tensor(scale, dtype=torch.float64))
        assert logits.shape == (6, 6)
        assert abs(loss.item() - reference(image, text, scale)) < 1e-6


def test_loss_limits():
    """Identical embeddings everywhere: every candidate is as likely, loss = log n. Perfectly separated pairs at a
    high temperature: loss -> 0."""
    x = F.normalize(torch.ones(8, 4), dim=-1)
    assert abs(contrastive_loss(x, x, torch.tensor(50.0))[0].item() - math.log(8)) < 1e-6
    eye = torch.eye(8)
    assert contrastive_loss(eye, eye, torch.tensor(100.0))[0].item() < 1e-6


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_matches_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, str(HERE / "ddp_clip_worker.py"), str(tmp_path / "one")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={_free_port()}", str(HERE / "ddp_clip_worker.py"), str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    # The gradient itself (AdamW is nearly blind to a gradient's scale, so the weights alone would not show a
    # tower gradient off by the world size): equal for every parameter, the temperature included.
    one = load_file(str(tmp_path / "one" / "grads.safetensors"))
    two = load_file(str(tmp_path / "two" / "grads.safetensors"))
    assert one["logit_scale"].abs() > 0
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-6, rtol=1e-4), (k, (one[k] - two[k]).abs().max())
    # Then three steps of the shared trainer (lr 1e-2): equal to 2 % of one step. AdamW divides by the gradient's
    # running RMS, so elements whose gradient is near zero move by rounding noise; the key biases, which the softmax
    # cancels (gradient ~1e-9, pure noise), are left out. Only local negatives would miss by whole steps.
    one = load_file(str(tmp_path / "one" / "final.safetensors"))
    two = load_file(str(tmp_path / "two" / "final.safetensors"))
    for k in (k for k in one if not k.endswith("attn.key.bias")):
        assert torch.allclose(one[k], two[k], atol=2e-4, rtol=0), (k, (one[k] - two[k]).abs().max())
