#!/usr/bin/env bash
# Benchmark (not a test) of the dashboard on a host with N containers (default 200),
# inside a private world:
#   render   take-in and draw time per frame from a snapshot of that host
#            (ctnet-tui/examples/render_bench.rs, TestBackend, 80x24 and 160x48);
#   idle     CPU of `ctnet-diag tui` (its firewall tools included) left alone in a
#            160x48 tmux for IDLE_SECS (30);
#   memory   RSS of the dashboard every minute for MEM_SECS (600) with 4 captures
#            running on a lab whose containers ping each other 20 times a second.
#
#   bench/tui.sh [render|idle|memory|all] [N]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/target/release/ctnet-diag"
what=${1:-all}
n=${2:-200}
if [ "${CTNET_BENCH_IN_WORLD:-}" != 1 ]; then
  (cd "$here" && cargo build --release -q -p ctnet-diag && cargo build --release -q -p ctnet-tui --example render_bench)
  command -v tmux >/dev/null || { echo "bench/tui.sh needs tmux" >&2; exit 3; }
  case "$what" in
    render)
      exec env CTNET_BENCH_IN_WORLD=1 "$bin" world -- bash "$0" render "$n" ;;
    idle|memory)
      # The dashboard needs a terminal: tmux outside, the world inside it.
      sock="ctnet-bench-$$"; out=$(mktemp -d)
      trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$out"' EXIT
      tmux -L "$sock" new-session -d -s b -x 160 -y 48 \
        "env CTNET_BENCH_IN_WORLD=1 OUT=$out $bin world -- bash $0 $what-inner $n; sleep 5"
      # Wait for the dashboard's pid, then for its first frame.
      for _ in $(seq 1 600); do [ -s "$out/pid" ] && break; sleep 0.1; done
      pid=$(cat "$out/pid")
      for _ in $(seq 1 600); do tmux -L "$sock" capture-pane -p -t b | grep -q ' br · ' && break; sleep 0.1; done
      ticks=$(getconf CLK_TCK)
      cpu() { awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat"; }
      rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
      if [ "$what" = idle ]; then
        secs=${IDLE_SECS:-30}
        sleep 5
        c0=$(cpu); t0=$(date +%s%N); sleep "$secs"; c1=$(cpu); t1=$(date +%s%N)
        tmux -L "$sock" capture-pane -p -t b | tail -1
        awk -v c="$((c1 - c0))" -v hz="$ticks" -v ns="$((t1 - t0))" -v n="$n" \
          'BEGIN { printf "idle CPU, %d containers: %.2f %% of one core over %.0f s\n", n, 100 * c / hz / (ns / 1e9), ns / 1e9 }'
      else
        secs=${MEM_SECS:-600}
        # Capture on four ports: select each (j) and add it (p).
        for k in j p j p j p j p; do tmux -L "$sock" send-keys -t b "$k"; sleep 0.3; done
        sleep 2
        tmux -L "$sock" capture-pane -p -t b | grep 'Capture' | head -1
        c0=$(cpu)
        echo "t(s) rss(KiB)"
        for t in $(seq 0 60 "$secs"); do
          [ "$t" = 0 ] || sleep 60
          echo "$t $(rss)"
        done
        c1=$(cpu)
        tmux -L "$sock" capture-pane -p -t b | grep 'Capture' | head -1
        awk -v c="$((c1 - c0))" -v hz="$ticks" -v s="$secs" \
          'BEGIN { printf "CPU with 4 captures: %.1f %% of one core\n", 100 * c / hz / s }'
      fi
      tmux -L "$sock" send-keys -t b q
      # Let the world finish: the pings stopped and the lab removed.
      for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
      sleep 2
      exit 0 ;;
    all)
      "$0" render "$n"; "$0" idle "$n"; "$0" memory 4; exit 0 ;;
    *) echo "usage: bench/tui.sh [render|idle|memory|all] [N]" >&2; exit 2 ;;
  esac
fi
# Inside the world from here on.
case "$what" in
  render)
    "$bin" lab up --name t --containers "$n" --subnet 10.88.0.0/16 --nat >/dev/null
    for i in 2 3 4; do ip netns exec t-c1 ping -c1 -W1 "10.88.0.$i" >/dev/null || true; done
    snap=$(mktemp)
    "$bin" snapshot -o "$snap" 2>/dev/null
    "$here/target/release/examples/render_bench" "$snap" "${FRAMES:-300}"
    rm -f "$snap"
    "$bin" lab down --name t >/dev/null ;;
  idle-inner|memory-inner)
    "$bin" lab up --name t --containers "$n" --subnet 10.88.0.0/16 --nat >/dev/null
    pings=()
    if [ "$what" = memory-inner ]; then
      # Each container pings the next, 20 times a second.
      for i in $(seq 1 "$n"); do
        j=$(( i % n + 1 ))
        ip netns exec "t-c$i" ping -q -i 0.05 "10.88.0.$((j + 1))" >/dev/null 2>&1 &
        pings+=($!)
      done
    fi
    # The dashboard in the foreground (it needs the terminal), its pid for the meter.
    sh -c 'echo $$ > "$1"; exec "$2" tui' sh "$OUT/pid" "$bin" || true
    [ ${#pings[@]} -eq 0 ] || kill "${pings[@]}" 2>/dev/null || true
    "$bin" lab down --name t >/dev/null ;;
esac
