"""genlab's word errors against faster-whisper's on the long-form files of benchmarks/longform.py, per file and
pooled, with a paired bootstrap over utterances: how sure a difference in WER is, from texts already transcribed
(nothing is decoded here).

Each system's text of a file is aligned to the reference (the file's utterances in order) by edit distance; every
substitution and deletion is charged to its reference word's utterance, every insertion to the utterance of the
reference word before it (the first one's, at the start), so a file's charges add up to its edit distance and
its WER is longform.py's. A bootstrap draw takes utterances with replacement (within each file for the per-file
intervals; from all files together for the pooled one) and compares the two systems on the same draw.

    python benchmarks/longform_pooled.py [--split test] [--beams 1,5] [--draws 10000] [--seed 0] [--out NAME]

Texts: test from benchmarks/results/asr_longform.json (its test_runs: the texts behind the README's words table);
dev from asr_longform_dev_b1_4605f24.json / asr_longform_dev_b5_abd3abd.json (genlab) and asr_longform_dev_fw.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SYSTEMS = ("genlab-fp32", "faster-whisper-fp32")


def runs(split: str) -> dict:
    """{(file, system, beam): text} of the stored runs."""
    def load(name: str, key: str = "runs") -> dict:
        return json.loads((RESULTS / f"{name}.json").read_text())[key]

    stored = [load("asr_longform", "test_runs")] if split == "test" else [
        load("asr_longform_dev_b1_4605f24"), load("asr_longform_dev_b5_abd3abd"), load("asr_longform_dev_fw")]
    out = {}
    for rows in stored:
        for key, row in rows.items():
            name, system, beam = key.split("/")
            out[(name, system, int(beam.removeprefix("beam")))] = row["text"]
    return out


def charges(ref: list[str], hyp: list[str], owner: list[int], n_utts: int) -> np.ndarray:
    """Word errors per utterance: ``owner[i]`` is reference word i's utterance."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int32)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    out = np.zeros(n_utts, dtype=np.int64)
    i, j = n, m
    while i or j:  # trace back one optimal alignment
        if i and j and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            out[owner[i - 1]] += ref[i - 1] != hyp[j - 1]
            i, j = i - 1, j - 1
        elif i and d[i, j] == d[i - 1, j] + 1:
            out[owner[i - 1]] += 1
            i -= 1
        else:
            out[owner[max(i - 1, 0)]] += 1
            j -= 1
    return out


def per_utterance(name: str, texts: dict[str, str]) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """(reference words per utterance, {system: errors per utterance}) of one file; None without a reference."""
    import longform

    _, manifest = longform.cached(name)
    if not manifest["has_text"]:
        return None
    lang, utts = manifest["language"], manifest["utterances"]
    words = [longform.norm_words(u["text"], lang) for u in utts]
    ref = [w for ws in words for w in ws]
    owner = [k for k, ws in enumerate(words) for _ in ws]
    errors = {s: charges(ref, longform.norm_words(t, lang), owner, len(utts)) for s, t in texts.items()}
    return np.array([len(ws) for ws in words]), errors


def bootstrap(n_words: np.ndarray, errs: dict[str, np.ndarray], draws: int, rng: np.random.Generator) -> dict:
    """WER of each system and of their difference (genlab minus faster-whisper), with a 95 % interval of the
    difference and the share of draws where genlab's WER is not above faster-whisper's."""
    g, f = errs[SYSTEMS[0]], errs[SYSTEMS[1]]
    idx = rng.integers(0, len(n_words), size=(draws, len(n_words)))
    diff = (g[idx].sum(1) - f[idx].sum(1)) / np.maximum(1, n_words[idx].sum(1))
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return {"words": int(n_words.sum()), "utterances": len(n_words), "errors": [int(g.sum()), int(f.sum())],
            "wer": [round(float(g.sum() / n_words.sum()), 4), round(float(f.sum() / n_words.sum()), 4)],
            "difference": round(float((g.sum() - f.sum()) / n_words.sum()), 4),
            "difference_95": [round(float(lo), 4), round(float(hi), 4)],
            "share_genlab_not_worse": round(float((diff <= 0).mean()), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="test", choices=["dev", "test"])
    ap.add_argument("--beams", default="1,5")
    ap.add_argument("--draws", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    texts = runs(args.split)
    rng = np.random.default_rng(args.seed)
    result = {"split": args.split, "draws": args.draws, "seed": args.seed, "systems": SYSTEMS, "beams": {}}
    for beam in (int(b) for b in args.beams.split(",")):
        names = sorted({n for n, s, b in texts if b == beam and all((n, x, b) in texts for x in SYSTEMS)})
        files, pooled_words, pooled = {}, [], {s: [] for s in SYSTEMS}
        for name in names:
            got = per_utterance(name, {s: texts[(name, s, beam)] for s in SYSTEMS})
            if got is None:
                continue
            n_words, errs = got
            files[name] = bootstrap(n_words, errs, args.draws, rng)
            pooled_words.append(n_words)
            for s in SYSTEMS:
                pooled[s].append(errs[s])
        total = bootstrap(np.concatenate(pooled_words), {s: np.concatenate(v) for s, v in pooled.items()},
                          args.draws, rng)
        result["beams"][f"beam{beam}"] = {"files": files, "pooled": total}
        print(f"beam {beam}: pooled {total}")
        for name, r in files.items():
            print(f"  {name}: {r}")
    if args.out:
        write_result(args.out, result)


if __name__ == "__main__":
    main()
