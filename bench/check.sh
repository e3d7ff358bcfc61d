#!/usr/bin/env bash
# Benchmark (not a test): `ctnet-diag check s-c1 --peer s-c2` (no --probe) on a host
# with N containers (a NAT lab of N netns, c1 and c2 pinged both ways) against
# bench/check_baseline.sh, the article's commands for the same pair, same world, same
# run. Median of ROUNDS runs each. Prints both times and the ratio.
#
#   bench/check.sh [N...]        default: 200
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
profile=${CTNET_PROFILE:-release}
bin="$here/target/$profile/ctnet-diag"
if [ "${CTNET_BENCH_IN_WORLD:-}" != 1 ]; then
  (cd "$here" && cargo build --profile "$profile" -q -p ctnet-diag)
  exec env CTNET_BENCH_IN_WORLD=1 "$bin" world -- bash "$0" "$@"
fi
ROUNDS=${ROUNDS:-11}
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(200)
# Times are microseconds from bash itself (EPOCHREALTIME): `$(date)` would add a
# fork and an exec to each measurement.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-6s %12s %14s %8s %14s %8s\n' N "ctnet (ms)" "script (ms)" ratio "pair only (ms)" ratio
for n in "${sizes[@]}"; do
  "$bin" lab up --name s --containers "$n" --subnet 10.88.0.0/16 --nat >/dev/null
  ip netns exec s-c1 ping -c1 -W1 10.88.0.3 >/dev/null
  ip netns exec s-c2 ping -c1 -W1 10.88.0.2 >/dev/null
  sleep "${SETTLE:-5}"
  # Both must see the same healthy pair before timing.
  "$bin" check s-c1 --peer s-c2 >/dev/null
  sh "$here/bench/check_baseline.sh" s-c1 s-c2 s-br >/dev/null
  c=(); p=(); q=()
  for r in $(seq 1 "$ROUNDS"); do
    t0=${EPOCHREALTIME/./}; "$bin" check s-c1 --peer s-c2 >/dev/null; t1=${EPOCHREALTIME/./}
    sh "$here/bench/check_baseline.sh" s-c1 s-c2 s-br all >/dev/null; t2=${EPOCHREALTIME/./}
    sh "$here/bench/check_baseline.sh" s-c1 s-c2 s-br pair >/dev/null; t3=${EPOCHREALTIME/./}
    c+=($(( t1 - t0 ))); p+=($(( t2 - t1 ))); q+=($(( t3 - t2 )))
  done
  cm=$(printf '%s\n' "${c[@]}" | median); pm=$(printf '%s\n' "${p[@]}" | median)
  qm=$(printf '%s\n' "${q[@]}" | median)
  awk -v n="$n" -v c="$cm" -v p="$pm" -v q="$qm" \
    'BEGIN { printf "%-6s %12.1f %14.1f %7.1fx %14.1f %7.1fx\n", n, c/1000, p/1000, p/c, q/1000, q/c }'
  "$bin" lab down --name s >/dev/null
done
