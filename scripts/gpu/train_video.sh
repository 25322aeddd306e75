#!/bin/bash
# Train the bundled video models side by side on one GPU within a time budget, resumably, then export and measure them:
#
#     TOTAL=560 bash scripts/gpu/train_video.sh CACHE.tar.xz RESULTS_DIR [trainer overrides for both runs...]
#
# sprites-video (the joint model) and sprites-video-frames (the same UNet without temporal attention) train at once,
# each in its own process with the recipe's command (recipes/sprites_video.py train / train-frames; the trainer picks
# the GPU), and are stopped by SIGTERM EVAL_S seconds before TOTAL if unfinished: each saves a checkpoint in
# runs/<name> (ignored by git, so it stays on the machine): run the script again on the same machine to resume. When
# both have finished they are exported (recipes/sprites_video.py export: EMA weights in fp16, into src/genlab/assets)
# and benchmarks/video_eval.py samples them on the GPU (scores on the CPU) with EVAL_N clips per model and length, in
# what is left of TOTAL.
#
# Needs, beyond PyTorch, numpy, scipy, safetensors and Pillow:
# - CACHE: a tarball with the sprite bank's source, genlab's OpenMoji cache at 8 px (cache/emoji/v2-8, 1.3 MB;
#   genlab.video.data.load_bank reads it). pack_cache.sh packs it with everything else; alone, from a machine where
#   load_bank has run:  tar cJf .gpu/cache-video.tar.xz --transform 's,^genlab,cache,' -C ~/.cache genlab/emoji/v2-8
# - the assets emoji-features-32.safetensors (the benchmark's feature drift) and unicode-emoji-test-17.0.txt in the
#   working tree; the bundled sprites-video* are replaced, and no other asset is read.
# RESULTS_DIR receives, packed into results.tgz.part-* (cat them | tar xz), the two exports (~6 MB each),
# video_eval.json, the training curves (metrics_<name>.jsonl), the trainer's last sample GIFs and the logs. The checkpoints (~45 MB a run) stay in runs/.
#
# Expected on one H200 (an estimate, not yet measured): the first run's steps (2 clips, channels 16/32/64) took 40-80
# ms on a GPU shared six ways, mostly Python and kernel launches (the same forward and backward of a 2-frame clip
# take 56 ms on one CPU core). This preset's step has 4x the clips and 4x the FLOPs a frame (0.64 TFLOP forward and
# backward for the joint model), ~10-30 ms of GPU work a process, so ~60-100 ms a step: 4,000 steps in 240-400 s of
# the TOTAL - EVAL_S = 450 s given to training. Export takes seconds, the benchmark about a minute (EVAL_N=32,
# lengths 8/16/32, DDIM 50 steps, the timed steps).
set -u
cd "$(dirname "$0")/../.."
CACHE=${1:-.gpu/cache.tar.xz}
RESULTS=${2:-.gpu/results}
shift $(($# < 2 ? $# : 2))
TOTAL=${TOTAL:-560}
EVAL_S=${EVAL_S:-110}
EVAL_N=${EVAL_N:-32}
EVAL_ARGS=${EVAL_ARGS:-}  # more video_eval flags, e.g. "--lengths 8 --repeats 1" for a quick check
DEVICE=${DEVICE:-cuda}
export PYTHONPATH=$PWD/src GENLAB_CACHE=$PWD/.gpu/cache-extracted/cache PYTHONUNBUFFERED=1
mkdir -p "$RESULTS" .gpu/cache-extracted runs
[ -d "$GENLAB_CACHE/emoji/v2-8" ] || tar xJf "$CACHE" -C .gpu/cache-extracted || exit 2
left() { echo $((TOTAL - SECONDS)); }
finished() { python3 scripts/gpu/finished.py "$1"; }  # finished RUN_DIR: at its configured steps
pids=()
for name in sprites-video sprites-video-frames; do
  finished "runs/$name" 2>/dev/null && continue
  command=train; [ "$name" = sprites-video-frames ] && command=train-frames
  ( timeout -s TERM -k 30 $(($(left) - EVAL_S)) python3 recipes/sprites_video.py $command train.progress=false "$@" \
      > "$RESULTS/train_$name.log" 2>&1
    echo "train $name rc=$? at ${SECONDS}s" >> "$RESULTS/train_$name.log" ) &
  pids+=($!)
done
[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"
for name in sprites-video sprites-video-frames; do
  tail -2 "$RESULTS/train_$name.log" 2>/dev/null
  cp "runs/$name/metrics.jsonl" "$RESULTS/metrics_$name.jsonl" 2>/dev/null
  last=$(ls runs/"$name"/samples/step_*.gif 2>/dev/null | tail -1)  # the trainer's last 4 clips (DDIM 20 steps)
  [ -n "$last" ] && cp "$last" "$RESULTS/samples_$name.gif"
done
if finished runs/sprites-video && finished runs/sprites-video-frames; then
  python3 recipes/sprites_video.py export > "$RESULTS/export.log" 2>&1
  cat "$RESULTS/export.log"
  cp -r src/genlab/assets/sprites-video src/genlab/assets/sprites-video-frames "$RESULTS/"
  timeout -s TERM $(($(left) - 10)) python3 benchmarks/video_eval.py --device "$DEVICE" --n "$EVAL_N" $EVAL_ARGS \
    > "$RESULTS/eval.log" 2>&1
  echo "eval rc=$? at ${SECONDS}s" >> "$RESULTS/eval.log"
  cp benchmarks/results/video_eval.json "$RESULTS/" 2>/dev/null
  tail -8 "$RESULTS/eval.log"
else
  echo "not finished at ${SECONDS}s: run the script again on this machine to resume"
fi
# A call returns at most 8 files: everything goes back as one tarball in 15 MiB parts.
(cd "$RESULTS" && tar czf - --exclude='results.tgz.part-*' -- *) | split -b 15M - "$RESULTS/results.tgz.part-"  # not '.': the parts are written there
find "$RESULTS" -mindepth 1 -not -name 'results.tgz.part-*' -delete
ls -la "$RESULTS"
