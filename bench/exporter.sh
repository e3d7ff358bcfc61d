#!/usr/bin/env bash
# Benchmark (not a test): ctnet-exporter on a host with N containers (a NAT lab of N
# netns in a rootless world). Every scrape here runs a new scan (--min-interval 0):
# the scrape's latency (median and max of ROUNDS) and the CPU one scan costs, the
# exporter's own and its children's (iptables-save, nft, ipset) from /proc/PID/stat,
# then what a scrape every 15 s costs in share of one core.
#
#   bench/exporter.sh [N...]        default: 200
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
diag="$here/target/release/ctnet-diag"
exporter="$here/target/release/ctnet-exporter"
if [ "${CTNET_BENCH_IN_WORLD:-}" != 1 ]; then
  (cd "$here" && cargo build --release -q -p ctnet-diag -p ctnet-exporter)
  exec env CTNET_BENCH_IN_WORLD=1 "$diag" world -- bash "$0" "$@"
fi
ROUNDS=${ROUNDS:-21}
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(200)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# utime+stime+cutime+cstime of a pid, in clock ticks.
ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }
scrape() {
  exec 3<>/dev/tcp/127.0.0.1/9587
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  cat <&3 >"${1:-/dev/null}"
  exec 3<&-
}
ip link set lo up
hz=$(getconf CLK_TCK)
printf '%-6s %9s %14s %12s %12s %14s %10s\n' N series "latency (ms)" "max (ms)" "cpu/scan (ms)" "cpu @15s (%)" "rss (MiB)"
for n in "${sizes[@]}"; do
  "$diag" lab up --name s --containers "$n" --subnet 10.88.0.0/16 --nat >/dev/null
  ip netns exec s-c1 ping -c1 -W1 10.88.0.3 >/dev/null
  # shellcheck disable=SC2086
  "$exporter" --listen 127.0.0.1:9587 --min-interval 0 --no-daemon ${EXPORTER_ARGS:-} 2>/dev/null &
  pid=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/9587) 2>/dev/null && break; sleep 0.1; done
  scrape /tmp/ctnet-exporter-bench.txt   # warm
  series=$(grep -vc '^#' /tmp/ctnet-exporter-bench.txt)
  lat=()
  c0=$(ticks "$pid")
  for _ in $(seq 1 "$ROUNDS"); do
    t0=${EPOCHREALTIME/./}; scrape; t1=${EPOCHREALTIME/./}
    lat+=($(( t1 - t0 )))
  done
  c1=$(ticks "$pid")
  rss=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  lm=$(printf '%s\n' "${lat[@]}" | median); lx=$(printf '%s\n' "${lat[@]}" | sort -n | tail -1)
  awk -v n="$n" -v s="$series" -v lm="$lm" -v lx="$lx" -v c="$(( c1 - c0 ))" -v r="$ROUNDS" -v hz="$hz" -v rss="$rss" \
    'BEGIN { cpu = c / hz / r * 1000; printf "%-6s %9d %14.1f %12.1f %12.1f %14.3f %10.1f\n", n, s, lm/1000, lx/1000, cpu, cpu / 15000 * 100, rss/1024 }'
  "$diag" lab down --name s >/dev/null
done
