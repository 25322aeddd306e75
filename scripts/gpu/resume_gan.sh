#!/bin/bash
# Resume the emoji32-gan run on one GPU within a time budget, export it, and send the run back if unfinished:
#
#     TOTAL=220 bash scripts/gpu/resume_gan.sh BUNDLE.tar.xz RESULTS_DIR
#
# BUNDLE holds cache/emoji/v2-32 (the 32 px emoji images, from pack_cache.sh) and runs/emoji32-gan with its latest
# checkpoint, metrics.jsonl and train_config.json; the working tree must hold the asset
# emoji-features-32.safetensors (the collapse monitor's features). The recipe's training command resumes exactly
# (weights, optimizers, EMA, augmentation state, RNG, data order) and is stopped by SIGTERM 25 s before TOTAL if
# unfinished; the run is then exported (recipes/emoji32_gan.py export) and, if unfinished, its latest checkpoint
# goes to RESULTS_DIR in 15 MiB parts (cat ckpt.tar.part-* | tar x) to be resumed elsewhere.
set -u
cd "$(dirname "$0")/../.."
BUNDLE=${1:-.gpu/gan-bundle.tar.xz}
RESULTS=${2:-.gpu/results}
TOTAL=${TOTAL:-220}
mkdir -p "$RESULTS" .gpu/gan-bundle runs
tar xJf "$BUNDLE" -C .gpu/gan-bundle || exit 2
export PYTHONPATH=$PWD/src GENLAB_CACHE=$PWD/.gpu/gan-bundle/cache PYTHONUNBUFFERED=1
rm -rf runs/emoji32-gan && mv .gpu/gan-bundle/runs/emoji32-gan runs/
timeout -s TERM $((TOTAL - SECONDS - 25)) python3 -c 'import sys; from genlab.cli import main; sys.exit(main(sys.argv[1:]))' \
  train gan --preset emoji32-gan --out runs/emoji32-gan train.threads=2 train.progress=false > "$RESULTS/train.log" 2>&1
echo "train rc=$? at ${SECONDS}s" | tee -a "$RESULTS/train.log"
python3 recipes/emoji32_gan.py export > "$RESULTS/export.log" 2>&1 && cp -r src/genlab/assets/emoji32-gan "$RESULTS/"
cat "$RESULTS/export.log"
cp runs/emoji32-gan/metrics.jsonl runs/emoji32-gan/train_config.json "$RESULTS/"
latest=$(cat runs/emoji32-gan/checkpoints/latest)
python3 scripts/gpu/finished.py runs/emoji32-gan || \
  tar cf - -C runs/emoji32-gan "checkpoints/$latest" checkpoints/latest | split -b 15M - "$RESULTS/ckpt.tar.part-"
tail -3 "$RESULTS/train.log"
ls -la "$RESULTS"
