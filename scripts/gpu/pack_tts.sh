#!/bin/bash
# Pack what a GPU machine (no espeak, no dataset_build, no soxr, no internet; at most 64 MiB in) needs to rebuild the
# TTS corpus of recipes/tts_speech.py itself, made here after `python recipes/tts_speech.py data`:
#
#     bash scripts/gpu/pack_tts.sh [OUT.tar.xz]      # default .gpu/tts-data.tar.xz
#
# The corpus (2,000 + 100 espeak utterances, 3.4 h at 22,050 Hz with float16 log-mels) is ~700 MB, far over the cap,
# but espeak renders it in minutes on one core (135 s for the full build here, on a loaded 2-core machine), so the
# machine renders it from:
#   - the espeakng-loader wheel (libespeak-ng and its data, pure ctypes: unzipped, never pip-installed) for
#     CPython 3 on manylinux x86_64, at the version installed here, fetched with `pip download`;
#   - tts-plan.json: the corpus's plan (genlab.tts.data.plan: each utterance's text, voice, rate and pitch; the texts
#     come from dataset_build, which the machine lacks) and the checksums of the corpus built here, which
#     train_tts.sh compares with what the machine renders.
# Measured here (2026-12-04): 9.5 MB (the wheel is 10.1 MB, the plan ~0.1 MB after xz). The archive must stay under
# LIMIT_MB (default 12): the speaker stage also carries the codec's part of the real speech (pack_codec.sh's
# .gpu/cache-codec.tar.xz, 42.9 MB) and the working tree (2.5 MB of tracked files with src/genlab/assets moved
# aside), 54.9 MB of the 64 MiB (67.1 MB).
set -eu
cd "$(dirname "$0")/../.."
OUT=${1:-.gpu/tts-data.tar.xz}
SEED=${SEED:-0}
TRAIN_UTTERANCES=${TRAIN_UTTERANCES:-2000}  # the recipe's corpus (a smoke test packs a smaller one it built)
TEST_UTTERANCES=${TEST_UTTERANCES:-100}
LIMIT_MB=${LIMIT_MB:-12}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
python - "$STAGE/tts-plan.json" "$SEED" "$TRAIN_UTTERANCES" "$TEST_UTTERANCES" <<'PY'
import json
import sys

from genlab.tts.data import TTSCorpusSize, load, plan

out, seed = sys.argv[1], int(sys.argv[2])
size = TTSCorpusSize(int(sys.argv[3]), int(sys.argv[4]))
corpus = load(size, seed)  # the corpus built here by `python recipes/tts_speech.py data`
planned = plan(size, seed)
built = [{k: u[k] for k in planned[0]} for u in corpus.manifest["utterances"]]
rendered = [u for u in planned if u["id"] in {b["id"] for b in built}]  # espeak may drop an empty utterance
assert built == rendered, "the corpus here was not built from this plan: rebuild it (genlab data tts --rebuild)"
json.dump({"size": {"train": size.train, "test": size.test}, "seed": seed, "plan": planned,
           "reference": {"files": corpus.manifest["files"], "vocabulary": corpus.vocabulary,
                         "utterances": len(corpus.manifest["utterances"])}}, open(out, "w"))
print(f"plan: {len(planned)} utterances, {len(built)} in the corpus built here")
PY
version=$(python -c 'from importlib.metadata import version; print(version("espeakng-loader"))')
pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
  "espeakng-loader==$version" -d "$STAGE"
. scripts/gpu/xz_pack.sh
xz_pack "$STAGE" "$OUT" "$LIMIT_MB" "espeakng-loader $version"
