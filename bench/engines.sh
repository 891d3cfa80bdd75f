#!/usr/bin/env bash
# Side by side: a commit and a full read of the GURU corpus through the kernel
# and the fuse engine, in the same run, as root. For each run and engine:
# init guru-base, start, rsync guru-d1 onto the mounted tree with portage's
# options, commit (timed), stop; then start again and read every file twice
# with tar (first through fresh mounts: nothing decompressed yet, the image
# files themselves may be in the page cache; then warm).
# Usage: bench/engines.sh [CORPUS_DIR] (default ../shared/corpus); RUNS=3.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/corpus}
runs=${RUNS:-3}
for f in guru-base guru-d1; do
  [ -f "$corpus/$f.tar.xz" ] || { echo "skipped: no $corpus/$f.tar.xz" >&2; exit 0; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (the kernel engine)" >&2; exit 1; }
work=$(mktemp -d /var/tmp/st-engines-XXXXXX)
cfg=$work/squashtree.toml
sq() { node bin/squashtree.js --config "$cfg" --state-dir "$work/state" "$@"; }
cleanup() {
  sq --quiet stop t --on-stop discard >/dev/null 2>&1 || true
  findmnt -rn -o TARGET | grep "^$work" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/base" "$work/d1"
tar -xJf "$corpus/guru-base.tar.xz" -C "$work/base"
tar -xJf "$corpus/guru-d1.tar.xz" -C "$work/d1"
# read: wall seconds to read every file of the mounted tree.
read_all() { local s e; s=$(date +%s.%N); tar -C "$work/tree" -cf - . | cat >/dev/null; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }'; }
printf '%-7s %3s %10s %12s %12s %10s\n' engine run 'commit ms' 'read fresh s' 'read warm s' 'layer B'
for run in $(seq 1 "$runs"); do
  for engine in kernel fuse; do
    rm -rf "$work/tree" "$work/store" "$work/state" "$cfg"
    cp -a "$work/base" "$work/tree"
    sq --quiet init t --dir "$work/tree" --store "$work/store" --engine "$engine" --remove-source >/dev/null
    sq --quiet start t >/dev/null
    rsync --recursive --links --safe-links --perms --times --omit-dir-times --force --whole-file \
      --delete --exclude=/distfiles --exclude=/local --exclude=/packages --exclude=/.git \
      "$work/d1/" "$work/tree/"
    out=$(sq --json commit t)
    ms=$(node -e 'const r=JSON.parse(process.argv[1]).trees[0].result; console.log(Math.round(r.durationMs), r.layerBytes)' "$out")
    sq --quiet stop t >/dev/null
    sq --quiet start t >/dev/null
    fresh=$(read_all)
    warm=$(read_all)
    sq --quiet stop t >/dev/null
    printf '%-7s %3s %10s %12.2f %12.2f %10s\n' "$engine" "$run" "${ms% *}" "$fresh" "$warm" "${ms#* }"
  done
done
