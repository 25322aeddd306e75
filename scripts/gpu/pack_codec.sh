#!/bin/bash
# Pack a balanced part of the codec's speech corpus for a GPU machine that receives at most 64 MiB (the full corpus,
# 6.75 h of training speech, is 780 MB): built here from the corpus `python recipes/speech_codec.py data` made,
#
#     bash scripts/gpu/pack_codec.sh [OUT.tar.xz]      # default .gpu/cache-codec.tar.xz
#
# Every training speaker gives whole clips, in a fixed random order, until it has given SECONDS_PER_SPEAKER seconds
# or all it has (genlab.codec.data.subset); every held-out speaker TEST_SECONDS for the in-training evaluation. The
# part is written in the corpus's own cache format under cache/codec-speech/, so the recipe reads it unchanged with
# GENLAB_CACHE pointing at the extracted cache; its manifest (and the meta of a model trained on it) says how many
# minutes of the full corpus it holds. The int16 arrays travel as first differences in two byte planes
# (genlab.codec.data.pack, lossless; train_codec.sh unpacks them and checks the manifest's checksums), which xz -9
# packs about 16% smaller than the samples. The archive must stay under LIMIT_MB (default 45: the rest of the 64 MiB
# is the working tree); the script fails if it does not.
# Measured here (2026-12-04, seed 0): SECONDS_PER_SPEAKER=40, TEST_SECONDS=20 give 33.2 min of training speech
# from the 60 training speakers and 2.1 min from the 6 held out, 42.9 MB (the same part as plain int16 under xz -9:
# 50.9 MB); xz -9 takes about 2 minutes on 2 cores.
set -eu
cd "$(dirname "$0")/../.."
OUT=${1:-.gpu/cache-codec.tar.xz}
SECONDS_PER_SPEAKER=${SECONDS_PER_SPEAKER:-40}
TEST_SECONDS=${TEST_SECONDS:-20}
SEED=${SEED:-0}
LIMIT_MB=${LIMIT_MB:-45}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
python - "$STAGE" "$SECONDS_PER_SPEAKER" "$TEST_SECONDS" "$SEED" <<'PY'
import sys
from pathlib import Path

from genlab.codec.data import load, pack, subset

stage, per_speaker, test_seconds, seed = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
full = load()  # the full corpus, from the usual cache
part = subset(full, stage / "cache" / "codec-speech" / full.dir.name, per_speaker, test_seconds, seed)
print(part.manifest["subset"]["note"], f"({part.manifest['seconds']['test'] / 60:.1f} min held out)")
pack(part.dir)
PY
. scripts/gpu/xz_pack.sh
xz_pack "$STAGE" "$OUT" "$LIMIT_MB" || { echo "lower SECONDS_PER_SPEAKER" >&2; exit 1; }
