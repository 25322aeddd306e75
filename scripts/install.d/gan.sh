#!/usr/bin/env bash
# The GAN family's optional data and packages (each part skips with a one-line note if it cannot install).
# - dataset-fashion-mnist (Debian, MIT, Zalando SE): 70,000 28x28 clothing photos in 10 classes, as idx.gz in
#   /usr/share/datasets/fashion-mnist/; the fashion-gan preset trains on it (src/genlab/data/fashion_mnist.py).
# - imageio-ffmpeg (PyPI, BSD-2; ships a static ffmpeg): latent walks as MP4 (GIF needs only Pillow).
set -uo pipefail
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get install -y -q dataset-fashion-mnist || { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; }; } \
      >/dev/null 2>&1 || echo "note: dataset-fashion-mnist not installed; Fashion-MNIST tests will be skipped"
  else
    echo "note: dataset-fashion-mnist needs root (apt-get install dataset-fashion-mnist); Fashion-MNIST tests will be skipped"
  fi
fi
python -m pip install -q imageio-ffmpeg >/dev/null 2>&1 || echo "note: imageio-ffmpeg not installed; walks are written as GIF only"
exit 0
