"""Held-out quality of language models on the KJV: loss, perplexity and bits per character, with the unigram and
bigram baselines fitted on the training chapters in each model's own alphabet (perplexities compare only within an
alphabet; bits per character compare across them).

    python benchmarks/lm_quality.py --model text-lm                        # all 59 held-out chapters
    python benchmarks/lm_quality.py --model text-lm --model smollm2 --max-chars 20000 --threads 1

Writes benchmarks/results/lm_quality.json: one entry per model (its n = characters and predicted tokens, its
window), with the split, the seed, the command and the machine. Scoring is deterministic (models in eval mode,
no sampling); the seed is set and recorded all the same.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from common import write_result  # noqa: E402

from genlab.lm.evaluate import heldout_report  # noqa: E402
from genlab.lm.pipeline import load  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True, help="text-lm | smollm2 | a checkpoint dir (repeat)")
    p.add_argument("--max-chars", type=int, default=0, help="first held-out chapters up to this many characters")
    p.add_argument("--window", type=int, default=1024, help="longest context given to a model")
    p.add_argument("--name", default="lm_quality", help="result file name (benchmarks/results/NAME.json)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    reports = {}
    for name in args.model:
        t0 = time.perf_counter()
        lm = load(name)
        reports[name] = heldout_report(lm, max_chars=args.max_chars or None, window=args.window)
        reports[name]["seconds"] = round(time.perf_counter() - t0, 1)
        r = reports[name]
        print(f"{name}: {r['lm']['bits_per_char']:.3f} bits/char (unigram {r['unigram']['bits_per_char']:.3f}, "
              f"bigram {r['bigram']['bits_per_char']:.3f}); perplexity {r['lm']['perplexity']:.2f} per token "
              f"over {r['lm']['tokens']} tokens, {r['chars']} characters", flush=True)
    split = next(iter(reports.values()))["split"]
    print(write_result(args.name, {"split": split, "max_chars": args.max_chars or None, "seed": args.seed,
                                   "models": reports}))


if __name__ == "__main__":
    main()
