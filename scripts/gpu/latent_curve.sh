#!/bin/bash
# Pixel against latent diffusion at equal training wall time on one GPU (benchmarks/latent_eval.py curve):
#
#     TOTAL=560 bash scripts/gpu/latent_curve.sh CACHE.tar.xz RESULTS_DIR
#
# Reads its data only from CACHE (pack_cache.sh, or only its clip/captioned-v3/openmoji-64 folder): the captioned
# OpenMoji at 64 px are both models' training images (the pixel model with model.dataset=captioned-emoji64, so no
# emoji/ folder is needed) and the held-out reference. The working tree must hold the assets emoji64-vae (the latent
# model's frozen autoencoder) and emoji-features-32.safetensors (the FID features); no CLIP, no data package.
# The pixel UNet (emoji64 preset) and emoji64-ldm then train from scratch, one after the other, BUDGET seconds of
# training clock each, with a snapshot about every EVERY seconds; every snapshot draws EVAL_N images on the GPU and
# is scored against the 622 held-out images. The whole script stays within TOTAL seconds: the benchmark is stopped
# by SIGTERM 8 s before (a training run saves and stops; the result file, rewritten after every scored snapshot,
# keeps what was scored, the budget's end first, with "complete": false). The result, both runs' metrics.jsonl and
# the logs go to RESULTS_DIR. Budget: about 2 x BUDGET for training, ~25 s of process starts, and the evaluation
# (2 x (BUDGET / EVERY + 2) snapshots).
set -u
cd "$(dirname "$0")/../.."
CACHE=${1:-.gpu/cache.tar.xz}
RESULTS=${2:-.gpu/results}
TOTAL=${TOTAL:-560}
BUDGET=${BUDGET:-200}
EVERY=${EVERY:-40}
EVAL_N=${EVAL_N:-1000}
export PYTHONPATH=$PWD/src GENLAB_CACHE=$PWD/.gpu/cache-extracted/cache PYTHONUNBUFFERED=1
mkdir -p "$RESULTS" .gpu/cache-extracted
[ -d "$GENLAB_CACHE" ] || tar xJf "$CACHE" -C .gpu/cache-extracted || exit 2
timeout -s TERM $((TOTAL - SECONDS - 8)) python3 benchmarks/latent_eval.py curve --budget "$BUDGET" \
  --every "$EVERY" --n "$EVAL_N" --device cuda --batch 250 --threads 2 --runs runs/latent-curve \
  > "$RESULTS/curve.log" 2>&1
echo "curve rc=$? at ${SECONDS}s" | tee -a "$RESULTS/curve.log"
cp benchmarks/results/latent_eval_curve.json "$RESULTS/" 2>/dev/null
for name in pixel latent; do
  cp "runs/latent-curve/$name/metrics.jsonl" "$RESULTS/$name-metrics.jsonl" 2>/dev/null
  cp "runs/latent-curve/$name/train.log" "$RESULTS/$name-train.log" 2>/dev/null
done
tail -20 "$RESULTS/curve.log"
ls -la "$RESULTS"
