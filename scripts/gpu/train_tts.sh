#!/bin/bash
# Train the bundled speech-tts (recipes/tts_speech.py) on one GPU within a time budget, stage by stage, resumably:
#
#     STAGES="speaker" TOTAL=560 bash scripts/gpu/train_tts.sh TTS_DATA.tar.xz RESULTS_DIR [overrides for every stage]
#
# TTS_DATA is pack_tts.sh's archive: the espeakng-loader wheel (unzipped into .gpu/tts-site, on PYTHONPATH) and the
# corpus's plan; the machine renders the corpus from them (0.5-2.5 min) into .gpu/cache-extracted and writes
# RESULTS_DIR/corpus_check.json: which of its arrays match the checksums of the corpus built here (the mels are
# computed by this machine's torch, so they may differ in the last bit; audio, phonemes and durations come from
# espeak alone). The stages, with the recipe's own commands (kept in step with its STAGES), run in the order of
# STAGES (default "speaker acoustic vocoder"); a finished stage is skipped, an unfinished one resumes from its last
# checkpoint in runs/, and whatever runs is stopped by SIGTERM EXPORT_S seconds before TOTAL (an exact checkpoint;
# the script says so: run it again on the same warm machine to go on). When all three have finished, the recipe's
# export writes src/genlab/assets/speech-tts.
#   speaker  GE2E on the real speakers of CODEC (default .gpu/cache-codec.tar.xz, pack_codec.sh's part of the codec
#            corpus: 33 min, whole clips up to 40 s a speaker; the pool keeps the same 43 training speakers as the
#            full 6.75 h, those with 2 clips of 1 s or more, and all 6 held out) + the 51 espeak voices.
#   acoustic FastSpeech; needs the finished speaker run in runs/speaker-speech-speaker.
#   vocoder  HiFi-GAN on the corpus's audio.
# Carry: TTS_DATA; CODEC for the speaker stage; runs/speaker-speech-speaker (as it came back) for the acoustic
# stage and the export; runs/vocoder-speech-vocos to resume an unfinished vocoder in a later session. Move
# src/genlab/assets aside for the copy (no asset is read).
# The corpus rendered there matched the one built here in phonemes, stress and durations (smoke, 44 utterances,
# fresh process); the audio differs only where a voice adds random breath noise (en-us+victor, +sandro), which
# espeak draws anew at each rendering, so each session's corpus differs there (and their mels with it).
# Expected on one H200 (an estimate, not measured): steps are bound by kernel launches, not arithmetic. One CPU step
# of each stage at its preset's batch, profiled here (2026-12-04): speaker 759 ops (3 host syncs on the GPU: the
# windows are cut on the CPU, 20 ms, their features computed in the loss), ~125 GFLOP counted by hand (3-layer
# LSTM, 96 windows x 160 frames, forward + backward); acoustic 3,273 ops, 21 syncs, 165 GFLOP; vocoder (both
# phases) 4,850 ops, 37 syncs, 47 GFLOP. At 10-25 us an op: speaker ~10-20 ms + ~10 ms of cuDNN's 160 sequential
# LSTM steps + the 20 ms batch, 2.5-5 min for 6,000 steps; acoustic 33-82 ms, 5.5-14 min for 10,000 steps (1-2
# calls, on one warm machine); vocoder 49-121 ms, 16-40 min for 20,000 steps (2-5 calls, resumable across
# sessions). Each call also spends 0.5-2.5 min rendering the corpus (135 s for the full build here, loaded) and,
# for the speaker stage, ~30 s unpacking the codec part and resampling the espeak voices. In all 4-8 calls of
# TOTAL=560 in 3-5 sessions.
# RESULTS_DIR receives, packed into results.tgz.part-* (cat them | tar xz): each stage's log, metrics.jsonl and
# train_config.json; corpus_check.json; for each stage in STAGES, run_NAME/ (the run's latest checkpoint with its
# train_config.json and metrics: copy it to runs/NAME here, and carry it to go on in a later session); once all
# three have finished on this machine, the export speech-tts/ (29 MB). Checkpoints (measured on the smoke run):
# speaker 17.1 MB and vocoder 16.0 MB travel both ways; the acoustic one, 78 MB (weights, EMA, AdamW), cannot be
# carried in, so that stage must finish on one warm machine; finished, it comes back (unless exported here) so that
# `python recipes/tts_speech.py export` can run here once the vocoder is done.
set -u
cd "$(dirname "$0")/../.."
DATA=${1:-.gpu/tts-data.tar.xz}
RESULTS=${2:-.gpu/results}
shift $(($# < 2 ? $# : 2))
TOTAL=${TOTAL:-560}
EXPORT_S=${EXPORT_S:-40}  # kept back for the last save, the export and the packing
STAGES=${STAGES:-speaker acoustic vocoder}
CODEC=${CODEC:-.gpu/cache-codec.tar.xz}
export PYTHONPATH=$PWD/src:$PWD/.gpu/tts-site GENLAB_CACHE=$PWD/.gpu/cache-extracted/cache PYTHONUNBUFFERED=1
mkdir -p "$RESULTS" .gpu/tts .gpu/cache-extracted runs
rm -f "$RESULTS"/results.tgz.part-*  # an earlier call's parts
[ -f .gpu/tts/tts-plan.json ] || tar xJf "$DATA" -C .gpu/tts || exit 2
[ -d .gpu/tts-site/espeakng_loader ] || python3 -m zipfile -e .gpu/tts/espeakng_loader-*.whl .gpu/tts-site || exit 2
python3 - .gpu/tts/tts-plan.json "$RESULTS/corpus_check.json" <<'PY' || exit 2
import json
import sys
import time

import espeakng_loader
import torch

from genlab.data.cache import sha256_file
from genlab.tts.data import TTSCorpusSize, build

p = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
corpus = build(TTSCorpusSize(**p["size"]), p["seed"], planned=p["plan"], progress=False)
ref = p["reference"]
check = {"espeak": espeakng_loader.__file__, "seconds": round(time.perf_counter() - t0, 1), "dir": str(corpus.dir),
         "utterances": [len(corpus.manifest["utterances"]), ref["utterances"]],
         "vocabulary_same": corpus.vocabulary == ref["vocabulary"],
         "files_same": {n: sha256_file(corpus.dir / n) == h for n, h in ref["files"].items()}}
json.dump(check, open(sys.argv[2], "w"), indent=1)
print(json.dumps(check))
print("cuda:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")
PY
SPEAKER=$PWD/runs/speaker-speech-speaker
ACOUSTIC=$PWD/runs/tts-speech-tts
VOCODER=$PWD/runs/vocoder-speech-vocos
left() { echo $((TOTAL - SECONDS)); }
finished() { python3 scripts/gpu/finished.py "$1" 2>/dev/null; }
# stage FAMILY PRESET RUN_DIR [overrides...]: train with the recipe's command until finished or EXPORT_S before TOTAL.
stage() {
  local family=$1 preset=$2 run=$3
  shift 3
  finished "$run" && return 0
  [ "$(left)" -gt $((EXPORT_S + 30)) ] || return 1
  timeout -s TERM -k 30 $(($(left) - EXPORT_S)) \
    python3 -c 'import sys; from genlab.cli import main; sys.exit(main(sys.argv[1:]))' train "$family" \
    --preset "$preset" --out "$run" train.threads=2 train.progress=false "$@" >> "$RESULTS/train_$preset.log" 2>&1
  echo "train $preset rc=$? at ${SECONDS}s" | tee -a "$RESULTS/train_$preset.log"
  finished "$run"
}
codec() {  # the codec corpus's part, unpacked and checked against its manifest, once per machine
  [ -d "$GENLAB_CACHE/codec-speech" ] || tar xJf "$CODEC" -C .gpu/cache-extracted || return 2
  python3 -c 'from genlab.codec.data import SAMPLE_RATE, corpus_dir, unpack
print(unpack(corpus_dir(SAMPLE_RATE)).manifest["subset"]["note"])'
}
for s in $STAGES; do
  case $s in
    speaker) finished "$SPEAKER" || { codec && stage speaker speech-speaker "$SPEAKER" "$@"; } ;;
    acoustic) stage tts speech-tts "$ACOUSTIC" "speaker_encoder=$SPEAKER" "$@" ;;
    vocoder) stage vocoder speech-vocos "$VOCODER" "$@" ;;
    *) echo "unknown stage $s (speaker, acoustic, vocoder)" >&2; exit 2 ;;
  esac || echo "stage $s not finished at ${SECONDS}s: run the script again on this machine to resume"
