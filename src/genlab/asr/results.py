"""What transcription returns: segments of text on the file's clock, with words if asked."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Word:
    word: str
    start: float
    end: float
    probability: float



@dataclass
class Segment:
    id: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[Word] = field(default_factory=list)



@dataclass
class TranscriptionResult:
    text: str
    segments: list[Segment]
    language: str
    duration: float
    language_probs: dict[str, float] | None = None
