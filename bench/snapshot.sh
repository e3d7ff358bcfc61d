#!/usr/bin/env bash
# Benchmark (not a test): a full `ctnet-diag snapshot` of a host with N containers
# (a NAT lab of N netns, pinged once so ARP/FDB hold entries) against
# bench/snapshot_baseline.py (ip/bridge/iptables-save/nft/ethtool per netns and veth,
# parallel subprocesses), same world, same run. Median of ROUNDS runs each.
#
#   bench/snapshot.sh [N...]        default: 50 100 200
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
profile=${CTNET_PROFILE:-release}
bin="$here/target/$profile/ctnet-diag"
if [ "${CTNET_BENCH_IN_WORLD:-}" != 1 ]; then
  (cd "$here" && cargo build --profile "$profile" -q -p ctnet-diag)
  exec env CTNET_BENCH_IN_WORLD=1 "$bin" world -- bash "$0" "$@"
fi
ROUNDS=${ROUNDS:-7}
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(50 100 200)
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-6s %12s %12s %8s\n' N "ctnet (ms)" "script (ms)" ratio
for n in "${sizes[@]}"; do
  "$bin" lab up --name s --containers "$n" --subnet 10.88.0.0/16 --nat >/dev/null
  for i in 2 3; do ip netns exec s-c1 ping -c1 -W1 "10.88.0.$i" >/dev/null || true; done
  # The kernel tears destroyed netns down in the background for seconds after a large
  # `lab down`; let it finish so it does not slow the next size.
  sleep "${SETTLE:-5}"
  c=(); p=()
  for r in $(seq 1 "$ROUNDS"); do
    t0=$(now); "$bin" snapshot -o /tmp/ctnet-bench.json 2>/dev/null; t1=$(now)
    python3 "$here/bench/snapshot_baseline.py" > /tmp/ctnet-bench-base.json; t2=$(now)
    c+=($(( (t1 - t0) / 1000 ))); p+=($(( (t2 - t1) / 1000 )))
  done
  cm=$(printf '%s\n' "${c[@]}" | median); pm=$(printf '%s\n' "${p[@]}" | median)
  awk -v n="$n" -v c="$cm" -v p="$pm" 'BEGIN { printf "%-6s %12.1f %12.1f %7.1fx\n", n, c/1000, p/1000, p/c }'
  "$bin" lab down --name s >/dev/null
done
rm -f /tmp/ctnet-bench.json /tmp/ctnet-bench-base.json
