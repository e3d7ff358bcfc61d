#!/bin/sh
# The article's runbook for a pair of containers, by hand: what `ctnet-diag check A
# --peer B` reads, gathered with the classic commands (bench/check.sh times it).
#   bench/check_baseline.sh NETNS_A NETNS_B BRIDGE [pair|all]
# `pair` (the first version of this script) reads the two containers, the bridge and
# the iptables chains; `all` (default) also gathers the rest of what the check reads:
# every container's addresses, for duplicates on the bridge, and the native nft
# ruleset (bridge family, non-iptables tables).
a=$1 b=$2 br=$3 scope=${4:-all}
for c in "$a" "$b"; do
  ip netns exec "$c" ip addr show eth0
  ip netns exec "$c" ip route
  ip netns exec "$c" ip neigh
  ip netns exec "$c" ip -s link show eth0
  # Which host veth is this container's? Its peer_ifindex, then the host's link list.
  idx=$(ip netns exec "$c" ethtool -S eth0 | awk '/peer_ifindex/ {print $2}')
  veth=$(ip -o link | awk -F': ' -v i="$idx" '$1 == i {print $2}' | cut -d@ -f1)
  ip -s link show "$veth"
  ethtool -S "$veth"
  bridge link show dev "$veth"
done
ip addr show "$br"
ip -d link show "$br"
bridge fdb show br "$br"
sysctl net.ipv4.ip_forward
sysctl net.bridge.bridge-nf-call-iptables 2>/dev/null || true
iptables -L FORWARD -n -v
iptables -t nat -L POSTROUTING -n -v
if [ "$scope" = all ]; then
  nft list ruleset 2>/dev/null
  for ns in $(ip netns list | awk '{print $1}'); do
    ip -n "$ns" -4 -o addr show
  done
fi
