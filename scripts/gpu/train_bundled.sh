#!/bin/bash
# Train the bundled models of several families side by side on one GPU, from a cache packed by pack_cache.sh:
#
#     DEADLINE=470 bash scripts/gpu/train_bundled.sh [CACHE.tar.xz] [RESULTS_DIR]
#
# Each recipe runs unchanged (its own steps and schedule; the trainer picks the GPU) in its own process, stopped by
# SIGTERM at DEADLINE seconds if unfinished (it saves a checkpoint; rerun to resume). Then every run is exported
# and the exports, logs and training curves are packed into RESULTS_DIR/results.tgz.part-* (15 MiB parts). On one
# H200 (2026-12-04), six runs side by side: text-lm 2,000 steps in 77 s, emoji-clip 3,000 in 189 s, sprites-video
# 4,000 in 268 s, sprites-video-frames 4,000 in 188 s, emoji64-vae 3,000 in 214 s then emoji64-ldm at ~14 steps/s,
# emoji32-gan at ~14 steps/s (15,000 steps need about 18 minutes: two deadlines).
# A machine that receives a copy of the working tree with a size cap: the bundled assets (~60 MB) need not travel;
# move src/genlab/assets aside for the copy and put it back after.
set -u
cd "$(dirname "$0")/../.."
CACHE=${1:-.gpu/cache.tar.xz}
RESULTS=${2:-.gpu/results}
export PYTHONPATH=$PWD/src GENLAB_CACHE=$PWD/.gpu/cache-extracted/cache PYTHONUNBUFFERED=1
mkdir -p runs/gpu-logs "$RESULTS" .gpu/cache-extracted
[ -d "$GENLAB_CACHE" ] || tar xJf "$CACHE" -C .gpu/cache-extracted || exit 2
LOGS=runs/gpu-logs
pids=()
job() {
  local name=$1; shift
  ( timeout -s TERM "${DEADLINE:-470}" "$@" > "$LOGS/$name.log" 2>&1; echo "rc=$?" >> "$LOGS/$name.log" ) &
  pids+=($!)
}
job clip python3 recipes/emoji_clip.py train
job lm python3 recipes/text_lm.py train
job video python3 recipes/sprites_video.py train
job videof python3 recipes/sprites_video.py train-frames
job gan python3 recipes/emoji32_gan.py train
job ldm python3 recipes/emoji64_ldm.py all
wait "${pids[@]}"
for r in emoji_clip text_lm emoji32_gan sprites_video; do python3 recipes/$r.py export > "$LOGS/export_$r.log" 2>&1; done
python3 recipes/emoji64_ldm.py vae-export > "$LOGS/export_vae.log" 2>&1
python3 recipes/emoji64_ldm.py export > "$LOGS/export_ldm.log" 2>&1
grep -h "rc=\|exported" "$LOGS"/*.log
assets=$(ls -d src/genlab/assets/{emoji-clip,text-lm,sprites-video,sprites-video-frames,emoji32-gan,emoji64-vae,emoji64-ldm} \
         2>/dev/null)
tar czf - "$LOGS" runs/*/metrics.jsonl $assets | split -b 15M - "$RESULTS/results.tgz.part-"
ls -la "$RESULTS"
