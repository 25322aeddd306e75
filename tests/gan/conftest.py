import pytest
import torch

from genlab.checkpoint import save_checkpoint
from genlab.config import to_dict
from genlab.gan.model import GAN
from genlab.gan.task import PRESETS


@pytest.fixture(scope="session")
def tiny_gan_dir(tmp_path_factory):
    """A random-init tiny conditional StyleGAN2 saved as a GAN checkpoint (the EMA generator, as exported)."""
    spec = PRESETS["tiny"].model
    torch.manual_seed(0)
    gan = GAN(spec.net, spec.loss.augment)
    with torch.no_grad():
        gan.G.mapping.w_avg.normal_()
        for layer in gan.G.synthesis.noise_layers():
            layer.noise_strength.fill_(0.2)
    path = tmp_path_factory.mktemp("gan") / "tiny"
    save_checkpoint(path, kind="gan", config=to_dict(spec), model=gan.G.state_dict(), meta={"step": 0})
    return path
