#!/usr/bin/env bash
# Video diffusion's real footage (genlab.video.data.REAL_CLIPS): OpenCV's vtest.avi (opencv-doc, Apache-2.0 AND
# BSD-3-Clause) and imageio's cockatoo.mp4 (python3-imageio, BSD-2-Clause). Optional: without them the real-clip
# tests skip. Needs root and apt; skips with a note otherwise. PyAV (pip `av`) decodes them.
set -u
if [ -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] \
  && [ -f /usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: video footage (opencv-doc, python3-imageio) needs root and apt; real-clip tests will be skipped"
  exit 0
fi
{ apt-get install -y -q --no-install-recommends opencv-doc python3-imageio \
  || { apt-get update -q && apt-get install -y -q --no-install-recommends opencv-doc python3-imageio; }; } \
  >/dev/null 2>&1 || echo "note: opencv-doc / python3-imageio not installed; real-clip tests will be skipped"
exit 0
