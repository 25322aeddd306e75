#!/bin/bash
# Build the datasets the GPU-trainable recipes read, here (where the data packages are installed), and pack them
# into one file for a GPU machine that has PyTorch but none of genlab's data packages:
#
#     bash scripts/gpu/pack_cache.sh [OUT.tar.xz]      # default .gpu/cache.tar.xz (about 21 MB)
#
# Each cache entry carries its manifest (licence, source, checksums); the loaders use a valid cache as it is when
# the package it was built from is missing (genlab/data/emoji.py, genlab/clip/data.py).
set -eu
cd "$(dirname "$0")/../.."
OUT=${1:-.gpu/cache.tar.xz}
STAGE=$(mktemp -d)
export GENLAB_CACHE=$STAGE/cache
python - <<'PY'
from genlab.clip.data import load_captioned
from genlab.data.emoji import load_emoji
from genlab.latent.data import load_captioned_emoji
from genlab.lm.data import split, token_stream
from genlab.video.data import load_bank
from genlab.video.task import PRESETS

load_captioned(32, "all")            # emoji-clip: OpenMoji + Tux Paint + openclipart at 32 px
load_emoji(32, "all")                # emoji32-gan, FID references
load_captioned_emoji(64, "all")      # emoji64-vae / emoji64-ldm
for name in ("sprites-video", "sprites-video-frames"):
    load_bank(PRESETS[name].model.data)  # the sprite bank of the video clips
for part in ("train", "heldout"):
    split(part), token_stream(part)  # text-lm: the KJV chapters and their BPE tokens
PY
mkdir -p "$(dirname "$OUT")"
tar cJf "$OUT" -C "$STAGE" cache
rm -rf "$STAGE"
ls -la "$OUT"
