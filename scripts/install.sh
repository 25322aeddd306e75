#!/usr/bin/env bash
# Install genlab with everything its tests and tour use, keeping torch pinned to the local CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_CONSTRAINT="$PWD/.ci/constraints.txt"  # no dependency may pull a different (CUDA) torch
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[whisper,speech,test]"
# openai-whisper is only a test oracle; --no-deps skips its 1 GB triton (its real deps are in the test extra).
python -m pip install -q --no-deps openai-whisper
# Real recorded speech (5 LibriVox utterances with transcripts) for the ASR tests and benchmarks.
if [ ! -d /usr/share/pocketsphinx/test/data/librivox ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get install -y -q pocketsphinx-testdata || { apt-get update -q && apt-get install -y -q pocketsphinx-testdata; }; } \
    >/dev/null 2>&1 || echo "note: pocketsphinx-testdata not installed; LibriVox tests will be skipped"
fi
# Each family's optional data and packages (Debian data packages need root; each script skips cleanly without it).
for part in scripts/install.d/*.sh; do
  [ -e "$part" ] && bash "$part"
done
