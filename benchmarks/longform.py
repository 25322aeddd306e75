"""Long-form benchmark on audio genlab was not developed on: several files from different real sources and
speakers, split dev / test by speaker, with pauses of varied length and non-speech events between utterances.

Each file is built, seeded and deterministic, from Debian packages (nothing downloads):

* speech: the asterisk prompts of four speakers (en Allison, fr June, it Carlo, ru IvrvoiceRU, each with its
  text in ``asterisk-core-sounds-<lang>``), the Italian prompts of Menardi (no text), festvox-ru's recorded
  sentences (msu_ru_nsh, with their text), Fish Fillets NG's Czech and Dutch dialogue (no text), and the five LibriVox
  utterances of pocketsphinx-testdata with jfk.flac (with their text);
* non-speech events: real drum loops, drum hits and instrument recordings (sonic-pi-samples, CC0), a crow,
  telephone beeps (asterisk), white and pink noise, and music rendered from a General MIDI soundfont
  (fluid-soundfont-gm through libfluidsynth).

Every utterance's and event's placement is known (the utterance's speech inside its clip by an energy onset and
offset). A system transcribes each file with its voice-activity gate and word timestamps; per file we record the
WER (where the source has its text; language fixed per file), the invented words (words whose time span lies
more than ``MARGIN`` s away from every utterance, i.e. inside a pause or a non-speech event), and the segment
boundaries that lie in a pause or event more than 0.5 s from every utterance.

    python benchmarks/longform.py --split dev [--systems genlab-fp32,faster-whisper-fp32] [--beams 1,5]
        [--files dev-en-allison,...] [--out benchmarks/results/asr_longform_dev.json]

Each system runs in its own process. Timings are not taken here (see ``asr_speed.py --longform test``).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gzip
import json
import re
import subprocess
import sys
import tempfile
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
AST = Path("/usr/share/asterisk/sounds")
AST_DOC = Path("/usr/share/doc")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
JFK = ROOT / ".." / "shared" / "data" / "jfk.flac"
FESTVOX = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
FILLETS = Path("/usr/share/games/fillets-ng/sound")
SONIC = Path("/usr/share/sonic-pi/samples")
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
MARGIN = 0.3  # a word is invented when its whole span lies this far from every utterance
BOUNDARY_TOLERANCE = 0.5
BUILD_VERSION = 1  # bump when the builder changes what it makes from a seed

JFK_TEXT = ("And so, my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")


@dataclass(frozen=True)
class Source:
    name: str
    language: str
    speaker: str
    licence: str
    package: str


SOURCES = {
    "asterisk-en-allison": Source("asterisk-en-allison", "en", "Allison (asterisk en)", "CC-BY-SA-3.0",
                                  "asterisk-core-sounds-en-wav"),
    "asterisk-fr-june": Source("asterisk-fr-june", "fr", "June (asterisk fr_CA)", "CC-BY-SA-3.0",
                               "asterisk-core-sounds-fr-wav"),
    "asterisk-it-menardi": Source("asterisk-it-menardi", "it", "Menardi (asterisk it_IT_f)", "CC-BY-SA-3.0",
                                  "asterisk-prompt-it-menardi-wav"),
    "festvox-ru-nsh": Source("festvox-ru-nsh", "ru", "msu_ru_nsh (festvox-ru)", "BSD-like (festvox-ru)",
                             "festvox-ru"),
    "librivox-jfk": Source("librivox-jfk", "en", "LibriVox reader (Sense and Sensibility) + J. F. Kennedy",
                           "BSD-2 (pocketsphinx-testdata; LibriVox public domain) + public domain (jfk.flac)",
                           "pocketsphinx-testdata + shared/data/jfk.flac"),
    "asterisk-it-carlo": Source("asterisk-it-carlo", "it", "Carlo (asterisk it_IT_m)", "CC-BY-SA-3.0",
                                "asterisk-core-sounds-it-wav"),
    "asterisk-ru-ivrvoice": Source("asterisk-ru-ivrvoice", "ru", "IvrvoiceRU (asterisk ru_RU_f)", "CC-BY-SA-3.0",
                                   "asterisk-core-sounds-ru-wav"),
    "fillets-cs": Source("fillets-cs", "cs", "Fish Fillets NG Czech voice actors", "GPL-2+", "fillets-ng-data-cs"),
    "fillets-nl": Source("fillets-nl", "nl", "Fish Fillets NG Dutch voice actors", "GPL-2+", "fillets-ng-data-nl"),
}

# Dev and test share no speaker and no clip. Seeds fix each file's clips, pauses and events.
FILES = {
    "dev-en-allison": ("dev", "asterisk-en-allison", 11),
    "dev-fr-june": ("dev", "asterisk-fr-june", 12),
    "dev-it-menardi": ("dev", "asterisk-it-menardi", 13),
    "dev-ru-festvox": ("dev", "festvox-ru-nsh", 14),
    "dev-nl-fillets": ("dev", "fillets-nl", 15),
    # More dev material from the same sources (other clips, pauses and events), added 2026-12-05.
    "dev-ru-festvox-b": ("dev", "festvox-ru-nsh", 41),
    "dev-fr-june-b": ("dev", "asterisk-fr-june", 42),
    "dev-en-allison-b": ("dev", "asterisk-en-allison", 43),
    "dev-it-menardi-b": ("dev", "asterisk-it-menardi", 44),
    "dev-nl-fillets-b": ("dev", "fillets-nl", 45),
    # Recurring utterances, as on test-en-librivox-jfk (whose source has six clips): each of these draws its file
    # from six clips of its source only, so the same sentences come back every minute or so (added 2026-12-05).
    "dev-en-allison-r": ("dev", "asterisk-en-allison", 46, 6),
    "dev-fr-june-r": ("dev", "asterisk-fr-june", 47, 6),
    "dev-ru-festvox-r": ("dev", "festvox-ru-nsh", 48, 6),
    "test-en-librivox-jfk": ("test", "librivox-jfk", 21),
    "test-it-carlo": ("test", "asterisk-it-carlo", 22),
    "test-ru-ivrvoice": ("test", "asterisk-ru-ivrvoice", 23),
    "test-cs-fillets": ("test", "fillets-cs", 24),
}

EVENT_LICENCES = {"sonic-pi": "CC0 (sonic-pi-samples, per-file freesound credits in its copyright)",
                  "asterisk-tones": "CC-BY-SA-3.0 (asterisk-core-sounds-en-wav tones)",
                  "soundfont": "MIT (fluid-soundfont-gm FluidR3_GM.sf2), rendered by libfluidsynth",
                  "noise": "generated (numpy, seeded)"}


# ---------------------------------------------------------------------------------------------------------------
# Speech clips: (clip id, path, text or None)


def _asterisk_texts(lang: str) -> dict[str, str]:
    path = AST_DOC / f"asterisk-core-sounds-{lang}" / f"core-sounds-{lang}.txt.gz"
    out = {}
    for line in gzip.open(path, "rt", encoding="utf-8-sig").read().splitlines():
        m = re.match(r"^([\w/-]+):\s*(.+)$", line.strip())
        if m and not line.startswith(";"):
            out[m.group(1)] = m.group(2).strip()
    return out


def _asterisk(folder: str, lang: str | None) -> list[tuple[str, Path, str | None]]:
    texts = _asterisk_texts(lang) if lang else {}
    clips = sorted((AST / folder).glob("*.wav"))
    if lang:
        return [(p.stem, p, texts[p.stem]) for p in clips if p.stem in texts]
    return [(p.stem, p, None) for p in clips]


def _festvox() -> list[tuple[str, Path, str | None]]:
    out = []
    for line in (FESTVOX / "etc" / "txt.done.data").read_text(encoding="utf-8").splitlines():
        m = re.match(r'\(\s*(\S+)\s+"(.*)"\s*\)', line.strip())
        if m and (FESTVOX / "wav" / f"{m.group(1)}.wav").exists():
            out.append((m.group(1), FESTVOX / "wav" / f"{m.group(1)}.wav", m.group(2).replace("+", "")))
    return out


def _librivox_jfk() -> list[tuple[str, Path, str | None]]:
    out = []
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        m = re.match(r"<s> (.*) </s> \((.*)\)", line.strip())
        if m:
            out.append((m.group(2), LIBRIVOX / f"{m.group(2)}.wav", m.group(1)))
    return out + [("jfk", JFK, JFK_TEXT)]


def source_clips(name: str) -> list[tuple[str, Path, str | None]]:
    return {
        "asterisk-en-allison": lambda: _asterisk("en_US_f_Allison", "en"),
        "asterisk-fr-june": lambda: _asterisk("fr_CA_f_June", "fr"),
        "asterisk-it-menardi": lambda: _asterisk("it_IT_f_Menardi", None),
        "festvox-ru-nsh": _festvox,
        "librivox-jfk": _librivox_jfk,
        "asterisk-it-carlo": lambda: _asterisk("it_IT_m_Carlo", "it"),
        "asterisk-ru-ivrvoice": lambda: _asterisk("ru_RU_f_IvrvoiceRU", "ru"),
        "fillets-cs": lambda: [(f"{p.parent.parent.name}/{p.stem}", p, None)
                               for p in sorted(FILLETS.glob("*/cs/*.ogg"))],
        "fillets-nl": lambda: [(f"{p.parent.parent.name}/{p.stem}", p, None)
                               for p in sorted(FILLETS.glob("*/nl/*.ogg"))],
    }[name]()


def speech_bounds(x: np.ndarray) -> tuple[float, float]:
    """First and last 10 ms frame whose energy is within 35 dB of the clip's loudest (seconds in the clip)."""
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    db = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    on = np.nonzero(db > db.max() - 35)[0]
    return float(on[0] * 0.01), float((on[-1] + 1) * 0.01)


