# Sourced by the pack_*.sh scripts:  xz_pack DIR OUT LIMIT_MB [NOTE]
# Packs the contents of DIR into OUT (.tar.xz, written atomically), prints its size, and fails when it is over
# LIMIT_MB (a GPU call carries at most 64 MiB with the working tree).
xz_pack() {
  local dir=$1 out=$2 limit_mb=$3 note=${4:-}
  mkdir -p "$(dirname "$out")"
  tar cf - -C "$dir" . | xz -9 -T1 > "$out.tmp"
  mv "$out.tmp" "$out"
  local size
  size=$(stat -c %s "$out")
  echo "$out: $((size / 1000000)).$(((size % 1000000) / 100000)) MB${note:+ ($note)}"
  if [ "$size" -gt $((limit_mb * 1000000)) ]; then
    echo "over LIMIT_MB=$limit_mb" >&2
    return 1
  fi
}
