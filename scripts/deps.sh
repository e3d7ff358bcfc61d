#!/usr/bin/env bash
# Install what ctnet needs on a Debian machine, only what is missing.
# Sourced by scripts/run and scripts/test; safe to run on its own.
set -euo pipefail

# Debian packages: build (pkg-config, libpcap-dev for capture), the real peers the
# tests compare against (iproute2, iptables, nftables, tcpdump, ping, ethtool), tmux for
# the terminal tests, util-linux for setpriv/unshare/nsenter, ipset (rules that match
# sets), conntrack (the conntrack-full fault's entries read back by the kernel's own
# tool), python3 (the flow oracles' clients and servers), prometheus (a real server
# scrapes ctnet-exporter in its test; promtool lints its output), tshark (reads the
# bundle's pcapng back), libcap2-bin (setcap: a copy with file capabilities run as
# nobody), dpkg-dev (dpkg-deb builds the .deb), shellcheck (lints the shell scripts
# that ship), python3-yaml (the plugin's test reads the DaemonSet manifest), kubectl
# (Debian's kubernetes-client, when no kubectl is installed: the plugin's test has it
# evaluate the plugin's jsonpath queries on real Pod objects), and a real Docker engine
# with a busybox to import as its image (the tests start it in private namespaces; the
# package's own service is not needed), and a real rootful Podman with netavark and
# aardvark-dns (daemonless: the tests run it in private namespaces with a private /run),
# and containerd with the CNI plugins (`ctr run --cni`, on a private /etc/cni and
# /var/lib/cni).
CTNET_DEBS=(
  build-essential pkg-config libpcap-dev
  iproute2 iptables nftables tcpdump iputils-ping ethtool ipset conntrack python3
  tshark libcap2-bin dpkg-dev shellcheck python3-yaml
  tmux util-linux procps prometheus
  docker.io busybox-static
  podman netavark aardvark-dns containerd containernetworking-plugins uidmap slirp4netns
)

ctnet_install_debs() {
  local missing=() want=("${CTNET_DEBS[@]}")
  command -v kubectl >/dev/null 2>&1 || want+=(kubernetes-client)
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "ctnet: installing Debian packages: ${missing[*]}" >&2
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "ctnet: missing Debian packages (${missing[*]}) and no sudo: install them as root" >&2
      exit 3
    }
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ctnet_check_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || {
    echo "ctnet: cargo not found: install a Rust toolchain (rustup, Rust >= 1.85) and retry" >&2
    exit 3
  }
  # Debian's own cargo is too old for this workspace (edition 2024).
  local v
  v=$(cargo --version | awk '{print $2}')
  if [ "$(printf '%s\n1.85.0\n' "$v" | sort -V | head -1)" != "1.85.0" ]; then
    echo "ctnet: cargo $v is too old: Rust >= 1.85 is needed (rustup update stable)" >&2
    exit 3
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ctnet_install_debs
  ctnet_check_rust
fi
