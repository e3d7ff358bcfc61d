#!/usr/bin/env bash
# Benchmark (not a test): what the kernel trace adds to a probe. `ctnet-diag check
# s-c1 --peer s-c2 --probe` with the netfilter trace and the kernel's drop reasons
# against the same probe with --no-kernel-trace, alternately, on a NAT lab of N netns
# in a world (as root, so tracefs is usable). Median of ROUNDS runs each; prints both
# and the difference. Run as root.
#
#   bench/probe.sh [N...]        default: 2 200
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/target/release/ctnet-diag"
if [ "${CTNET_BENCH_IN_WORLD:-}" != 1 ]; then
  (cd "$here" && cargo build --release -q -p ctnet-diag)
  exec env CTNET_BENCH_IN_WORLD=1 "$bin" world -- bash "$0" "$@"
fi
ROUNDS=${ROUNDS:-7}
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(2 200)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-6s %16s %18s %12s\n' N "traced (ms)" "not traced (ms)" "added (ms)"
for n in "${sizes[@]}"; do
  "$bin" lab up --name s --containers "$n" --subnet 10.88.0.0/16 --nat >/dev/null
  # The trace must really run, or the comparison means nothing.
  "$bin" check s-c1 --peer s-c2 --probe --json | grep -q '"kernel drop reasons: not read' \
    && { echo "the drop reasons cannot be read here (tracefs): run as root" >&2; exit 1; }
  a=(); b=()
  for r in $(seq 1 "$ROUNDS"); do
    t0=${EPOCHREALTIME/./}; "$bin" check s-c1 --peer s-c2 --probe >/dev/null; t1=${EPOCHREALTIME/./}
    "$bin" check s-c1 --peer s-c2 --probe --no-kernel-trace >/dev/null; t2=${EPOCHREALTIME/./}
    a+=($(( t1 - t0 ))); b+=($(( t2 - t1 )))
  done
  am=$(printf '%s\n' "${a[@]}" | median); bm=$(printf '%s\n' "${b[@]}" | median)
  awk -v n="$n" -v a="$am" -v b="$bm" \
    'BEGIN { printf "%-6s %16.1f %18.1f %12.1f\n", n, a/1000, b/1000, (a-b)/1000 }'
  "$bin" lab down --name s >/dev/null
done
