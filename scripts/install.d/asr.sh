#!/usr/bin/env bash
# The ASR family's long-form benchmark data (benchmarks/longform.py), all Debian packages; each part skips with a
# one-line note if it cannot install (no root, no apt-get). Licences are recorded in the benchmark's results.
# - speech: pocketsphinx-testdata (LibriVox, BSD-2), asterisk-core-sounds-{en,fr,it,ru}(-wav) (CC-BY-SA-3.0, with
#   the prompts' texts), asterisk-prompt-it-menardi-wav (CC-BY-SA-3.0), festvox-ru (BSD-like),
#   fillets-ng-data-cs and fillets-ng-data-nl (GPL-2+).
# - non-speech: sonic-pi-samples (real drum and instrument recordings, CC0), fluid-soundfont-gm (MIT) rendered by
#   libfluidsynth3 (LGPL-2.1).
set -uo pipefail
PKGS="pocketsphinx-testdata asterisk-core-sounds-en-wav asterisk-core-sounds-en asterisk-core-sounds-fr-wav
asterisk-core-sounds-fr asterisk-core-sounds-it-wav asterisk-core-sounds-it asterisk-core-sounds-ru-wav
asterisk-core-sounds-ru asterisk-prompt-it-menardi-wav festvox-ru fillets-ng-data-cs fillets-ng-data-nl sonic-pi-samples
fluid-soundfont-gm libfluidsynth3"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  { apt-get install -y -q $missing || { apt-get update -q && apt-get install -y -q $missing; }; } >/dev/null 2>&1 \
    || echo "note: could not install$missing; benchmarks/longform.py and tests/asr/test_asr_longform.py skip parts"
else
  echo "note: benchmarks/longform.py needs root for apt-get install$missing; its tests skip"
fi
exit 0
