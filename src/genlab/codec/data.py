"""Real speech of many people, from Debian packages, for training and judging the codec (``genlab data codec``).

No corpus like LibriSpeech installs here, but Debian packages carry recorded voices (DESIGN.md section 4):
telephone prompts of five professional speakers (Asterisk), a Russian TTS voice database (festvox-ru), the two
actors of a Czech and a Dutch adventure game (Fish Fillets NG), KDE's children's games spoken in about forty
languages (KTuberling, KLettres), and codec2's test recordings. ``scripts/install.d/codec.sh`` installs them;
whatever is missing is skipped and the manifest says so.

Everything is resampled with soxr to the codec's rate. **16 kHz**, because the material is at most that wide:
the Asterisk prompts and codec2 clips are 8 kHz recordings, festvox-ru is 16 kHz, so a 24 kHz codec would spend
bits on a band that half the corpus leaves empty; and genlab's speech models (Whisper's log-mel, the espeak
corpus) live at 16 kHz, so the codec's tokens feed them without resampling. (A 24 kHz model is a config change.)

Splits are held out **by speaker**: :data:`TEST_SPEAKERS` never appear in training. Each clip is mixed to mono,
resampled, trimmed of leading and trailing silence and peak-normalised to 0.9. The training split is one
``int16`` array (all training clips end to end, read through a memory map so any window is a slice); the test
split keeps its clips apart (offsets in the manifest), because evaluation is per utterance.

Licences differ per source and are recorded per clip and per source in the manifest; CC-BY(-SA) sources require
attribution (given in :data:`SOURCES`), and the GPL game data is used as data only, never redistributed.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.cache import cache_dir, read_manifest, write_manifest
from ..errors import GenlabError

VERSION = 2
SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".ogg", ".opus", ".flac")


@dataclass(frozen=True)
class Source:
    """One Debian package's voices: where they lie, who speaks each file, and on what terms."""

    name: str
    package: str
    pattern: str  # glob of the audio files
    speaker: Callable[[str], str | None]  # file path -> speaker id (None: skip the file)
    licence: str
    attribution: str


def _fixed(speaker: str) -> Callable[[str], str]:
    return lambda path: speaker


def _fillets(lang: str) -> Callable[[str], str]:
    """Fish Fillets NG names each line ``LEVEL-WHO-...``: ``m`` is the small fish, ``v`` the big one (the game's two
    actors); the other characters' lines go together as one mixed speaker (used for training only)."""

    def who(path: str) -> str:
        parts = Path(path).stem.split("-")
        role = parts[1] if len(parts) > 2 and parts[1] in ("m", "v") else "others"
        return f"fillets-{lang}-{role}"

    return who


def _by_language(prefix: str, root: str) -> Callable[[str], str | None]:
    """KDE's games record one speaker per language folder (the Serbian scripts share one recording)."""

    def who(path: str) -> str | None:
        lang = Path(path).relative_to(root).parts[0].split("@")[0]
        return f"{prefix}-{lang}"

    return who


# codec2's recordings at their original quality (f2400/m2400 are codec2's own decoded output, all.wav repeats
# the others); one speaker per recording (hts1a and hts2a are the same man).
_CODEC2_SKIP = {"f2400", "m2400", "all"}


def _codec2(path: str) -> str | None:
    stem = Path(path).stem
    if stem in _CODEC2_SKIP:
        return None
    return "codec2-hts" if stem.startswith("hts") else f"codec2-{stem.split('_')[0]}"


