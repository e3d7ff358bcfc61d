#!/usr/bin/env bash
# Benchmark (not a test): `snapshot -o FILE` of this build against another build
# (OLD=/path/to/ctnet-diag), interleaved round by round in one world with a NAT lab
# of N containers, plus this build's `snapshot > FILE` (the scan without the safe
# output file: new file, fsync, rename). Median of ROUNDS.
#
#   OLD=/path/to/old/ctnet-diag bench/snapshot-ab.sh [N]      default N: 200
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
new="$here/target/release/ctnet-diag"
: "${OLD:?set OLD to the ctnet-diag binary to compare with}"
if [ "${CTNET_BENCH_IN_WORLD:-}" != 1 ]; then
  (cd "$here" && cargo build --release -q -p ctnet-diag)
  exec env CTNET_BENCH_IN_WORLD=1 "$new" world -- bash "$0" "$@"
fi
n=${1:-200}
ROUNDS=${ROUNDS:-15}
d=$(mktemp -d)
"$new" lab up --name s --containers "$n" --subnet 10.88.0.0/16 --nat >/dev/null
sleep "${SETTLE:-3}"
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
o=(); w=(); s=()
for _ in $(seq 1 "$ROUNDS"); do
  t0=$(now); "$OLD" snapshot -o "$d/old.json" 2>/dev/null; t1=$(now)
  "$new" snapshot -o "$d/new.json" 2>/dev/null; t2=$(now)
  "$new" snapshot > "$d/stdout.json" 2>/dev/null; t3=$(now)
  o+=($(( (t1 - t0) / 1000 ))); w+=($(( (t2 - t1) / 1000 ))); s+=($(( (t3 - t2) / 1000 )))
done
printf 'N=%s, median of %s\n' "$n" "$ROUNDS"
printf 'old  -o          %8.1f ms\n' "$(printf '%s\n' "${o[@]}" | median | awk '{print $1/1000}')"
printf 'this -o          %8.1f ms\n' "$(printf '%s\n' "${w[@]}" | median | awk '{print $1/1000}')"
printf 'this > file      %8.1f ms\n' "$(printf '%s\n' "${s[@]}" | median | awk '{print $1/1000}')"
"$new" lab down --name s >/dev/null
rm -rf "$d"
