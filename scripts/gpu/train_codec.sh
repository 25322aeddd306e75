#!/bin/bash
# Train the bundled speech-codec on one GPU within a time budget, resumably, then export it:
#
#     TOTAL=560 bash scripts/gpu/train_codec.sh CACHE.tar.xz RESULTS_DIR [trainer overrides for both stages...]
#
# The three stages of recipes/speech_codec.py run with the recipe's own commands (kept in step with its train()):
# stage 0 (preset speech-codec-wave, 350 steps) into runs/speech-codec-wave, stage 1 (preset speech-codec, 13,000
# steps, starting from stage 0's codec) into runs/speech-codec, then stage 2 (speech-codec-gan, 1,200 steps,
# starting from stage 1's EMA codec) into runs/speech-codec-gan; the trainer picks the GPU by itself. Whatever runs
# is stopped by SIGTERM EXPORT_S seconds before TOTAL if unfinished: it saves an exact checkpoint in runs/ (ignored
# by git, so it stays on the machine) and the script says so: run it again on the same warm machine to resume. Once
# stage 2 has finished, the recipe's export writes its EMA codec to src/genlab/assets/speech-codec.
#
# Carry: CACHE only, made here by scripts/gpu/pack_codec.sh (.gpu/cache-codec.tar.xz, a balanced part of the speech
# corpus in the corpus's cache format, its arrays packed losslessly; unpacked here and checked against the
# manifest's checksums before training). No asset is read: move src/genlab/assets aside for the copy (the tree is
# then a few MB) and put it back after. Beyond PyTorch and numpy nothing is needed (no soundfile: the training
# samples are written by the standard library's wave module).
# RESULTS_DIR receives, packed into results.tgz.part-* (cat them | tar xz), the export (~20 MB, fp32), both stages'
# metrics.jsonl and train_config.json, the last decoded held-out clip of each stage at every bitrate (16-bit WAV)
# and the logs. The checkpoints stay in runs/.
#
# Expected on one H200 (an estimate, not measured): a step of this small model (3.7 M parameters, 8 one-second
# windows) is bound by kernel launches and host syncs, not by arithmetic. One CPU step profiled here (2026-12-04)
# holds 3,730 compute ops, 259 host syncs (.item()) and 20.9 GFLOP in stage 1; 5,231 ops, 317 syncs and 48.2
# GFLOP in stage 2 -- milliseconds of H200 arithmetic. At 10-25 us an op (eager dispatch plus launch, a sync
# draining the queue) that is ~40-100 ms a stage-1 step and ~50-130 ms a stage-2 step: 9-22 min for the preset's
# 13,000 steps and 1-2.6 min for 1,200, plus ~1 min of process starts, k-means initialisation, evaluations and
# export: 2-4 calls of TOTAL=560, each resuming where the last stopped (on the CPU here: about 2.5 h).
set -u
cd "$(dirname "$0")/../.."
CACHE=${1:-.gpu/cache-codec.tar.xz}
RESULTS=${2:-.gpu/results}
shift $(($# < 2 ? $# : 2))
TOTAL=${TOTAL:-560}
EXPORT_S=${EXPORT_S:-40}  # kept back for the last save, the export and the packing
export PYTHONPATH=$PWD/src GENLAB_CACHE=$PWD/.gpu/cache-extracted/cache PYTHONUNBUFFERED=1
mkdir -p "$RESULTS" .gpu/cache-extracted runs
[ -d "$GENLAB_CACHE/codec-speech" ] || tar xJf "$CACHE" -C .gpu/cache-extracted || exit 2
python3 -c 'from genlab.codec.data import SAMPLE_RATE, corpus_dir, unpack
import torch
print(unpack(corpus_dir(SAMPLE_RATE)).manifest["subset"]["note"])
print("cuda:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")' || exit 2
STAGE0=$PWD/runs/speech-codec-wave
STAGE1=$PWD/runs/speech-codec
STAGE2=$PWD/runs/speech-codec-gan
left() { echo $((TOTAL - SECONDS)); }
finished() { python3 scripts/gpu/finished.py "$1" 2>/dev/null; }
# stage RUN_DIR PRESET [overrides...]: train with the recipe's command until finished or EXPORT_S before TOTAL.
stage() {
  local run=$1 preset=$2
  shift 2
  finished "$run" && return 0
  [ "$(left)" -gt $((EXPORT_S + 30)) ] || return 1
  timeout -s TERM -k 30 $(($(left) - EXPORT_S)) python3 -c 'import sys; from genlab.cli import main; sys.exit(main(sys.argv[1:]))' \
    train codec --preset "$preset" --out "$run" train.threads=2 train.progress=false "$@" > "$RESULTS/train_$preset.log" 2>&1
  echo "train $preset rc=$? at ${SECONDS}s" | tee -a "$RESULTS/train_$preset.log"
  finished "$run"
}
stage "$STAGE0" speech-codec-wave "$@" && stage "$STAGE1" speech-codec "model.init_from=$STAGE0" "$@" &&
  stage "$STAGE2" speech-codec-gan "model.init_from=$STAGE1" "$@"
for run in "$STAGE0" "$STAGE1" "$STAGE2"; do
  name=$(basename "$run")
  cp "$run/metrics.jsonl" "$RESULTS/metrics_$name.jsonl" 2>/dev/null
  cp "$run/train_config.json" "$RESULTS/train_config_$name.json" 2>/dev/null
  last=$(ls "$run"/samples/step_*_nq1.wav 2>/dev/null | tail -1)  # the last step's clip at 1..n_q codebooks
  [ -n "$last" ] && mkdir -p "$RESULTS/samples_$name" && cp "${last%_nq1.wav}"_nq*.wav "$RESULTS/samples_$name/"
done
if finished "$STAGE2"; then
  python3 recipes/speech_codec.py export > "$RESULTS/export.log" 2>&1
  echo "export rc=$? at ${SECONDS}s" | tee -a "$RESULTS/export.log"
  cp -r src/genlab/assets/speech-codec "$RESULTS/"
else
  echo "not finished at ${SECONDS}s: run the script again on this machine to resume"
fi
# A call returns at most 8 files: everything goes back as one tarball in 15 MiB parts (the names are listed before
# the parts appear, so tar never reads the folder it writes into).
(cd "$RESULTS" && tar czf - --exclude='results.tgz.part-*' -- *) | split -b 15M - "$RESULTS/results.tgz.part-"
find "$RESULTS" -mindepth 1 -not -name 'results.tgz.part-*' -delete
ls -la "$RESULTS"
