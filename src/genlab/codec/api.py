"""The codec as the audio alphabet, and files in and out.

:class:`CodecAlphabet` is what the other families see (DESIGN 3.1): ``encode(waveform) -> (n_q, frames)`` codes,
``decode(codes) -> waveform``, ``vocab_size`` (the codebook size: every code of every level is below it) and
``tokens_per_second`` (frame rate x codebooks kept, so the bitrate is a property of the alphabet you make).

:func:`encode_file` / :func:`decode_file` stream: any rate or channel count is read block by block, mixed down and
resampled (:func:`genlab.data.audio.stream_audio`), and the codec runs on windows of ``chunk`` seconds with a
second of context on each side whose codes (or samples) are thrown away, so an hour of audio needs the memory of
one window. Token files are written by :mod:`genlab.codec.tokens`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint, weights_hash
from ..errors import GenlabError
from ..models import resolve_model
from .model import Codec, CodecConfig
from .task import codec_config


@dataclass
class LoadedCodec:
    codec: Codec
    cfg: CodecConfig
    name: str  # the bundled name or the checkpoint path it was loaded from
    weights_hash: str


def load(name_or_dir: str = "speech-codec", use_ema: bool = True) -> LoadedCodec:
    """A bundled codec by name, or a codec checkpoint or run directory (``genlab train codec``, ``genlab convert
    --from encodec``)."""
    ckpt = load_checkpoint(resolve_model(name_or_dir), kind="codec")
    cfg = codec_config(ckpt.config)
    if use_ema and ckpt.ema is not None:
        state = ckpt.ema
    else:
        state = {k.removeprefix("codec."): v for k, v in ckpt.model.items() if k.startswith("codec.")}
    codec = Codec(cfg)
    try:
        codec.load_state_dict(state)
    except RuntimeError as e:
        reason = str(e).splitlines()[0][:120]
        raise GenlabError(f"{ckpt.path}: weights do not fit the codec config ({reason})") from None
    codec.eval().requires_grad_(False)
    return LoadedCodec(codec, cfg, name_or_dir, weights_hash(codec.state_dict()))


class CodecAlphabet:
    """Audio as tokens: ``n_q`` codebooks of ``vocab_size`` codes at ``frame_rate`` frames a second.

    ``encode`` takes a float waveform at the codec's rate, ``(T,)`` or ``(channels, T)`` (mixed down), numpy or torch,
    and returns long codes ``(n_q, ceil(T / hop_length))``; ``decode`` returns a float32 ``(frames * hop_length,)``
    waveform. Round trip: ``decode(encode(x))`` has ``x``'s length rounded up to whole frames, and the codec's
    distortion at ``kbps``.
    """

    tokens_per_item = None

    def __init__(self, codec: Codec, n_q: int | None = None):
        self.codec, self.cfg = codec, codec.cfg
        self.n_q = n_q or self.cfg.n_q
        if not 1 <= self.n_q <= self.cfg.n_q:
            raise GenlabError(f"n_q={self.n_q}: this codec has 1 to {self.cfg.n_q} codebooks")

    @classmethod
    def at_kbps(cls, codec: Codec, kbps: float) -> CodecAlphabet:
        return cls(codec, n_q_for_kbps(codec.cfg, kbps))

    @property
    def vocab_size(self) -> int:
        return self.cfg.codebook_size

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def tokens_per_second(self) -> float:
        return self.cfg.frame_rate * self.n_q

    @property
    def kbps(self) -> float:
        return self.cfg.kbps(self.n_q)

    @torch.no_grad()
    def encode(self, waveform) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
        if x.ndim == 2:
            x = x.mean(0)  # (channels, T) -> (T,)
        if x.ndim != 1 or x.numel() == 0:
            raise GenlabError(f"expected a non-empty waveform (T,) or (channels, T), got shape {tuple(x.shape)}")
        return self.codec.encode(x[None, None], self.n_q)[0]  # (n_q, frames)

    @torch.no_grad()
    def decode(self, codes) -> torch.Tensor:
        codes = torch.as_tensor(codes).long()
        check_codes(codes, self.cfg)
        return self.codec.decode(codes[None])[0, 0]  # (frames * hop,)


def n_q_for_kbps(cfg: CodecConfig, kbps: float) -> int:
    """Codebooks for ``kbps``; one line when the codec cannot go that low or that high."""
    lowest, highest = cfg.kbps(1), cfg.kbps(cfg.n_q)
    if not (kbps >= lowest - 1e-9 and kbps <= highest + 1e-9):
        raise GenlabError(f"--kbps {kbps:g}: this codec runs from {lowest:g} kbps (1 codebook) to {highest:g} kbps "
                          f"({cfg.n_q} codebooks), in steps of {lowest:g}")
    return min(cfg.n_q, cfg.n_q_for_kbps(kbps + 1e-9))


def check_codes(codes: torch.Tensor, cfg: CodecConfig, what: str = "codes") -> None:
    if codes.ndim != 2 or codes.shape[1] == 0 or not 1 <= codes.shape[0] <= cfg.n_q:
        raise GenlabError(f"{what}: expected (n_q <= {cfg.n_q}, frames > 0) codes, got shape {tuple(codes.shape)}")
    if codes.min() < 0 or codes.max() >= cfg.codebook_size:
        raise GenlabError(f"{what}: codes must lie in [0, {cfg.codebook_size}), found {int(codes.min())}.."
                          f"{int(codes.max())}")


# -----------------------------------------------------------------------------------------------------------------
# Streaming: windows of `chunk` frames with `context` frames on both sides.


@dataclass(frozen=True)
class Streaming:
    chunk_seconds: float = 30.0
    context_seconds: float = 1.0

    def frames(self, cfg: CodecConfig) -> tuple[int, int]:
        return max(1, int(self.chunk_seconds * cfg.frame_rate)), int(np.ceil(self.context_seconds * cfg.frame_rate))


STREAMING = Streaming()


def _progress(total: int, what: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="s", desc=what, disable=None, file=sys.stderr, leave=False)


@torch.no_grad()
def encode_stream(codec: Codec, blocks: Iterator[np.ndarray], n_q: int, streaming: Streaming = STREAMING,
                  total_samples: int | None = None) -> tuple[torch.Tensor, int]:
    """Codes ``(n_q, ceil(n / hop))`` (int16) of the concatenated float32 mono ``blocks`` and ``n`` (their length)."""
    cfg, hop = codec.cfg, codec.cfg.hop_length
    chunk, context = streaming.frames(cfg)
    buf, buf_start, done, n_seen = np.zeros(0, np.float32), 0, 0, 0  # buf holds samples from buf_start on
    out: list[torch.Tensor] = []
    code_dtype = torch.int16 if cfg.codebook_size <= 32768 else torch.int32  # an hour of int64 codes would not be small
    bar = _progress(int((total_samples or 0) / cfg.sample_rate), "encoding")

    def emit(final: bool) -> None:
        nonlocal buf, buf_start, done
        while True:
            need_end = (done + chunk + context) * hop
            if not final and buf_start + len(buf) < need_end:
                return
            frames_left = -(-(buf_start + len(buf)) // hop) - done
            if frames_left <= 0:
                return
            window = torch.from_numpy(buf[: need_end - buf_start].copy())[None, None]  # (1, 1, samples)
            codes = codec.encode(window, n_q)[0]  # (n_q, frames of the window)
            first = done - buf_start // hop
            take = min(chunk, frames_left)
            out.append(codes[:, first : first + take].to(code_dtype))
            done += take
            bar.update(take * hop / cfg.sample_rate)
            drop = max(0, (done - context) * hop - buf_start)  # keep `context` frames before the next chunk
            buf, buf_start = buf[drop:], buf_start + drop

    for block in blocks:
        n_seen += len(block)
        buf = np.concatenate([buf, block.astype(np.float32, copy=False)])
        emit(final=False)
    emit(final=True)
    bar.close()
    if n_seen == 0:
        raise GenlabError("no audio samples to encode")
    return torch.cat(out, dim=1), n_seen


@torch.no_grad()
def decode_stream(codec: Codec, codes: torch.Tensor, streaming: Streaming = STREAMING) -> Iterator[np.ndarray]:
    """Yield the float32 waveform of ``codes`` ``(n_q, frames)``, ``chunk`` frames at a time."""
    cfg, hop = codec.cfg, codec.cfg.hop_length
    chunk, context = streaming.frames(cfg)
    n_frames = codes.shape[1]
    bar = _progress(int(n_frames / cfg.frame_rate), "decoding")
    for start in range(0, n_frames, chunk):
        lo, hi = max(0, start - context), min(n_frames, start + chunk + context)
        audio = codec.decode(codes[None, :, lo:hi].long())[0, 0]  # (samples of frames lo..hi)
        end = min(start + chunk, n_frames)
        bar.update((end - start) / cfg.frame_rate)
        yield audio[(start - lo) * hop : (end - lo) * hop].numpy()
    bar.close()


def encode_file(path: str | os.PathLike, loaded: LoadedCodec, n_q: int, streaming: Streaming = STREAMING,
                say=print) -> tuple[torch.Tensor, dict]:
    """Codes of an audio file (any rate, any channels: resampled and mixed down, and ``say`` tells so)."""
    import soundfile as sf

    from ..data.audio import audio_duration, stream_audio

    seconds = audio_duration(path)  # one line for a missing / unreadable / non-audio file
    info = sf.info(os.fspath(path))
    if info.frames == 0:
        raise GenlabError(f"{path}: contains no audio samples")
    sr = loaded.cfg.sample_rate
    notes = []
    if info.channels != 1:
        notes.append(f"mixing {info.channels} channels to mono")
    if info.samplerate != sr:
        notes.append(f"resampling {info.samplerate} Hz to {sr} Hz")
    if notes:
        say(f"{path}: {', '.join(notes)}")
    clipped = [0]

    def blocks():
        for block in stream_audio(path, sr, block_seconds=streaming.chunk_seconds):
            clipped[0] += int((np.abs(block) >= 0.999).sum())
            yield block

    codes, n = encode_stream(loaded.codec, blocks(), n_q, streaming, total_samples=int(seconds * sr))
    if clipped[0] > 0.001 * n:
        say(f"{path}: note: {clipped[0]} samples at full scale (clipped input); encoded as it is")
    source = {"file": Path(path).name, "sample_rate": info.samplerate, "channels": info.channels,
              "seconds": round(seconds, 3)}
    return codes, {"n_samples": n, "source": source}