SOURCES: tuple[Source, ...] = (
    Source("asterisk-en", "asterisk-core-sounds-en-wav", "/usr/share/asterisk/sounds/en_US_f_Allison/**/*.wav",
           _fixed("asterisk-en-allison"), "CC-BY-SA-3.0",
           "Asterisk core sounds (en), recorded by Allison Smith (theivrvoice.com), financed by Digium, Inc."),
    Source("asterisk-fr", "asterisk-core-sounds-fr-wav", "/usr/share/asterisk/sounds/fr_CA_f_June/**/*.wav",
           _fixed("asterisk-fr-june"), "CC-BY-SA-3.0",
           "Asterisk core sounds (fr), recorded by June Wallack (junewallack.com), translated by Clod Patry"),
    Source("asterisk-it", "asterisk-core-sounds-it-wav", "/usr/share/asterisk/sounds/it_IT_m_Carlo/**/*.wav",
           _fixed("asterisk-it-carlo"), "CC-BY-3.0",
           "Asterisk core sounds (it), recorded by Carlo Flora (carloflora.com), translated by Silvia Petrin"),
    Source("asterisk-ru", "asterisk-core-sounds-ru-wav", "/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU/**/*.wav",
           _fixed("asterisk-ru-ivrvoice"), "CC-BY-3.0",
           "Asterisk core sounds (ru), provided by Maxim Topal (ivrvoice.ru)"),
    Source("asterisk-it-menardi", "asterisk-prompt-it-menardi-wav",
           "/usr/share/asterisk/sounds/it_IT_f_Menardi/**/*.wav", _fixed("asterisk-it-menardi"), "CC-BY-SA-3.0-IT",
           "Italian Asterisk prompts (c) 2006-2011 Marco Menardi and Paola Dal Zot, http://www.voip.ammdomus.it"),
    Source("festvox-ru", "festvox-ru", "/usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav/*.wav",
           _fixed("festvox-ru-nsh"), "BSD-like (festvox-ru)",
           "Russian voice for Festival (msu_ru_nsh), (c) 2005 Nickolay V. Shmyrev"),
    Source("fillets-cs", "fillets-ng-data-cs", "/usr/share/games/fillets-ng/sound/*/cs/*.ogg", _fillets("cs"),
           "GPL-2", "Fish Fillets NG Czech voices (c) ALTAR interactive / fillets-ng project"),
    Source("fillets-nl", "fillets-ng-data-nl", "/usr/share/games/fillets-ng/sound/*/nl/*.ogg", _fillets("nl"),
           "GPL-2", "Fish Fillets NG Dutch voices, fillets-ng project"),
    Source("ktuberling", "ktuberling-data", "/usr/share/ktuberling/sounds/*/*",
           _by_language("ktuberling", "/usr/share/ktuberling/sounds"), "GPL-2+", "KTuberling (KDE) voices"),
    Source("klettres", "klettres-data", "/usr/share/klettres/**/*",
           _by_language("klettres", "/usr/share/klettres"), "GPL-2+", "KLettres (KDE) voices"),
    Source("codec2", "codec2-examples", "/usr/share/codec2/wav/*.wav", _codec2, "LGPL-2.1",
           "codec2 example recordings, (c) David Rowe and contributors"),
)

# Held out of training: an Asterisk voice (an Italian man), one Fish Fillets actor (the Dutch big fish), and four
# KDE language voices: about 66 of the 504 minutes.
TEST_SPEAKERS = frozenset({
    "asterisk-it-carlo", "fillets-nl-v",
    "ktuberling-de", "ktuberling-sv", "klettres-fr", "klettres-de",
})


@dataclass
class Clip:
    path: str
    source: str
    speaker: str


def discover(sources: tuple[Source, ...] = SOURCES) -> tuple[list[Clip], dict[str, str]]:
    """Every audio file of the installed sources, and a note for each source that is not installed."""
    clips, missing = [], {}
    for src in sources:
        files = sorted(p for p in glob.glob(src.pattern, recursive=True)
                       if p.lower().endswith(AUDIO_EXTENSIONS) and os.path.isfile(p))
        if not files:
            missing[src.name] = f"not installed (apt-get install {src.package})"
            continue
        for path in files:
            speaker = src.speaker(path)
            if speaker is not None:
                clips.append(Clip(path, src.name, speaker))
    return clips, missing