done
# back RUN: the run's curve and config; with RETURN=1 also its latest checkpoint into RESULTS/run_NAME (copy that
# folder to runs/NAME here).
back() {
  local run=$1 name latest
  name=$(basename "$run")
  cp "$run/metrics.jsonl" "$RESULTS/metrics_$name.jsonl" 2>/dev/null
  cp "$run/train_config.json" "$RESULTS/train_config_$name.json" 2>/dev/null
  [ "$2" = 1 ] && [ -f "$run/checkpoints/latest" ] || return 0
  latest=$(cat "$run/checkpoints/latest")
  mkdir -p "$RESULTS/run_$name/checkpoints"
  cp "$run/train_config.json" "$run/metrics.jsonl" "$RESULTS/run_$name/" 2>/dev/null
  cp "$run/checkpoints/latest" "$RESULTS/run_$name/checkpoints/"
  cp -r "$run/checkpoints/$latest" "$RESULTS/run_$name/checkpoints/"
}
ran() { case " $STAGES " in *" $1 "*) echo 1 ;; *) echo 0 ;; esac; }
if finished "$SPEAKER" && finished "$ACOUSTIC" && finished "$VOCODER"; then
  python3 recipes/tts_speech.py export > "$RESULTS/export.log" 2>&1
  echo "export rc=$? at ${SECONDS}s" | tee -a "$RESULTS/export.log"
  cp -r src/genlab/assets/speech-tts "$RESULTS/" && exported=1 || exported=0
else
  exported=0
fi
back "$SPEAKER" "$(ran speaker)"
# The acoustic run (78 MB) can only come back finished, for the export here when the vocoder finishes elsewhere.
finished "$ACOUSTIC" && [ $exported = 0 ] && back "$ACOUSTIC" "$(ran acoustic)" || back "$ACOUSTIC" 0
back "$VOCODER" "$(ran vocoder)"
# A call returns at most 8 files: everything goes back as one tarball in 15 MiB parts (the names are listed before
# the parts appear, so tar never reads the folder it writes into).
(cd "$RESULTS" && tar czf - --exclude='results.tgz.part-*' -- *) | split -b 15M - "$RESULTS/results.tgz.part-"
find "$RESULTS" -mindepth 1 -not -name 'results.tgz.part-*' -delete
ls -la "$RESULTS"
