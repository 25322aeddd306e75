"""Shared fixtures of the ASR tests."""

import pytest
import torch


@pytest.fixture(scope="session")
def base():
    """Whisper base from the genlab[whisper] packages, loaded once for every test that uses it (those tests skip
    themselves when the packages are absent)."""
    from genlab.asr import load

    torch.set_num_threads(2)
    return load("base")