# ---------------------------------------------------------------------------------------------------------------
# Non-speech events


SONIC_EVENTS = ["loop_amen", "loop_breakbeat", "loop_compus", "loop_garzul", "loop_industrial", "loop_mika",
                "loop_safari", "loop_tabla", "loop_perc1", "guit_em9", "guit_harmonics", "guit_e_slide",
                "ambi_piano", "ambi_choir", "ambi_glass_hum", "bass_voxy_c", "drum_roll", "drum_cymbal_open",
                "misc_crow", "perc_bell", "elec_chime", "vinyl_scratch", "vinyl_hiss", "mehackit_phone1"]
TONES = ["beep", "beeperr", "ascending-2tone", "descending-2tone"]


def render_soundfont(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A seeded random melody with chords on a General MIDI instrument, rendered by libfluidsynth at 16 kHz."""
    lib = ctypes.CDLL(ctypes.util.find_library("fluidsynth") or "libfluidsynth.so.3")
    lib.new_fluid_settings.restype = ctypes.c_void_p
    lib.new_fluid_synth.restype = ctypes.c_void_p
    lib.new_fluid_synth.argtypes = [ctypes.c_void_p]
    lib.fluid_settings_setnum.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_double]
    lib.fluid_settings_setint.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    for f in ("fluid_synth_sfload", "fluid_synth_program_change", "fluid_synth_noteon", "fluid_synth_noteoff",
              "fluid_synth_write_float"):
        getattr(lib, f).argtypes = None
    settings = lib.new_fluid_settings()
    lib.fluid_settings_setnum(settings, b"synth.sample-rate", 16000.0)
    lib.fluid_settings_setint(settings, b"synth.reverb.active", 0)
    synth = ctypes.c_void_p(lib.new_fluid_synth(settings))
    lib.fluid_synth_sfload(synth, str(SOUNDFONT).encode(), 1)
    program = int(rng.choice([0, 4, 24, 40, 48, 56, 73, 80]))  # piano, e-piano, guitar, violin, strings, ...
    lib.fluid_synth_program_change(synth, 0, program)
    out = []
    note_s = float(rng.uniform(0.15, 0.45))
    root = int(rng.integers(52, 68))
    for _ in range(int(seconds / note_s)):
        keys = [root + int(rng.choice([0, 2, 4, 5, 7, 9, 11, 12]))]
        if rng.random() < 0.3:
            keys += [keys[0] + 4, keys[0] + 7]
        for k in keys:
            lib.fluid_synth_noteon(synth, 0, k, int(rng.integers(70, 120)))
        n = int(note_s * SR)
        left, right = np.zeros(n, np.float32), np.zeros(n, np.float32)
        lib.fluid_synth_write_float(synth, n, left.ctypes.data_as(ctypes.c_void_p), 0, 1,
                                    right.ctypes.data_as(ctypes.c_void_p), 0, 1)
        for k in keys:
            lib.fluid_synth_noteoff(synth, 0, k)
        out.append((left + right) / 2)
    lib.delete_fluid_synth(synth)
    lib.delete_fluid_settings(ctypes.c_void_p(settings))
    return np.concatenate(out)


def make_event(rng: np.random.Generator) -> tuple[str, str, np.ndarray]:
    """(kind, name, 16 kHz audio) of one non-speech event, 0.5-5 s."""
    from genlab.data.audio import load_audio

    kind = str(rng.choice(["sonic-pi", "sonic-pi", "sonic-pi", "asterisk-tones", "soundfont", "noise"]))
    if kind == "sonic-pi":
        name = str(rng.choice(SONIC_EVENTS))
        x = load_audio(SONIC / f"{name}.flac")
        if len(x) < 2 * SR and name.startswith("loop"):
            x = np.tile(x, 2)
    elif kind == "asterisk-tones":
        name = str(rng.choice(TONES))
        x = load_audio(AST / "en_US_f_Allison" / f"{name}.wav")
    elif kind == "soundfont":
        name = "FluidR3_GM melody"
        x = render_soundfont(rng, float(rng.uniform(2.0, 5.0)))
    else:
        name = str(rng.choice(["white", "pink"]))
        x = rng.standard_normal(int(rng.uniform(1.0, 3.0) * SR)).astype(np.float32)
        if name == "pink":
            spec = np.fft.rfft(x)
            spec[1:] /= np.sqrt(np.arange(1, len(spec)))
            x = np.fft.irfft(spec, len(x)).astype(np.float32)
    x = x[: 5 * SR]
    fade = min(len(x) // 4, int(0.05 * SR))
    if fade:
        x[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    return kind, name, x


# ---------------------------------------------------------------------------------------------------------------
# Building a file


def _pause(rng: np.random.Generator) -> float:
    """0.5-5 s, log-uniform: as many short pauses as long ones."""
    return float(np.exp(rng.uniform(np.log(0.5), np.log(5.0))))


def build(name: str) -> tuple[np.ndarray, dict]:
    """The file ``name`` of :data:`FILES` as 16 kHz float32 and its manifest (every utterance and event)."""
    from genlab.data.audio import load_audio
    from genlab.errors import GenlabError

    split, source, seed, *pool = FILES[name]
    rng = np.random.default_rng(seed)
    target = float(rng.uniform(150.0, 210.0))
    clips = source_clips(source)
    order = rng.permutation(len(clips))[: pool[0] if pool else None]
    speech_rms = 0.05
    parts, utts, events, t = [], [], [], 0.0

    def put(x: np.ndarray) -> float:
        nonlocal t
        start = t
        parts.append(x.astype(np.float32))
        t += len(x) / SR
        return start

    put(np.zeros(int(_pause(rng) * SR), np.float32))
    i = 0
    while t < target:
        if i >= 50 * len(order) and not utts:
            raise ValueError(f"{name}: none of the clips drawn from {source} is 1-20 s of readable audio")
        clip_id, path, text = clips[order[i % len(order)]]
        i += 1
        try:
            x = load_audio(path)
        except GenlabError:  # a few of Fish Fillets' Dutch files hold no samples
            continue
        if not 1.0 <= len(x) / SR <= 20.0:
            continue
        s, e = speech_bounds(x)
        x = x * (speech_rms / max(1e-6, float(np.sqrt(np.mean(x[int(s * SR) : int(e * SR)] ** 2)))))
        start = put(x)
        utts.append({"clip": clip_id, "start": round(start + s, 3), "end": round(start + e, 3), "text": text})
        put(np.zeros(int(_pause(rng) * SR), np.float32))
        if rng.random() < 0.4:
            kind, ev_name, y = make_event(rng)
            es, ee = speech_bounds(y)
            level = speech_rms * 10 ** (rng.uniform(-12.0, 0.0) / 20)
            y = y * (level / max(1e-6, float(np.sqrt(np.mean(y[int(es * SR) : int(ee * SR)] ** 2)))))
            start = put(np.clip(y, -1, 1))
            events.append({"kind": kind, "name": ev_name, "start": round(start + es, 3), "end": round(start + ee, 3)})
            put(np.zeros(int(_pause(rng) * SR), np.float32))
    audio = np.concatenate(parts)
    audio += rng.standard_normal(len(audio)).astype(np.float32) * 3e-4  # a quiet noise floor, not digital silence
    src = SOURCES[source]
    manifest = {"name": name, "split": split, "seed": seed, "build_version": BUILD_VERSION, "source": source,
                "language": src.language, "speaker": src.speaker, "licence": src.licence, "package": src.package,
                "seconds": round(len(audio) / SR, 2), "utterances": utts, "events": events,
                "has_text": all(u["text"] is not None for u in utts),
                "audio_crc32": zlib.crc32(np.round(audio * 32767).astype(np.int16).tobytes())}
    return audio.astype(np.float32), manifest


def cached(name: str) -> tuple[Path, dict]:
    """The built file saved as .npy in the temp folder (built once per build version), and its manifest."""
    folder = Path(tempfile.gettempdir()) / f"genlab_longform_v{BUILD_VERSION}"
    folder.mkdir(exist_ok=True)
    path, meta = folder / f"{name}.npy", folder / f"{name}.json"
    if not (path.exists() and meta.exists()):
        audio, manifest = build(name)
        np.save(path, audio)
        meta.write_text(json.dumps(manifest, ensure_ascii=False))
    return path, json.loads(meta.read_text())


# ---------------------------------------------------------------------------------------------------------------
# Metrics


def norm_words(text: str, language: str) -> list[str]:
    """Lower case, letters, digits and apostrophes only; ё as е; English "mr." as "mister"."""
    text = unicodedata.normalize("NFC", text.lower()).replace("ё", "е").replace("-", " ").replace("’", "'")
    if language == "en":
        text = text.replace("mr.", "mister")
    return re.sub(r"[^\w' ]|_", " ", text).split()


def wer(manifest: dict, text: str) -> float | None:
    from genlab.eval.text import edit_distance

    if not manifest["has_text"]:
        return None
    ref = norm_words(" ".join(u["text"] for u in manifest["utterances"]), manifest["language"])
    return round(edit_distance(ref, norm_words(text, manifest["language"])) / max(1, len(ref)), 4)


def _where(start: float, end: float, manifest: dict) -> str:
    """'event:<name>' if the span (or the instant, where start == end) meets an event, else 'pause'."""
    ev = [e for e in manifest["events"] if min(end, e["end"]) - max(start, e["start"]) > 0
          or e["start"] <= start == end <= e["end"]]
    return f"event:{ev[0]['name']}" if ev else "pause"


def timed_words(segments: list[tuple[float, float, str, list]], language: str) -> list[tuple[float, float, str]]:
    """Every word of every segment with its time: the system's word timestamps, and, for words of a segment's text
    that have none (a system may drop a word's timing but keep its text), the segment's span."""
    out = []
    for s, e, text, words in segments:
        out.extend((ws, we, w) for ws, we, w in words)
        missing = len(norm_words(text, language)) - sum(len(norm_words(w, language)) for _, _, w in words)
        out.extend((s, e, "<untimed>") for _ in range(max(0, missing)))
    return out


def invented_words(words: list[tuple[float, float, str]], manifest: dict) -> list[dict]:
    """Words whose whole span lies more than MARGIN s from every utterance: in a pause or a non-speech event."""
    out = []
    for s, e, w in words:
        if all(e < u["start"] - MARGIN or s > u["end"] + MARGIN for u in manifest["utterances"]):
            out.append({"word": w.strip(), "start": round(s, 2), "end": round(e, 2), "in": _where(s, e, manifest)})
    return out


def boundary_errors(segments: list[tuple[float, float, str]], manifest: dict) -> dict:
    """Segment boundaries in a pause or event more than 0.5 s from every utterance, segments that reach over a
    pause or event (more than 1 s of them outside every utterance), and how many utterance starts and ends have a
    segment boundary within 0.5 s."""
    utts, tol = manifest["utterances"], BOUNDARY_TOLERANCE
    bad = [{"at": round(x, 2), "side": side, "in": _where(x, x, manifest)}
           for s, e, _ in segments for x, side in ((s, "start"), (e, "end"))
           if all(not (u["start"] - tol <= x <= u["end"] + tol) for u in utts)]
    # A segment that reaches over a pause or event: more than 1 s of it lies outside every utterance (+-0.3 s).
    over = [(round(s, 2), round(e, 2), t) for s, e, t in segments
            if (e - s) - sum(max(0.0, min(e, u["end"] + MARGIN) - max(s, u["start"] - MARGIN)) for u in utts) > 1.0]
    starts, ends = [s for s, _, _ in segments], [e for _, e, _ in segments]
    return {
        "errors": len(bad), "where": bad, "segments_over_gaps": len(over), "over_gaps": over,
        "utterance_starts_within_0.5s": sum(any(abs(u["start"] - x) <= tol for x in starts) for u in utts),
        "utterance_ends_within_0.5s": sum(any(abs(u["end"] - x) <= tol for x in ends) for u in utts),
        "utterances": len(utts),
    }


def score(manifest: dict, text: str, segments) -> dict:
    """``segments``: (start, end, text, [(word start, word end, word), ...]) in seconds."""
    words = timed_words(segments, manifest["language"])
    inv = invented_words(words, manifest)
    return {"wer": wer(manifest, text), "invented_words": len(inv), "invented": inv,
            "boundaries": boundary_errors([s[:3] for s in segments], manifest), "n_segments": len(segments),
            "n_words": len(words), "text": text,
            "segments": [(round(s, 2), round(e, 2), t) for s, e, t, _ in segments]}


# ---------------------------------------------------------------------------------------------------------------
# Systems: each gives fn(audio, language, beam) -> (text, segments), a segment as (start, end, text, words), a word as
# (start, end, text)


def system(name: str, threads: int = 2):
    compute = "int8" if name.endswith("int8") else "float32"
    if name.startswith("genlab"):
        from genlab.asr import load

        pipe = load("base", int8=compute == "int8")

        def run(audio, language, beam):
            r = pipe.transcribe(audio, language=language, beam_size=beam, vad=True, word_timestamps=True)
            return r.text, [(s.start, s.end, s.text, [(w.start, w.end, w.word) for w in s.words]) for s in r.segments]

        return run
    from faster_whisper import WhisperModel

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from asr_speed import ct2_dir

    model = WhisperModel(ct2_dir(), device="cpu", compute_type=compute, cpu_threads=threads)

    def run(audio, language, beam):
        segs, _ = model.transcribe(audio, language=language, beam_size=beam, vad_filter=True, word_timestamps=True)
        segs = list(segs)
        return "".join(s.text for s in segs).strip(), [
            (s.start, s.end, s.text, [(w.start, w.end, w.word) for w in (s.words or [])]) for s in segs]

    return run


def rescore(path: Path) -> None:
    """Recompute every run's metrics in a result file from the raw segments it keeps (after a metric changes)."""
    results = json.loads(path.read_text())
    for key, run in results["runs"].items():
        if "raw" in run:
            results["runs"][key] = score(cached(key.split("/")[0])[1], run["text"], run["raw"]) | {"raw": run["raw"]}
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    summary(results)


def summary(results: dict) -> None:
    for key, run in results["runs"].items():
        b = run.get("boundaries", {})
        print(key, {k: run.get(k) for k in ("wer", "invented_words", "error")}, "boundary errors", b.get("errors"),
              "segments over gaps", b.get("segments_over_gaps"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--files", default=None, help="comma-separated file names (default: every file of the split)")
    ap.add_argument("--systems", default="genlab-fp32,faster-whisper-fp32")
    ap.add_argument("--beams", default="1,5")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="default benchmarks/results/asr_longform_<split>.json")
    ap.add_argument("--rescore", default=None, help="recompute the metrics of a result file from its raw segments")
    ap.add_argument("--child", nargs=4, metavar=("SYSTEM", "BEAM", "FILE", "LANG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        name, beam, path, lang = args.child
        text, segs = system(name, args.threads)(np.load(path), lang, int(beam))
        print(json.dumps({"text": text, "segments": segs}, ensure_ascii=False))
        return
    if args.rescore:
        rescore(Path(args.rescore))
        return
    names = args.files.split(",") if args.files else [n for n, f in FILES.items() if f[0] == args.split]
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"asr_longform_{args.split}.json")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "src", "benchmarks/longform.py"]
                           ).returncode != 0
    results = {"command": "python " + " ".join(sys.argv),
               "genlab_commit": commit + (" (plus uncommitted changes)" if dirty else ""),
               "metrics": {"invented_margin_s": MARGIN, "boundary_tolerance_s": BOUNDARY_TOLERANCE},
               "event_licences": EVENT_LICENCES, "files": {}, "runs": {}}
    for n in names:
        path, manifest = cached(n)
        results["files"][n] = {k: v for k, v in manifest.items() if k not in ("utterances", "events")} | {
            "n_utterances": len(manifest["utterances"]), "n_events": len(manifest["events"]),
            "events": [f"{e['kind']}:{e['name']}" for e in manifest["events"]]}
        for beam in [int(b) for b in args.beams.split(",")]:
            for sysname in args.systems.split(","):
                child = subprocess.run([sys.executable, __file__, "--child", sysname, str(beam), str(path),
                                        manifest["language"], "--threads", str(args.threads)],
                                       capture_output=True, text=True)
                key = f"{n}/{sysname}/beam{beam}"
                if child.returncode != 0:
                    results["runs"][key] = {"error": (child.stderr.strip().splitlines() or ["?"])[-1][:300]}
                else:
                    r = json.loads(child.stdout.strip().splitlines()[-1])
                    results["runs"][key] = score(manifest, r["text"], r["segments"])
                    results["runs"][key]["raw"] = r["segments"]
                run = results["runs"][key]
                print(key, {k: run.get(k) for k in ("wer", "invented_words", "error")},
                      "boundary errors", run.get("boundaries", {}).get("errors"), flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
