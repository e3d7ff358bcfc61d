#!/usr/bin/env bash
# Install what ctnet needs on a Debian machine, only what is missing.
# Sourced by scripts/run and scripts/test; safe to run on its own.
set -euo pipefail

# Debian packages: build (pkg-config, libpcap-dev for capture), and the real peers the
# tests compare against (iproute2, iptables, nftables, tcpdump, ping), tmux for the
# terminal tests, util-linux for setpriv/unshare.
CTNET_DEBS=(
  build-essential pkg-config libpcap-dev
  iproute2 iptables nftables tcpdump iputils-ping
  tmux util-linux procps
)

ctnet_install_debs() {
  local missing=()
  for p in "${CTNET_DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "ctnet: installing Debian packages: ${missing[*]}" >&2
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
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
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ctnet_install_debs
  ctnet_check_rust
fi
