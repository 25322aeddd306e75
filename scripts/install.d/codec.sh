#!/usr/bin/env bash
# The codec family's optional data and packages (each part skips with a one-line note if it cannot install).
# - Real speech of many people, from Debian (src/genlab/codec/data.py; licences recorded in the corpus manifest):
#   Asterisk prompts in en/fr/it/ru (CC-BY-SA-3.0 / CC-BY-3.0) and Menardi's Italian ones (CC-BY-SA-3.0-IT),
#   festvox-ru (BSD-like), Fish Fillets NG Czech and Dutch voices (GPL-2, data only), KTuberling and KLettres voices
#   (GPL-2+), codec2's example recordings (LGPL-2.1); asterisk-core-sounds-it carries the Italian prompts' texts
#   (the codec's WER benchmark). --no-install-recommends: the games' data, not the games.
# - pesq (PyPI, MIT): wide-band PESQ in benchmarks/codec_eval.py.
set -uo pipefail
PACKAGES="asterisk-core-sounds-en-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav \
asterisk-core-sounds-ru-wav asterisk-core-sounds-it asterisk-prompt-it-menardi-wav festvox-ru fillets-ng-data-cs \
fillets-ng-data-nl ktuberling-data klettres-data codec2-examples"
missing=""
for p in $PACKAGES; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    { apt-get install -y -q --no-install-recommends $missing \
        || { apt-get update -q && apt-get install -y -q --no-install-recommends $missing; }; } >/dev/null 2>&1 \
      || echo "note: some codec speech packages did not install ($missing); the corpus uses what is there"
  else
    echo "note: the codec's speech packages need root (apt-get install$missing); codec data tests will be skipped"
  fi
fi
python -m pip install -q pesq >/dev/null 2>&1 || echo "note: pesq not installed; codec_eval.py will report no PESQ"
exit 0
