"""Codec speed: encode + decode of 10 s, genlab's codec against Hugging Face's EncodecModel with identical weights.

    python benchmarks/codec_speed.py [--seconds 10] [--repeats 5] [--threads 2]
    python benchmarks/codec_speed.py --model speech-codec --merge   # a trained codec's own real-time factor

Two shapes: EnCodec 24 kHz (the published model's config, 32 filters, 75 Hz, 6 kbps = 8 codebooks) and genlab's
bundled speech-codec shape (16 kHz, 16 filters, 50 Hz, 6 kbps = 12 codebooks). Each Hugging Face model is built
from its EncodecConfig with random weights and random codebooks, and genlab's codec gets the same weights through
genlab.codec.convert (the two produce identical codes: tests/codec/test_codec_model.py). Both run in this process on
the same 10-second input, A and B alternating (benchmarks/common.time_pairs), in fp32 and under bf16 autocast.
Reported: median seconds, the per-pair ratio genlab / HF (below 1 is faster), and the real-time factor
(seconds of compute per second of audio) of each. ``--model`` times a trained codec alone (a bundle of another
architecture, such as the spectral codec, has no Hugging Face twin): its real-time factor on 10 s of held-out
speech, the row named ``model:NAME/precision``. Writes ``benchmarks/results/codec_speed.json`` (``--merge``
replaces only the rows measured now; each row keeps its command and the machine's load average when it ran: on a
shared machine the real-time factors move with the load, the paired ratios much less).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, cpu_model, time_pairs, write_result  # noqa: E402

from genlab.codec.convert import codec_from_hf  # noqa: E402

SHAPES = {
    "encodec-24khz": dict(),
    "speech-codec": dict(sampling_rate=16000, num_filters=16, hidden_size=64, codebook_size=1024,
                         target_bandwidths=[1.5, 3.0, 6.0]),
}


def build(shape: dict, seed: int = 0):
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(seed)
    config = EncodecConfig(**shape)
    hf = EncodecModel(config).eval()
    for layer in hf.quantizer.layers:
        layer.codebook.embed.normal_()
    return config, hf, codec_from_hf(config.to_dict(), hf.state_dict())


def compare(ours, hf, x: torch.Tensor, n_q: int, bandwidth: float, precision: str, repeats: int) -> dict:
    """Time genlab's and HF's encode + decode of ``x`` alternately; seconds, the ratio and the real-time factors."""
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    seconds = x.shape[-1] / hf.config.sampling_rate

    @torch.no_grad()
    def genlab_run():
        with ctx():
            return ours.decode(ours.encode(x, n_q))

    @torch.no_grad()
    def hf_run():
        with ctx():
            enc = hf.encode(x, bandwidth=bandwidth)
            return hf.decode(enc.audio_codes, enc.audio_scales)[0]

    timing = time_pairs(genlab_run, hf_run, repeats)
    return {"genlab_s": round(timing["a_median_s"], 4), "hf_s": round(timing["b_median_s"], 4),
            "ratio_genlab_over_hf": round(timing["ratio_a_over_b_median"], 3),
            "rtf_genlab": round(timing["a_median_s"] / seconds, 4), "rtf_hf": round(timing["b_median_s"] / seconds, 4)}


def held_out_input(model: str, seconds: float):
    """A trained codec and ``seconds`` of held-out speech of the codec corpus, ``(1, 1, T)``."""
    from genlab.codec.api import load
    from genlab.codec.data import load as load_corpus

    loaded = load(model)
    speech = np.concatenate([a for _, a in load_corpus(loaded.cfg.sample_rate).test_clips()])
    return loaded, torch.from_numpy(speech[: int(seconds * loaded.cfg.sample_rate)])[None, None]


def own_speed(loaded, x: torch.Tensor, precision: str, repeats: int) -> dict:
    """A trained codec's encode at 6 kbps + decode of ``x``, alone: median seconds, RTF."""
    import time

    n_q = loaded.cfg.n_q_for_kbps(6.0)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        with torch.no_grad(), ctx():
            loaded.codec.decode(loaded.codec.encode(x, n_q))
        times.append(time.perf_counter() - t0)
    median = float(np.median(times[1:]))
    return {"seconds": round(median, 4), "rtf": round(median / (x.shape[-1] / loaded.cfg.sample_rate), 4),
            "weights_hash": loaded.weights_hash, "n_q": n_q, "input": "held-out speech of the codec corpus"}


def where() -> dict:
    """The CPU and date of a row: with ``--merge`` a file holds rows of several runs, and the file's own machine and
    date are the last run's."""
    return {"cpu": cpu_model(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated, of: " + ", ".join(SHAPES))
    ap.add_argument("--merge", action="store_true", help="keep the other rows of an existing codec_speed.json")
    ap.add_argument("--model", default=None, help="time this trained codec (name or directory) alone instead")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    existing = RESULTS / "codec_speed.json"
    if args.merge and existing.exists():
        results = json.loads(existing.read_text())["results"]
    loaded, x = held_out_input(args.model, args.seconds) if args.model else (None, None)
    for precision in args.precisions.split(",") if args.model else []:
        results[f"model:{args.model}/{precision}"] = {
            **own_speed(loaded, x, precision, args.repeats), **where(),
            "load_average_1min": os.getloadavg()[0], "command": " ".join(sys.argv)}
        print(precision, results[f"model:{args.model}/{precision}"], flush=True)
    for name in [] if args.model else args.shapes.split(","):
        shape = SHAPES[name]
        config, hf, ours = build(shape)
        n_q = ours.cfg.n_q_for_kbps(6.0)
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.standard_normal(int(args.seconds * config.sampling_rate)).astype(np.float32) * 0.1)
        x = x[None, None]  # (1, 1, T)
        with torch.no_grad():
            same = torch.equal(ours.encode(x, n_q), hf.encode(x, bandwidth=6.0).audio_codes[0])
        for precision in args.precisions.split(","):
            row = compare(ours, hf, x, n_q, 6.0, precision, args.repeats)
            results[f"{name}/{precision}"] = {**row, "n_q": n_q, "sample_rate": config.sampling_rate,
                                              "fp32_codes_identical": same, **where(),
                                              "load_average_1min": os.getloadavg()[0],
                                              "command": " ".join(sys.argv)}
            print(name, precision, results[f"{name}/{precision}"], flush=True)
            path = write_result("codec_speed", {  # after every row: a long run that is stopped keeps what it has
                "seconds_of_audio": args.seconds, "repeats": args.repeats, "task": "encode at 6 kbps + decode",
                "results": results})
    if args.model:
        path = write_result("codec_speed", {"seconds_of_audio": args.seconds, "repeats": args.repeats,
                                            "task": "encode at 6 kbps + decode", "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
