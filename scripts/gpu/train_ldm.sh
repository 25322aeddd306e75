#!/bin/bash
# Train the bundled emoji64-ldm on one GPU within a time budget, resumably, then export it and measure it with text:
#
#     TOTAL=580 bash scripts/gpu/train_ldm.sh CACHE.tar.xz RESULTS_DIR [trainer overrides...]
#
# CACHE holds the captioned OpenMoji images (pack_cache.sh, or only its clip/captioned-v3/openmoji-64 folder); the
# working tree must hold the assets emoji64-vae, emoji-clip and emoji-features-32.safetensors. The training runs the
# recipe's command (recipes/emoji64_ldm.py ldm) and is stopped by SIGTERM EVAL_S seconds before TOTAL if unfinished
# (it saves a checkpoint in runs/emoji64-ldm: run the script again on the same machine to resume). A finished run
# is exported (recipes/emoji64_ldm.py export) and measured by benchmarks/latent_eval.py text on the GPU with
# EVAL_N samples per setting; the export, the result file, the training curve and the logs go to RESULTS_DIR.
set -u
cd "$(dirname "$0")/../.."
CACHE=${1:-.gpu/cache.tar.xz}
RESULTS=${2:-.gpu/results}
shift 2
TOTAL=${TOTAL:-580}
EVAL_S=${EVAL_S:-100}
EVAL_N=${EVAL_N:-1000}
EVAL_DEVICE=${EVAL_DEVICE:-cuda}
export PYTHONPATH=$PWD/src GENLAB_CACHE=$PWD/.gpu/cache-extracted/cache PYTHONUNBUFFERED=1
mkdir -p "$RESULTS" .gpu/cache-extracted runs
[ -d "$GENLAB_CACHE" ] || tar xJf "$CACHE" -C .gpu/cache-extracted || exit 2
left() { echo $((TOTAL - SECONDS)); }
finished() { python3 scripts/gpu/finished.py runs/emoji64-ldm; }
if ! finished 2>/dev/null; then
  timeout -s TERM $(($(left) - EVAL_S)) python3 -c 'import sys; from genlab.cli import main; sys.exit(main(sys.argv[1:]))' \
    train ldm --preset emoji64-ldm --out runs/emoji64-ldm vae=emoji64-vae train.threads=2 train.progress=false "$@" \
    > "$RESULTS/train.log" 2>&1
  echo "train rc=$? at ${SECONDS}s" | tee -a "$RESULTS/train.log"
fi
cp runs/emoji64-ldm/metrics.jsonl "$RESULTS/" 2>/dev/null
if finished; then
  python3 recipes/emoji64_ldm.py export > "$RESULTS/export.log" 2>&1 && cp -r src/genlab/assets/emoji64-ldm "$RESULTS/"
  cat "$RESULTS/export.log"
  timeout -s TERM $(($(left) - 5)) python3 benchmarks/latent_eval.py text --device "$EVAL_DEVICE" --n "$EVAL_N" \
    --clip emoji-clip --batch 250 > "$RESULTS/eval.log" 2>&1
  echo "eval rc=$? at ${SECONDS}s" | tee -a "$RESULTS/eval.log"
  cp benchmarks/results/latent_eval_text.json "$RESULTS/" 2>/dev/null
  tail -8 "$RESULTS/eval.log"
fi
tail -3 "$RESULTS/train.log" 2>/dev/null
ls -la "$RESULTS"
