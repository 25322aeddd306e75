"""Words -> phonemes with their timing, from espeak-ng (GPL-3.0: only through the ``genlab[speech]`` extra, loaded
with ctypes here, never imported by the core).

espeak is asked for phoneme events in IPA (``espeak_Initialize(..., options = PHONEME_EVENTS | PHONEME_IPA)``): while
it synthesises, it reports each phoneme and the sample where it starts. That gives both what the acoustic model
reads (the phoneme sequence, stress split off as its own input) and, for the espeak training corpus, the exact
duration of every phoneme, so no aligner is needed. At synthesis time the same call phonemises the text (espeak's
audio is thrown away), so training and inference see one phonemiser.

:class:`Phonemes` holds one utterance: ``symbols`` (IPA strings, ``"_"`` for a pause), ``stress`` (0 none,
1 primary ˈ, 2 secondary ˌ), ``starts`` (the first sample of each, at espeak's 22,050 Hz) and the espeak audio.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from ..errors import GenlabError

PAUSE = "_"
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_espeakRATE, _espeakPITCH, _espeakRANGE = 1, 3, 4
_espeakCHARS_UTF8 = 1
STRESS_MARKS = {"ˈ": 1, "ˌ": 2}


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class Phonemes:
    symbols: list[str]
    stress: list[int]
    starts: list[int]  # first sample of each symbol at ``sample_rate``
    audio: np.ndarray  # espeak's own rendering (float32)
    sample_rate: int

    def frame_durations(self, hop: int, n_frames: int) -> np.ndarray:
        """Frames per symbol for a spectrogram of ``n_frames`` frames every ``hop`` samples: boundaries rounded to
        the nearest frame, the last symbol running to the end, summing exactly to ``n_frames``."""
        bounds = np.round(np.asarray(self.starts, dtype=np.float64) / hop).astype(np.int64)
        bounds = np.clip(np.maximum.accumulate(bounds), 0, n_frames)
        return np.diff(np.append(bounds, n_frames))


class Phonemizer:
    """libespeak-ng with IPA phoneme events. One per process (espeak keeps global state): use :func:`phonemizer`."""

    def __init__(self):
        from ..data.speech import espeak_library

        self.lib, self.sample_rate = espeak_library("speaking (phonemes)")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: espeak calls it from C

    def _collect(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type == _EVENT_PHONEME:
                self._events.append((e.sample, bytes(e.id).split(b"\0")[0].decode("utf-8", "replace")))
            i += 1
        return 0

    def __call__(self, text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50,
                 pitch_range: int = 50) -> Phonemes:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise GenlabError(f"espeak-ng has no voice {voice!r}")
        for param, value in ((_espeakRATE, rate), (_espeakPITCH, pitch), (_espeakRANGE, pitch_range)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        self.lib.espeak_SetSynthCallback(self._callback)  # the corpus builder may have set its own since
        self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _espeakCHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks).astype(np.float32) / 32768 if self._chunks else np.zeros(0, np.float32)
        return _segment(self._events, audio, self.sample_rate)


def _segment(events: list[tuple[int, str]], audio: np.ndarray, sample_rate: int) -> Phonemes:
    """Phoneme events -> symbols with stress split off; empty events are pauses (runs merged); silence before the
    first phoneme becomes a pause too."""
    symbols, stress, starts = [], [], []
    if events and events[0][0] > 0:
        symbols, stress, starts = [PAUSE], [0], [0]
    for sample, ipa in events:
        level = 0
        while ipa and ipa[0] in STRESS_MARKS:
            level = max(level, STRESS_MARKS[ipa[0]])
            ipa = ipa[1:]
        symbol = ipa or PAUSE
        if symbol == PAUSE and symbols and symbols[-1] == PAUSE:
            continue  # a run of pause events is one pause
        symbols.append(symbol)
        stress.append(level)
        starts.append(min(int(sample), len(audio)))
    return Phonemes(symbols, stress, starts, audio, sample_rate)


_PHONEMIZER: Phonemizer | None = None


def phonemizer() -> Phonemizer:
    global _PHONEMIZER
    if _PHONEMIZER is None:
        _PHONEMIZER = Phonemizer()
    return _PHONEMIZER
