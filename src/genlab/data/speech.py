"""A multilingual, many-voice speech corpus synthesised offline with espeak-ng (``genlab data speech``).

The point is the Whisper paper's point at small scale: the recogniser is ordinary, the variety of its training
audio is what makes it general. So every utterance draws its own language, accent, voice variant, speaking rate,
pitch, background noise and room (Radford et al. 2022, section 2.1; Ko et al. 2017 for simulated reverberation).

espeak-ng is GPL-3.0: it is used only through the optional ``genlab[speech]`` extra (``espeakng-loader`` ships
``libespeak-ng.so`` and its data; ``dataset_build`` ships the text, see :mod:`genlab.data.text_sources`), loaded
with ``ctypes`` inside this module, never imported by the core.

Splits (all held-out splits use held-out sentences, so they differ from ``test_sentences`` only in the voice):

- ``train``           training sentences, training accents and voice variants;
- ``test_sentences``  unseen sentences, seen accents and variants;
- ``test_voices``     unseen sentences, seen accents, unseen voice variants (:data:`HELD_OUT_VARIANTS`);
- ``test_accents``    unseen sentences, a whole accent never heard in training (:data:`HELD_OUT_ACCENTS`).

espeak's output is not bit-identical from run to run, so the corpus is built once and cached: one FLAC (16 kHz,
16-bit) per utterance and a ``manifest.json`` holding the whole plan (text, voice, augmentation parameters) and a
sha256 per file, under ``cache_dir("speech", ...)``. The plan is a pure function of the seed.
"""

from __future__ import annotations

import ctypes
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GenlabError
from .cache import cache_dir, read_manifest, write_manifest

VERSION = 1
SAMPLE_RATE = 16000
SPLITS = ("train", "test_sentences", "test_voices", "test_accents")

# Whisper language code -> espeak voices of its accents. espeak_SetVoiceByName wants the voice file's id
# ("en" is British English, "fr" is France's French), not the language tag that espeak_ListVoices reports.
ACCENTS: dict[str, tuple[str, ...]] = {
    "en": ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc",
           "en-gb-scotland"),
    "de": ("de",),
    "fr": ("fr", "fr-be", "fr-ch"),
    "es": ("es", "es-419"),
    "it": ("it",),
    "pt": ("pt", "pt-br"),
}
LANGUAGES = tuple(ACCENTS)
# One whole accent per language that has several, never heard in training.
HELD_OUT_ACCENTS = ("en-gb-scotland", "fr-ch", "es-419", "pt-br")

# espeak voice variants (espeak-ng-data/voices/!v). The novelty ones (robots, croak, whisper, demonic) are left out.
TRAIN_VARIANTS = (
    "", "m1", "m2", "m4", "m5", "m6", "m8", "f1", "f3", "f5", "klatt", "klatt2", "klatt4", "Alex", "Andy",
    "Annie", "Denis", "Gene", "Hugo", "Jacky", "Lee", "Mario", "Michael", "Mike", "adam", "anika", "aunty",
    "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward", "iven", "john", "linda", "max", "michel",
    "norbert", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph", "travis", "victor", "zac",
)
HELD_OUT_VARIANTS = ("m3", "m7", "f2", "f4", "klatt3", "antonio", "marcelo", "grandma")

TEST_SENTENCE_FRACTION = 0.1


@dataclass
class CorpusSize:
    """Utterances per language in each split (``test_accents`` only for languages with a held-out accent)."""

    train: int = 1200
    test_sentences: int = 50
    test_voices: int = 50
    test_accents: int = 50

    @property
    def total(self) -> int:
        n_acc = sum(any(a in HELD_OUT_ACCENTS for a in acc) for acc in ACCENTS.values())
        return len(LANGUAGES) * (self.train + self.test_sentences + self.test_voices) + n_acc * self.test_accents

    @classmethod
    def about(cls, utterances: int) -> CorpusSize:
        """A size with roughly ``utterances`` in all, the same proportions as the default, at least 1 per split."""
        scale = utterances / cls().total
        d = cls()
        return cls(*(max(1, round(getattr(d, s) * scale)) for s in SPLITS))


@dataclass
class Utterance:
    """One planned utterance: everything needed to synthesise it again, and its transcript."""

    id: str
    split: str
    language: str
    text: str
    accent: str  # espeak voice name, e.g. "en-us"
    variant: str  # espeak variant, "" for the accent's own voice
    rate: int  # words per minute (espeak default 175)
    pitch: int  # 0-100 (espeak default 50)
    pitch_range: int  # 0-100 (espeak default 50)
    gain_db: float
    lead_s: float  # silence before and after the speech
    trail_s: float
    noise_color: float  # spectral exponent: 0 white, 1 pink, 2 brown; negative: no noise
    snr_db: float
    rt60_s: float  # reverberation time; 0: dry
    wet: float  # reverberant share of the signal
    duration_s: float = 0.0  # filled in when synthesised

    @property
    def voice(self) -> str:
        return self.accent + (f"+{self.variant}" if self.variant else "")


