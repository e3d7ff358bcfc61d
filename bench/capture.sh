#!/usr/bin/env bash
# Benchmark (not a test): capture of a UDP flood between two lab netns, ctnet-diag
# against tcpdump in the same run on the same traffic (the flood crosses the host veth
# v1; two sendmmsg senders, ctnet-core/examples/udpflood.rs).
#
#   (1) tcpdump -w /dev/null             vs  ctnet-diag capture v1 -w /dev/null
#   (2) TZ=UTC tcpdump -nn -e > /dev/null vs  ctnet-diag capture v1 --json > /dev/null
#
# For each: packets captured, kernel drops, CPU seconds (user+sys of the capturing
# process) and CPU per packet; for ctnet's JSON run, RSS at the start and the end.
#
#   bench/capture.sh [SECONDS]     default 10
set -euo pipefail
SECS=${1:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
profile=${CTNET_PROFILE:-release}
bin="$here/target/$profile/ctnet-diag"
flood="$here/target/$profile/examples/udpflood"
if [ "${CTNET_BENCH_IN_WORLD:-}" != 1 ]; then
  (cd "$here" && cargo build --profile "$profile" -q -p ctnet-diag && cargo build --profile "$profile" -q -p ctnet-core --example udpflood)
  exec env CTNET_BENCH_IN_WORLD=1 "$bin" world -- bash "$0" "$@"
fi

ip link add name br0 type bridge && ip addr add 10.60.0.1/24 dev br0 && ip link set br0 up
for i in 1 2; do
  ip netns add "c$i"
  ip link add name "v$i" type veth peer name eth0 netns "c$i"
  ip link set "v$i" master br0 && ip link set "v$i" up
  ip -n "c$i" link set lo up && ip -n "c$i" link set eth0 up
  ip -n "c$i" addr add "10.60.0.$((i + 1))/24" dev eth0
done
ip netns exec c1 ping -c1 -W2 10.60.0.3 >/dev/null

cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
rss_of() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# run LABEL CMD...: start the capture, flood, stop it with SIGINT; print a result row.
run() {
  local label=$1; shift
  local err; err=$(mktemp)
  "$@" 2>"$err" >/dev/null &
  local pid=$!
  sleep 1
  local rss0; rss0=$(rss_of "$pid")
  local o1 o2; o1=$(mktemp); o2=$(mktemp)
  ip netns exec c1 "$flood" 10.60.0.3 9 "$SECS" >"$o1" &
  local p1=$!
  ip netns exec c1 "$flood" 10.60.0.3 9 "$SECS" >"$o2" &
  local p2=$!
  wait "$p1" "$p2"
  local s1 s2; s1=$(cat "$o1"); s2=$(cat "$o2"); rm -f "$o1" "$o2"
  sleep 0.5
  local cpu; cpu=$(cpu_of "$pid")
  local rss1; rss1=$(rss_of "$pid")
  kill -INT "$pid"; wait "$pid" || true
  local sent=$(( ${s1:-0} + ${s2:-0} ))
  local cap drop
  cap=$( (grep -Eo '[0-9]+ packets captured' "$err" || true) | awk '{s += $1} END {print s + 0}')
  drop=$( (grep -Eo '[0-9]+ (packets )?dropped by kernel' "$err" || true) | awk '{s += $1} END {print s + 0}')
  awk -v l="$label" -v c="$cap" -v d="$drop" -v cpu="$cpu" -v s="$SECS" -v r0="$rss0" -v r1="$rss1" -v sent="$sent" 'BEGIN {
    pct = (c + d) > 0 ? 100 * d / (c + d) : 0
    printf "%-36s %9d %10d %9d %6.2f%% %6.2f %6.1f%% %6.0f ns/pkt  rss %s->%s kB\n", l, sent, c, d, pct, cpu, 100 * cpu / s, (c > 0 ? 1e9 * cpu / c : 0), r0, r1 }'
  rm -f "$err"
}

printf '%-36s %9s %10s %9s %7s %6s %7s %13s\n' "capture ($SECS s flood, 2 senders)" sent captured dropped drop% cpu_s cpu% per_packet
# tcpdump gets the same 4 MiB kernel buffer as ctnet-diag (-B 4096).
# -Z root: tcpdump would otherwise chown its output (here /dev/null) to its own user.
run "tcpdump -w /dev/null" tcpdump -Z root -B 4096 -i v1 -n -w /dev/null
run "ctnet-diag capture -w /dev/null" "$bin" capture v1 -w /dev/null
run "TZ=UTC tcpdump -nn -e > /dev/null" env TZ=UTC tcpdump -Z root -B 4096 -i v1 -nn -e
run "ctnet-diag capture --json > /dev/null" "$bin" capture v1 --json
run "ctnet-diag capture (text) > /dev/null" "$bin" capture v1
