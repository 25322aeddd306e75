"""A tiny random-initialised voice bundle (acoustic model with d-vector voices, HiFi-GAN, speaker encoder) saved as
genlab checkpoints: the pipeline's mechanics (text -> normalise -> espeak -> model -> vocoder -> watermark -> file)
are tested on it without training. Tests that phonemise need genlab[speech] (espeakng-loader) and skip without."""

from pathlib import Path

import pytest
import torch

from genlab.checkpoint import save_checkpoint
from genlab.config import to_dict
from genlab.tts.model import AcousticConfig, FastSpeech, HiFiGAN, SpeakerConfig, VocoderConfig
from genlab.tts.speaker import GE2E

PHONEMES = ["n", "ɪ", "ə", "t", "s", "d", "l", "ɹ", "k", "z", "æ", "ɛ", "ð", "p", "m", "v", "ʌ", "ɚ", "ɑː", "eɪ",
            "iː", "b", "w", "f", "aɪ", "h", "ɡ", "oʊ", "uː", "ŋ", "ʃ", "θ", "j", "ɔː", "aʊ", "dʒ", "tʃ", "ʊ", "ᵻ"]


@pytest.fixture(scope="session")
def espeak():
    pytest.importorskip("espeakng_loader")


@pytest.fixture(scope="session")
def bundle(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("bundle")
    acfg = AcousticConfig(phonemes=PHONEMES, n_speakers=2, speaker_dim=16, dim=32, n_head=2, encoder_layers=1,
                          decoder_layers=1, predictor_channels=16, postnet_layers=2, postnet_channels=16)
    acoustic = FastSpeech(acfg)
    with torch.no_grad():
        acoustic.duration.out.bias.fill_(1.8)  # ~5 frames a phoneme, as a trained model would say
        acoustic.voices.copy_(torch.nn.functional.normalize(torch.randn(2, 16), dim=-1))
    save_checkpoint(root / "acoustic", kind="tts-acoustic", config=to_dict(acfg), model=acoustic.state_dict())
    vcfg = VocoderConfig(upsample_initial_channel=16, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),))
    save_checkpoint(root / "vocoder", kind="tts-vocoder", config=to_dict(vcfg),
                    model={f"generator.{k}": v for k, v in HiFiGAN(vcfg).state_dict().items()})
    scfg = SpeakerConfig(hidden=16, layers=1, dim=16)
    save_checkpoint(root / "speaker", kind="tts-speaker", config=to_dict(scfg), model=GE2E(scfg).state_dict())
    return root
