import pytest
import torch

from genlab.checkpoint import save_checkpoint
from genlab.clip.model import CLIP, PRESETS
from genlab.clip.text import ClipTokenizer, train_alphabet
from genlab.config import to_dict

CAPTIONS = ["a red square", "a blue circle", "a green triangle", "a yellow star", "a black cross", "the digit 3",
            "a grinning face", "a red apple", "a small dog", "a big cat"] * 3


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """A random-init tiny CLIP checkpoint with a trained BPE alphabet: the CLI's mechanics, not its accuracy."""
    cfg = PRESETS["tiny"]
    torch.manual_seed(0)
    model = CLIP(cfg)
    tok = ClipTokenizer(train_alphabet(CAPTIONS, cfg.text.vocab_size), cfg.text)
    path = tmp_path_factory.mktemp("ckpt") / "tiny-clip"
    save_checkpoint(path, kind="clip", config={"model": to_dict(cfg), "tokenizer": tok.to_json()},
                    model=model.state_dict())
    return path