def trim_silence(x: np.ndarray, sr: int, floor_db: float = -40.0, margin: float = 0.1) -> np.ndarray:
    """Cut leading and trailing stretches quieter than ``floor_db`` below the loudest 10 ms frame (keep a margin)."""
    hop = sr // 100
    n = len(x) // hop
    if n == 0:
        return x
    rms = np.sqrt((x[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(1) + 1e-12)  # (frames,)
    loud = np.flatnonzero(rms > rms.max() * 10 ** (floor_db / 20))
    pad = int(margin * sr)
    return x[max(0, loud[0] * hop - pad) : min(len(x), (loud[-1] + 1) * hop + pad)]


def read_clip(path: str, sr: int) -> np.ndarray:
    """A file as float32 mono at ``sr`` (soxr HQ), silence trimmed, peak-normalised to 0.9; empty if unusable."""
    import soundfile as sf
    import soxr

    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)  # (n, channels)
    except (sf.LibsndfileError, RuntimeError):
        return np.zeros(0, np.float32)
    mono = audio.mean(axis=1)
    if len(mono) == 0 or not np.isfinite(mono).all():
        return np.zeros(0, np.float32)
    if rate != sr:
        mono = soxr.resample(mono, rate, sr, quality="HQ")
    mono = trim_silence(mono, sr)
    peak = np.abs(mono).max() if len(mono) else 0.0
    if peak < 1e-4:
        return np.zeros(0, np.float32)
    return (mono * (0.9 / peak)).astype(np.float32)


class SpeechCorpus:
    """The built corpus: ``train`` (int16 memory map, all training audio end to end), ``test_clips()``."""

    def __init__(self, directory: Path, manifest: dict):
        self.dir, self.manifest = directory, manifest
        self.sample_rate: int = manifest["sample_rate"]
        self.train = np.load(directory / "train.npy", mmap_mode="r")  # (n,) int16
        self._test = np.load(directory / "test.npy", mmap_mode="r")

    def clips(self, split: str) -> list[dict]:
        return [c for c in self.manifest["clips"] if c["split"] == split]

    def test_clips(self, min_seconds: float = 0.0) -> list[tuple[dict, np.ndarray]]:
        """The held-out speakers' clips as float32 arrays, each with its manifest entry."""
        out = []
        for c in self.clips("test"):
            if c["length"] >= min_seconds * self.sample_rate:
                out.append((c, self._test[c["offset"] : c["offset"] + c["length"]].astype(np.float32) / 32767))
        return out

    def audio(self, clip: dict) -> np.ndarray:
        """A clip's ``int16`` samples as stored, from the split its manifest entry names."""
        array = self.train if clip["split"] == "train" else self._test
        return array[clip["offset"] : clip["offset"] + clip["length"]]

    def window(self, start: int, length: int) -> np.ndarray:
        """float32 training audio ``[start, start + length)``, wrapping around the end."""
        n = len(self.train)
        idx = (np.arange(length) + start) % n if start + length > n else slice(start, start + length)
        return self.train[idx].astype(np.float32) / 32767


def corpus_dir(sr: int, sources: tuple[Source, ...] = SOURCES, test_speakers=TEST_SPEAKERS) -> Path:
    name = f"v{VERSION}-{sr}"
    if sources != SOURCES or test_speakers != TEST_SPEAKERS:  # a subset (tests): its own cache entry
        key = json.dumps([[s.name for s in sources], sorted(test_speakers)])
        name += "-" + hashlib.sha256(key.encode()).hexdigest()[:10]
    return cache_dir("codec-speech", name)


def build(sr: int = SAMPLE_RATE, rebuild: bool = False, progress: bool = True, sources: tuple[Source, ...] = SOURCES,
          test_speakers: frozenset[str] = TEST_SPEAKERS) -> SpeechCorpus:
    """Decode, resample and store every installed source (about 8 hours of audio; a few minutes, once).

    ``sources`` and ``test_speakers`` choose a subset and its held-out speakers (the tests build codec2's clips)."""
    directory = corpus_dir(sr, sources, test_speakers)
    if not rebuild and (manifest := read_manifest(directory, verify=False)) is not None:
        return SpeechCorpus(directory, manifest)
    found, missing = discover(sources)
    if not found:
        raise GenlabError("no speech packages are installed: run scripts/install.d/codec.sh (needs apt-get)")
    arrays: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    offsets = {"train": 0, "test": 0}
    entries, t0 = [], time.perf_counter()
    for i, clip in enumerate(found):
        audio = read_clip(clip.path, sr)
        if len(audio) < sr // 10:  # under 0.1 s after trimming: nothing to learn from
            continue
        split = "test" if clip.speaker in test_speakers else "train"
        arrays[split].append(np.round(audio * 32767).astype(np.int16))
        entries.append({"path": clip.path, "source": clip.source, "speaker": clip.speaker, "split": split,
                        "offset": offsets[split], "length": len(audio)})
        offsets[split] += len(audio)
        if progress and (i % 500 == 0 or i == len(found) - 1):
            print(f"\rcodec corpus: {i + 1}/{len(found)} files, {time.perf_counter() - t0:.0f} s", end="",
                  file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    for split, parts in arrays.items():
        np.save(directory / f"{split}.npy", np.concatenate(parts) if parts else np.zeros(0, np.int16))
    write_manifest(directory, ["train.npy", "test.npy"], _info(sr, entries, missing, test_speakers))
    return SpeechCorpus(directory, read_manifest(directory, verify=False))


def _info(sr: int, entries: list[dict], missing: dict[str, str], test_speakers: frozenset[str]) -> dict:
    by_source = {s.name: s for s in SOURCES}
    speakers: dict[str, dict] = {}
    for e in entries:
        s = speakers.setdefault(e["speaker"], {"source": e["source"], "split": e["split"], "clips": 0, "seconds": 0.0})
        s["clips"] += 1
        s["seconds"] = round(s["seconds"] + e["length"] / sr, 2)
    sources = {}
    for name in sorted({e["source"] for e in entries}):
        src = by_source[name]
        sources[name] = {"package": src.package, "licence": src.licence, "attribution": src.attribution,
                         "seconds": round(sum(e["length"] for e in entries if e["source"] == name) / sr, 1)}
    return {"version": VERSION, "sample_rate": sr, "test_speakers": sorted(test_speakers),
            "seconds": {split: round(sum(e["length"] for e in entries if e["split"] == split) / sr, 1)
                        for split in ("train", "test")},
            "sources": sources, "missing": missing, "speakers": speakers, "clips": entries}


def load(sr: int = SAMPLE_RATE) -> SpeechCorpus:
    """The built corpus, or one line saying how to build it."""
    directory = corpus_dir(sr)
    manifest = read_manifest(directory, verify=False)
    if manifest is None:
        raise GenlabError(f"the codec speech corpus at {sr} Hz is not built: run `genlab data codec`")
    return SpeechCorpus(directory, manifest)


# -----------------------------------------------------------------------------------------------------------------
# A balanced part of the corpus, for a machine that cannot receive all of it (scripts/gpu/pack_codec.sh): the same
# cache format, so the codec's loader reads it unchanged, and a manifest that says what it is a part of.


def subset(full: SpeechCorpus, directory: Path, seconds_per_speaker: float, test_seconds_per_speaker: float,
           seed: int = 0) -> SpeechCorpus:
    """Write to ``directory`` a part of ``full`` in which every speaker gives about the same number of seconds.

    Each speaker's clips are taken whole, in an order fixed by ``seed`` and the clip's path (so one speaker's choice
    does not depend on the others'), until it has given at least its split's seconds or all it has; the chosen
    clips keep the full corpus's order. The manifest's ``subset`` says what the part is of; models trained on it
    carry that in their meta (genlab/codec/task.py)."""
    if Path(directory).resolve() == full.dir.resolve():
        raise GenlabError(f"a subset cannot replace the corpus it is taken from ({full.dir})")
    sr = full.sample_rate
    caps = {"train": seconds_per_speaker * sr, "test": test_seconds_per_speaker * sr}
    by_speaker: dict[str, list[dict]] = {}
    for clip in full.manifest["clips"]:
        by_speaker.setdefault(clip["speaker"], []).append(clip)
    chosen = set()
    for clips in by_speaker.values():
        given = 0
        for clip in sorted(clips, key=lambda c: hashlib.sha256(f"{seed}:{c['path']}".encode()).digest()):
            if given >= caps[clip["split"]]:
                break
            chosen.add(clip["path"])
            given += clip["length"]
    directory.mkdir(parents=True, exist_ok=True)
    entries, offsets = [], {"train": 0, "test": 0}
    for split in ("train", "test"):
        clips = [c for c in full.clips(split) if c["path"] in chosen]
        np.save(directory / f"{split}.npy", np.concatenate([full.audio(c) for c in clips] or [np.zeros(0, np.int16)]))
        for c in clips:
            entries.append({**c, "offset": offsets[split]})
            offsets[split] += c["length"]
    info = _info(sr, entries, full.manifest["missing"], frozenset(full.manifest["test_speakers"]))
    train_speakers = sum(s["split"] == "train" for s in info["speakers"].values())
    info["subset"] = {
        "of": full.dir.name, "of_seconds": full.manifest["seconds"], "seed": seed,
        "seconds_per_speaker": {"train": seconds_per_speaker, "test": test_seconds_per_speaker},
        "note": f"a balanced part of the corpus: {info['seconds']['train'] / 60:.1f} min of training speech from "
                f"{train_speakers} speakers (at least {seconds_per_speaker:g} s each, or all a speaker has) out of "
                f"the full {full.manifest['seconds']['train'] / 3600:.2f} h",
    }
    write_manifest(directory, ["train.npy", "test.npy"], info)
    return SpeechCorpus(directory, read_manifest(directory, verify=False))


def delta_planes(x: np.ndarray) -> np.ndarray:
    """``int16 (n,)`` -> ``uint8 (2, n)``: first differences (mod 2^16, so lossless), high bytes then low bytes.

    Speech changes slowly from sample to sample, so the differences are small and their high bytes mostly 0 or 255;
    xz packs these planes about 16% smaller than the samples themselves (44 min of this corpus: 53.5 against
    63.4 MB at ``xz -9``)."""
    d = np.diff(x.astype("<i2"), prepend=np.int16(0))  # (n,) int16 arithmetic wraps mod 2^16
    return np.ascontiguousarray(d.view(np.uint8).reshape(-1, 2)[:, ::-1].T)  # (n, 2) low, high -> (2, n) high, low


def undo_delta_planes(planes: np.ndarray) -> np.ndarray:
    """The inverse of :func:`delta_planes`: ``uint8 (2, n)`` -> ``int16 (n,)``."""
    d = ((planes[0].astype(np.uint16) << 8) | planes[1]).view(np.int16)  # (n,)
    return np.cumsum(d, dtype=np.int16)  # wraps back mod 2^16


def pack(directory: Path) -> None:
    """Replace a built entry's ``train.npy`` / ``test.npy`` by ``*.delta.npy`` (:func:`delta_planes`) for carrying."""
    for split in ("train", "test"):
        np.save(directory / f"{split}.delta.npy", delta_planes(np.load(directory / f"{split}.npy")))
        (directory / f"{split}.npy").unlink()


def unpack(directory: Path) -> SpeechCorpus:
    """Undo :func:`pack` (a split already restored is left as it is) and check the audio against the manifest's
    checksums, which were taken before packing."""
    for split in ("train", "test"):
        packed = directory / f"{split}.delta.npy"
        if packed.exists():
            np.save(directory / f"{split}.npy", undo_delta_planes(np.load(packed)))
            packed.unlink()
    manifest = read_manifest(directory, verify=True)
    if manifest is None:
        raise GenlabError(f"{directory}: the unpacked audio does not match the checksums of its manifest")
    return SpeechCorpus(directory, manifest)
