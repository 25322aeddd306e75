"""Real speech for the watermark tests: the 5 LibriVox utterances of Debian's pocketsphinx-testdata and jfk.flac
(shared/data); tests that need them skip when they are absent."""

import glob
from pathlib import Path

import numpy as np
import pytest

LIBRIVOX = sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav"))
JFK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "jfk.flac"
REAL = [*LIBRIVOX, *([str(JFK)] if JFK.exists() else [])]


def read(path: str) -> tuple[np.ndarray, int]:
    import soundfile

    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


@pytest.fixture(scope="session")
def real_speech() -> list[tuple[str, np.ndarray, int]]:
    if not REAL:
        pytest.skip("no real speech: apt-get install pocketsphinx-testdata (and shared/data/jfk.flac)")
    return [(p, *read(p)) for p in REAL]


@pytest.fixture(scope="session")
def espeak_speech() -> list[tuple[np.ndarray, int]]:
    """Two espeak-ng sentences (22,050 Hz), or a skip without genlab[speech]."""
    pytest.importorskip("espeakng_loader")
    from genlab.data.speech import espeak

    engine = espeak()
    texts = [("The quiet river carried the small boat past the old mill at dawn.", "en-us"),
             ("Seven bright lanterns hung above the market while the children sang.", "en+m3")]
    return [(engine.synth(t, v, rate=160), engine.sample_rate) for t, v in texts]
