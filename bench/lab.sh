#!/usr/bin/env bash
# Benchmark (not a test): `ctnet-diag lab up/down` of N containers against the same lab
# built by (a) a plain script with one `ip` command per step, as in the article, and
# (b) the same steps fed to `ip -batch` (one process for every host-side step, plus one
# `ip -n NS -batch` per container, since batch lines cannot carry `-n`).
# Everything runs inside a fresh rootless world; nothing on the host is touched.
#
#   bench/lab.sh [N] [ROUNDS]      default N=200, ROUNDS=3; prints the median of each
set -euo pipefail
N=${1:-200}
ROUNDS=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/target/release/ctnet-diag"
if [ "${CTNET_BENCH_IN_WORLD:-}" != 1 ]; then
  (cd "$here" && cargo build --release -q -p ctnet-diag)
  exec env CTNET_BENCH_IN_WORLD=1 "$bin" world -- bash "$0" "$N" "$ROUNDS"
fi

ms() { echo $(( ($2 - $1) / 1000000 )); }
now() { date +%s%N; }
ip_of() { local i=$(( $1 + 1 )); echo "10.88.$(( i / 256 )).$(( i % 256 ))"; }

script_up() {
  ip link add name s-br type bridge
  ip addr add 10.88.0.1/16 dev s-br
  ip link set s-br up
  for i in $(seq 1 "$N"); do
    ip netns add "s-c$i"
    ip link add name "s-v$i" type veth peer name eth0 netns "s-c$i"
    ip link set "s-v$i" master s-br
    ip link set "s-v$i" up
    ip -n "s-c$i" link set lo up
    ip -n "s-c$i" link set eth0 up
    ip -n "s-c$i" addr add "$(ip_of "$i")/16" dev eth0
    ip -n "s-c$i" route add default via 10.88.0.1
  done
}
script_down() {
  for i in $(seq 1 "$N"); do
    ip link del "s-v$i"
    ip netns del "s-c$i"
  done
  ip link del s-br
}
batch_up() {
  {
    echo "link add name s-br type bridge"
    echo "addr add 10.88.0.1/16 dev s-br"
    echo "link set s-br up"
    for i in $(seq 1 "$N"); do
      echo "netns add s-c$i"
      echo "link add name s-v$i type veth peer name eth0 netns s-c$i"
      echo "link set s-v$i master s-br"
      echo "link set s-v$i up"
    done
  } | ip -batch -
  for i in $(seq 1 "$N"); do
    printf 'link set lo up\nlink set eth0 up\naddr add %s/16 dev eth0\nroute add default via 10.88.0.1\n' \
      "$(ip_of "$i")" | ip -n "s-c$i" -batch -
  done
}
batch_down() {
  {
    for i in $(seq 1 "$N"); do
      echo "link del s-v$i"
      echo "netns del s-c$i"
    done
    echo "link del s-br"
  } | ip -batch -
}
check_clean() {
  if [ -n "$(ip -br link | grep -v '^lo ')" ] || [ -n "$(ip netns)" ]; then
    echo "not clean after $1:" >&2; ip -br link >&2; exit 1
  fi
}
check_ping() {
  ip netns exec "$1" ping -c1 -W2 "$2" >/dev/null || { echo "$3: no ping $1 -> $2" >&2; exit 1; }
}

declare -A up down
for r in $(seq 1 "$ROUNDS"); do
  t0=$(now); "$bin" lab up --name b --containers "$N" --subnet 10.88.0.0/16 >/dev/null; t1=$(now)
  check_ping b-c1 "$(ip_of "$N")" ctnet
  t2=$(now); "$bin" lab down --name b >/dev/null; t3=$(now); check_clean ctnet
  up[ctnet]+="$(ms "$t0" "$t1") "; down[ctnet]+="$(ms "$t2" "$t3") "

  t0=$(now); script_up; t1=$(now); check_ping s-c1 "$(ip_of "$N")" script
  t2=$(now); script_down; t3=$(now); check_clean script
  up[script]+="$(ms "$t0" "$t1") "; down[script]+="$(ms "$t2" "$t3") "

  t0=$(now); batch_up; t1=$(now); check_ping s-c1 "$(ip_of "$N")" batch
  t2=$(now); batch_down; t3=$(now); check_clean batch
  up[batch]+="$(ms "$t0" "$t1") "; down[batch]+="$(ms "$t2" "$t3") "
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "lab of $N containers, median of $ROUNDS rounds (ms); per container in brackets"
printf '%-28s %8s %8s %8s\n' "" up down total
for k in ctnet script batch; do
  u=$(echo "${up[$k]}" | median); d=$(echo "${down[$k]}" | median)
  label=$k; [ "$k" = script ] && label="(a) ip per step"; [ "$k" = batch ] && label="(b) ip -batch"; [ "$k" = ctnet ] && label="ctnet-diag lab"
  printf '%-28s %8s %8s %8s   [%s / %s ms]\n' "$label" "$u" "$d" $((u + d)) \
    "$(awk -v x="$u" -v n="$N" 'BEGIN{printf "%.2f", x/n}')" "$(awk -v x="$d" -v n="$N" 'BEGIN{printf "%.2f", x/n}')"
done
cu=$(echo "${up[ctnet]}" | median); cd_=$(echo "${down[ctnet]}" | median)
su=$(echo "${up[script]}" | median); sd=$(echo "${down[script]}" | median)
bu=$(echo "${up[batch]}" | median); bd=$(echo "${down[batch]}" | median)
awk -v cu="$cu" -v cd="$cd_" -v su="$su" -v sd="$sd" -v bu="$bu" -v bd="$bd" 'BEGIN {
  printf "ratios: vs (a) up %.1fx down %.1fx; vs (b) up %.2fx down %.2fx (>1 = ctnet faster)\n", su/cu, sd/cd, bu/cu, bd/cd }'
