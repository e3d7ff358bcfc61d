#!/usr/bin/env bash
# Benchmark (not a test): `ctnet-diag trace s-c1 s-c2 --tcp 80` on a host with N
# containers (a NAT lab of N netns) and RULES extra iptables FORWARD rules that each
# test addresses, a port and a state and miss the flow (so every walk visits them all):
# live, and from a snapshot file of the same host. Median of ROUNDS runs each; then the
# evaluators alone (cargo bench --bench eval): rule matches per second.
#
#   bench/trace.sh [N] [RULES]        default: 200 2000
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/target/release/ctnet-diag"
if [ "${CTNET_BENCH_IN_WORLD:-}" != 1 ]; then
  (cd "$here" && cargo build --release -q -p ctnet-diag)
  env CTNET_BENCH_IN_WORLD=1 "$bin" world -- bash "$0" "$@"
  (cd "$here" && cargo bench -q -p ctnet-core --bench eval -- "${2:-2000}" 2>/dev/null)
  exit
fi
ROUNDS=${ROUNDS:-11}
n=${1:-200}; rules=${2:-2000}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
"$bin" lab up --name s --containers "$n" --subnet 10.88.0.0/16 --nat >/dev/null
{
  echo '*filter'
  for i in $(seq 0 $((rules - 1))); do
    echo "-A FORWARD -s 10.$((100 + i / 250)).$((i % 250)).0/24 -d 10.88.0.3/32 -p tcp -m tcp --dport $((1000 + i % 5000)) -m conntrack --ctstate NEW -j DROP"
  done
  echo COMMIT
} | iptables-restore --noflush
total=$(iptables-save | grep -c '^-A')
d=$(mktemp -d); trap 'rm -rf "$d"; "$bin" lab down --name s >/dev/null' EXIT
"$bin" snapshot -o "$d/s.json"
# Both must give the same answer before timing.
"$bin" trace s-c1 s-c2 --tcp 80 > "$d/live.txt" || true
"$bin" trace s-c1 s-c2 --tcp 80 --from "$d/s.json" > "$d/file.txt" || true
head -1 "$d/live.txt"
live=(); file=()
for r in $(seq 1 "$ROUNDS"); do
  t0=${EPOCHREALTIME/./}; "$bin" trace s-c1 s-c2 --tcp 80 >/dev/null || true; t1=${EPOCHREALTIME/./}
  "$bin" trace s-c1 s-c2 --tcp 80 --from "$d/s.json" >/dev/null || true; t2=${EPOCHREALTIME/./}
  live+=($(( t1 - t0 ))); file+=($(( t2 - t1 )))
done
lm=$(printf '%s\n' "${live[@]}" | median); fm=$(printf '%s\n' "${file[@]}" | median)
size=$(( $(stat -c %s "$d/s.json") / 1024 ))
awk -v n="$n" -v r="$total" -v l="$lm" -v f="$fm" -v k="$size" \
  'BEGIN { printf "%d containers, %d rules: trace live %.1f ms, from a %d KiB file %.1f ms\n", n, r, l/1000, k, f/1000 }'
