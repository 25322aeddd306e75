"""Whisper: log-mel spectrogram in, transcript out (Radford et al. 2022, "Robust Speech Recognition via
Large-Scale Weak Supervision").

``genlab.asr.load(name_or_path)`` returns a :class:`~genlab.asr.api.WhisperPipeline` with ``.transcribe(...)``
and ``.detect_language(...)``. Named models: ``"base"`` and ``"tiny.en"`` (published weights from the
``genlab[whisper]`` extra) and ``"speech-asr"`` (genlab's own bundled checkpoint); anything else is a path to a
genlab checkpoint, a CTranslate2 directory, an openai-whisper ``.pt`` file or a Hugging Face directory.

Heavy modules are imported on first use so that ``import genlab.asr`` stays cheap.
"""

from __future__ import annotations


def load(name_or_path: str, device: str = "cpu", int8: bool = False, dtype: str | None = None):
    """Load a Whisper model by name or path and return a pipeline with ``transcribe`` / ``detect_language``."""
    from .api import load as _load

    return _load(name_or_path, device=device, int8=int8, dtype=dtype)


__all__ = ["load"]
