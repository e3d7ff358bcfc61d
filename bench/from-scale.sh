#!/usr/bin/env bash
# Benchmark (not a test): `veths`, `show` and `snapshot` read from a synthetic snapshot
# file of a host with N containers (3 links each, made by bench/big-snapshot.py from a
# recorded lab), wall time and peak memory of each. With BASELINE=/path/to/ctnet-diag
# the same commands of that binary run beside, same files, same run.
#
#   bench/from-scale.sh [N...]        default: 7000 20000 70000
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/target/release/ctnet-diag"
(cd "$here" && cargo build --release -q -p ctnet-diag)
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(7000 20000 70000)
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
measure() { # label binary command file
  /usr/bin/time -f "%e %M" -o "$d/t" "$2" "$3" --from "$4" > /dev/null 2>&1 || true
  read -r s kb < "$d/t"
  printf '%-9s %-8s %-9s %8s s %8d MB\n' "$5" "$1" "$3" "$s" $((kb / 1024))
}
for n in "${sizes[@]}"; do
  python3 "$here/bench/big-snapshot.py" "$n" "$d/s.json"
  size=$(( $(stat -c %s "$d/s.json") / 1048576 ))
  for c in veths show snapshot; do
    measure ctnet "$bin" "$c" "$d/s.json" "$n(${size}M)"
    if [ -n "${BASELINE:-}" ]; then measure baseline "$BASELINE" "$c" "$d/s.json" "$n(${size}M)"; fi
  done
done