# ---------------------------------------------------------------------------------------------------------------
# espeak-ng through ctypes


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("languages", ctypes.c_char_p), ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int), ("spare", ctypes.c_void_p),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_espeakRATE, _espeakPITCH, _espeakRANGE = 1, 3, 4
_espeakCHARS_UTF8 = 1


_ESPEAK_LIB: tuple[ctypes.CDLL, int] | None = None
_PHONEME_EVENTS, _PHONEME_IPA = 0x1, 0x2


def espeak_library(needed_by: str) -> tuple[ctypes.CDLL, int]:
    """libespeak-ng and its sample rate, initialised once per process: the library keeps global state, so the corpus
    builder (:class:`Espeak`) and the TTS phonemizer (:class:`genlab.tts.phonemes.Phonemizer`) share one
    initialisation, in synchronous mode with IPA phoneme events on (the phonemizer reads them, the builder ignores
    them), and each sets its own synth callback before every call. ``needed_by`` names the feature in the error."""
    global _ESPEAK_LIB
    if _ESPEAK_LIB is not None:
        return _ESPEAK_LIB
    try:
        import espeakng_loader
    except ImportError:
        raise GenlabError(f"{needed_by} needs espeak-ng: install genlab[speech] (espeakng-loader)") from None
    try:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
    except OSError as e:
        raise GenlabError(f"cannot load libespeak-ng from espeakng-loader: {e}") from None
    data = espeakng_loader.get_data_path().encode()
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _PHONEME_EVENTS | _PHONEME_IPA)
    if rate <= 0:
        raise GenlabError(f"espeak_Initialize failed ({rate}) with data at {data.decode()}")
    _ESPEAK_LIB = lib, rate
    return _ESPEAK_LIB


