"""Speed machinery for Whisper on CPU, kept apart from the model it speeds up: :mod:`.step` (a decoding step
over weight copies laid out for a few rows, int8), :mod:`.ahead` (encoding the next windows on a second thread).
The model (:mod:`genlab.asr.model`) and the transcription loop work without it."""

from .step import FastWhisper, StepCache

__all__ = ["FastWhisper", "StepCache"]
