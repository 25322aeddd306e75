"""The codec section of ``genlab tour``: one held-out speaker's utterance through the bitrate ladder (1.5, 3, 6 kbps)
and Opus, each with a player, its log-mel spectrogram, SI-SDR and mel distance — or one line saying what is missing."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import torch

from ..errors import GenlabError

LADDER = (1.5, 3.0, 6.0)
CODEC2_CLIP = Path("/usr/share/codec2/wav/vk5qi.wav")


def _held_out_clip(sr: int, seconds: float = 6.0) -> tuple[np.ndarray, str]:
    """The first held-out utterance of the codec corpus, or codec2's vk5qi recording when the corpus is not built."""
    from .data import load, read_clip

    try:
        corpus = load(sr)
        entry, audio = corpus.test_clips(min_seconds=3.0)[0]
        return audio[: int(seconds * sr)], f"{entry['speaker']} (held out of training)"
    except (GenlabError, IndexError):
        if CODEC2_CLIP.exists():
            return read_clip(str(CODEC2_CLIP), sr)[: int(seconds * sr)], "codec2's vk5qi recording"
    raise GenlabError("no speech to play: build the corpus (genlab data codec) or install codec2-examples")


def _spectrogram_png(audio: np.ndarray, sr: int, path: Path) -> None:
    from PIL import Image

    from ..data.audio import mel_spectrogram

    m = mel_spectrogram(torch.from_numpy(audio), sr, 512, 128, 80).clamp_min(1e-5).log10().numpy()
    m = np.maximum(m, m.max() - 4.0)  # 80 dB of range
    img = ((m - m.min()) / max(float(m.max() - m.min()), 1e-9) * 255).astype(np.uint8)[::-1]  # low bands at bottom
    Image.fromarray(img).resize((480, 160)).save(path)


def tour_section(out_dir: Path, quick: bool, model: str = "speech-codec") -> str:
    import soundfile as sf

    from .api import load
    from .loss import mel_distance, si_sdr

    loaded = load(model)
    cfg, codec = loaded.cfg, loaded.codec
    audio, source = _held_out_clip(cfg.sample_rate)
    out_dir.mkdir(parents=True, exist_ok=True)
    versions = [("original", None, audio)]
    for n_q in sorted({cfg.n_q_for_kbps(kbps) for kbps in LADDER if cfg.n_q_for_kbps(kbps) <= cfg.n_q}):
        with torch.no_grad():
            y = codec.decode(codec.encode(torch.from_numpy(audio)[None, None], n_q))[0, 0, : len(audio)]
        name = f"{cfg.kbps(n_q):g} kbps ({n_q} codebook{'s' if n_q > 1 else ''})"
        versions.append((name, cfg.kbps(n_q), y.clamp(-1, 1).numpy()))
    try:
        import io

        buf = io.BytesIO()
        sf.write(buf, audio, cfg.sample_rate, format="OGG", subtype="OPUS", compression_level=1.0)
        buf.seek(0)
        versions.append(("Opus, its lowest (6 kbps)", 6.0, sf.read(buf, dtype="float32")[0][: len(audio)]))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    rows, figures = [], []
    x = torch.from_numpy(audio)
    for i, (name, kbps, y) in enumerate(versions):
        stem = f"codec_{i}"
        sf.write(out_dir / f"{stem}.wav", y, cfg.sample_rate)
        _spectrogram_png(y, cfg.sample_rate, out_dir / f"{stem}.png")
        figures.append(f'<figure><img src="{stem}.png" width="480" alt="log-mel of {html.escape(name)}"><figcaption>'
                       f'{html.escape(name)}<br><audio controls src="{stem}.wav"></audio></figcaption></figure>')
        if kbps is not None:
            yt = torch.from_numpy(np.ascontiguousarray(y))
            rows.append(f"<tr><td>{html.escape(name)}</td><td>{si_sdr(yt, x).item():.2f}</td>"
                        f"<td>{mel_distance(yt, x, cfg.sample_rate).item():.3f}</td></tr>")
    return (
        "<h2>Neural audio codec: the audio alphabet</h2>"
        f"<p>{html.escape(source)}, {len(audio) / cfg.sample_rate:.1f} s at {cfg.sample_rate} Hz, through "
        f"{html.escape(loaded.name)} ({cfg.frame_rate:g} frames a second, {cfg.codebook_size} codes per codebook, "
        f"so {cfg.frame_rate:g} x n_q tokens a second) and through Opus.</p>"
        + "".join(figures)
        + "<table><tr><th>version</th><th>SI-SDR (dB)</th><th>mel distance</th></tr>" + "".join(rows) + "</table>"
        + ("<p>SI-SDR compares waveforms sample by sample, so it is far below zero for this decoder, which makes "
           "up each frame's phase (Vocos) rather than keeping the input's; the mel distance compares what is heard. "
           "benchmarks/results/codec_eval.json has PESQ and Whisper's word error rate on held-out speakers.</p>"
           if cfg.decoder == "istft" else "")
    )