class Espeak:
    """libespeak-ng in synchronous mode: ``synth(text, voice, rate, pitch, pitch_range)`` -> float32 at 22,050 Hz.

    One per process; :func:`espeak` returns it.
    """

    def __init__(self):
        self.lib, self.sample_rate = espeak_library("the speech corpus")
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: espeak calls it from C
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))

    def _collect(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0: go on synthesising

    def voices(self) -> list[str]:
        """Ids of the installed voices (``en-us``, ``fr``, ...), lowercased, as espeak_SetVoiceByName takes them."""
        listed = self.lib.espeak_ListVoices(None)
        names, i = [], 0
        while listed[i]:
            v = listed[i].contents
            names.append(v.identifier.decode().rsplit("/", 1)[-1].lower())  # "gmw/en-US" -> "en-us"
            i += 1
        return names

    def synth(self, text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise GenlabError(f"espeak-ng has no voice {voice!r}")
        for param, value in ((_espeakRATE, rate), (_espeakPITCH, pitch), (_espeakRANGE, pitch_range)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        self._chunks = []
        data = text.encode("utf-8")
        self.lib.espeak_SetSynthCallback(self._callback)  # the phonemizer may have set its own since
        self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _espeakCHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0


_ESPEAK: Espeak | None = None


def espeak() -> Espeak:
    global _ESPEAK
    if _ESPEAK is None:
        _ESPEAK = Espeak()
    return _ESPEAK


# ---------------------------------------------------------------------------------------------------------------
# The plan: a pure function of the seed and the text.


def _split_sentences(seed: int) -> dict[str, dict[str, list[str]]]:
    """Per language, a seeded shuffle of its sentences cut into training and held-out sentences."""
    from .text_sources import load_sentences

    out = {}
    for lang in LANGUAGES:
        sentences = list(load_sentences(lang))
        random.Random(f"{seed}-sentences-{lang}").shuffle(sentences)
        n_test = max(1, int(len(sentences) * TEST_SENTENCE_FRACTION))
        out[lang] = {"test": sentences[:n_test], "train": sentences[n_test:]}
    return out


def _draw(rng: random.Random, uid: str, split: str, lang: str, text: str, accent: str, variant: str) -> Utterance:
    # Noise is planned for 60 % of clips, but a white-noise draw whose jittered exponent falls below 0 means "no
    # noise" (noise_color < 0), so about half the clips are noisy (49.6 % of the seed-0 corpus). Kept as it is:
    # changing it would change every cached corpus's plan.
    noisy = rng.random() < 0.6
    reverb = rng.random() < 0.4
    return Utterance(
        id=uid, split=split, language=lang, text=text, accent=accent, variant=variant,
        rate=rng.randint(120, 230), pitch=rng.randint(25, 75), pitch_range=rng.randint(20, 80),
        gain_db=round(rng.uniform(-12.0, 0.0), 2), lead_s=round(rng.uniform(0.05, 0.5), 3),
        trail_s=round(rng.uniform(0.05, 0.5), 3),
        noise_color=round(rng.choice([0.0, 1.0, 2.0]) + rng.uniform(-0.3, 0.3), 3) if noisy else -1.0,
        snr_db=round(rng.uniform(5.0, 35.0), 2) if noisy else 0.0,
        rt60_s=round(rng.uniform(0.15, 0.8), 3) if reverb else 0.0,
        wet=round(rng.uniform(0.2, 0.6), 3) if reverb else 0.0,
    )


def plan(seed: int = 0, size: CorpusSize | None = None) -> list[Utterance]:
    """Every utterance of the corpus, drawn from ``seed`` alone (same seed and text -> the same plan)."""
    size = size or CorpusSize()
    sentences = _split_sentences(seed)
    rng = random.Random(f"{seed}-plan")
    out: list[Utterance] = []
    for lang in LANGUAGES:
        seen_accents = [a for a in ACCENTS[lang] if a not in HELD_OUT_ACCENTS]
        held_accents = [a for a in ACCENTS[lang] if a in HELD_OUT_ACCENTS]
        for split in SPLITS:
            n = getattr(size, split)
            if split == "test_accents" and not held_accents:
                continue
            pool = sentences[lang]["train" if split == "train" else "test"]
            accents = held_accents if split == "test_accents" else seen_accents
            variants = HELD_OUT_VARIANTS if split == "test_voices" else TRAIN_VARIANTS
            order = list(range(len(pool)))
            rng.shuffle(order)
            for i in range(n):
                text = pool[order[i % len(order)]]  # cycle through the sentences: each heard in several voices
                uid = f"{split}-{lang}-{i:05d}"
                out.append(_draw(rng, uid, split, lang, text, rng.choice(accents), rng.choice(variants)))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Rendering: synthesis, then the room and the noise.


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power falls as ``1 / f**exponent`` (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 2 else 1.0
    spectrum *= f ** (-exponent / 2)
    noise = np.fft.irfft(spectrum, n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def room_impulse_response(rt60: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: the direct path, then exponentially decaying noise, -60 dB after ``rt60`` seconds."""
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078: amplitude -60 dB at rt60
    tail[: int(0.002 * sr)] = 0.0  # the first reflection arrives a few ms after the direct sound
    ir = tail / (np.sqrt(np.sum(tail**2)) + 1e-12)
    ir[0] = 1.0
    return ir.astype(np.float32)


def render(u: Utterance, engine: Espeak, seed: int) -> np.ndarray:
    """Synthesise one planned utterance and augment it: float32 mono at 16 kHz."""
    import soxr

    speech = engine.synth(u.text, u.voice, u.rate, u.pitch, u.pitch_range)
    speech = soxr.resample(speech, engine.sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    rng = np.random.default_rng([seed, int.from_bytes(u.id.encode()[-8:], "little")])
    if u.rt60_s > 0:
        ir = room_impulse_response(u.rt60_s, SAMPLE_RATE, rng)
        n = len(speech) + len(ir) - 1  # linear convolution through the FFT
        wet = np.fft.irfft(np.fft.rfft(speech, n) * np.fft.rfft(ir, n), n).astype(np.float32)
        wet = wet[: len(speech) + int(0.3 * SAMPLE_RATE)]  # keep 0.3 s of the reverberant tail
        dry = np.pad(speech, (0, len(wet) - len(speech)))
        wet *= np.sqrt(np.sum(dry**2) / (np.sum(wet**2) + 1e-12))
        speech = (1 - u.wet) * dry + u.wet * wet
    peak = np.max(np.abs(speech)) + 1e-9
    speech = speech / peak * 10 ** (u.gain_db / 20) * 0.9
    audio = np.concatenate([
        np.zeros(int(u.lead_s * SAMPLE_RATE), np.float32), speech, np.zeros(int(u.trail_s * SAMPLE_RATE), np.float32)
    ])
    if u.noise_color >= 0:
        speech_rms = np.sqrt(np.mean(speech**2)) + 1e-9
        audio = audio + coloured_noise(len(audio), u.noise_color, rng) * speech_rms * 10 ** (-u.snr_db / 20)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# The cached corpus


class SpeechCorpus:
    """A built corpus: ``utterances`` (the plan, with durations) and ``audio(i)`` -> float32 16 kHz."""

    def __init__(self, directory: Path, manifest: dict[str, Any]):
        self.directory = directory
        self.manifest = manifest
        self.seed = manifest["seed"]
        self.utterances = [Utterance(**u) for u in manifest["utterances"]]

    def __len__(self) -> int:
        return len(self.utterances)

    def path(self, i: int) -> Path:
        u = self.utterances[i]
        return self.directory / u.split / f"{u.id}.flac"

    def audio(self, i: int) -> np.ndarray:
        import soundfile

        return soundfile.read(self.path(i), dtype="float32")[0]

    def split(self, name: str) -> list[int]:
        if name not in SPLITS:
            raise GenlabError(f"unknown speech split {name!r}: choose one of {', '.join(SPLITS)}")
        return [i for i, u in enumerate(self.utterances) if u.split == name]

    def stats(self) -> dict[str, dict[str, dict[str, float]]]:
        """Utterances and hours per split and language."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for u in self.utterances:
            s = out.setdefault(u.split, {}).setdefault(u.language, {"utterances": 0, "hours": 0.0})
            s["utterances"] += 1
            s["hours"] += u.duration_s / 3600
        return out


def corpus_dir(seed: int, size: CorpusSize) -> Path:
    return cache_dir("speech", f"v{VERSION}-seed{seed}-n{size.total}")


def build(seed: int = 0, size: CorpusSize | None = None, rebuild: bool = False, progress: bool = True) -> SpeechCorpus:
    """Build (or reuse) the cached corpus for ``seed`` and ``size``."""
    size = size or CorpusSize()
    directory = corpus_dir(seed, size)
    if not rebuild:
        manifest = read_manifest(directory, verify=False)
        if manifest is not None and manifest.get("version") == VERSION:
            return SpeechCorpus(directory, manifest)
    import soundfile

    engine = espeak()
    installed = set(engine.voices())
    missing = sorted({a for acc in ACCENTS.values() for a in acc} - installed)
    if missing:
        raise GenlabError(f"espeak-ng data lacks voices {', '.join(missing)}; reinstall genlab[speech]")
    utterances = plan(seed, size)
    for split in SPLITS:
        (directory / split).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    files = []
    for k, u in enumerate(utterances):
        audio = render(u, engine, seed)
        u.duration_s = round(len(audio) / SAMPLE_RATE, 4)
        name = f"{u.split}/{u.id}.flac"
        soundfile.write(directory / name, audio, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
        files.append(name)
        if progress and (k + 1) % 500 == 0:
            print(f"  {k + 1}/{len(utterances)} utterances, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    seconds = time.perf_counter() - t0
    info = {
        "version": VERSION, "seed": seed, "size": asdict(size), "sample_rate": SAMPLE_RATE,
        "build_seconds": round(seconds, 1), "audio_hours": round(sum(u.duration_s for u in utterances) / 3600, 4),
        "text_source": "dataset_build (BSD-2-Clause; LLM-generated prose)", "synthesiser": "espeak-ng (GPL-3.0)",
        "held_out_accents": list(HELD_OUT_ACCENTS), "held_out_variants": list(HELD_OUT_VARIANTS),
        "utterances": [asdict(u) for u in utterances],
    }
    write_manifest(directory, files, info)
    return SpeechCorpus(directory, read_manifest(directory, verify=False))


def load(seed: int = 0, size: CorpusSize | None = None, verify: bool = False) -> SpeechCorpus:
    """The cached corpus; builds it when absent (needs genlab[speech])."""
    size = size or CorpusSize()
    directory = corpus_dir(seed, size)
    manifest = read_manifest(directory, verify=verify)
    if manifest is not None and manifest.get("version") == VERSION:
        return SpeechCorpus(directory, manifest)
    return build(seed, size)


def cli_main(args) -> None:
    size = CorpusSize.about(args.utterances) if args.utterances else CorpusSize()
    seed = getattr(args, "seed", 0) or 0
    t0 = time.perf_counter()
    corpus = build(seed, size, rebuild=args.rebuild)
    print(
        f"speech corpus: {len(corpus)} utterances, {corpus.manifest['audio_hours']:.2f} h, built in "
        f"{corpus.manifest['build_seconds']:.0f} s ({time.perf_counter() - t0:.1f} s this call) at {corpus.directory}"
    )
    for split, langs in corpus.stats().items():
        row = ", ".join(f"{lang} {s['utterances']} ({s['hours'] * 60:.1f} min)" for lang, s in sorted(langs.items()))
        print(f"  {split:15s} {row}")
