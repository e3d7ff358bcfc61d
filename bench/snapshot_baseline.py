#!/usr/bin/env python3
"""Baseline for `ctnet-diag snapshot`: the fastest shell-level collection a competent
engineer would write for the same data, with parallel subprocesses.

Per netns one `ip -n NS -j -d -s -batch -` (link, addr, route show table all, neigh: one
process instead of four) plus `ip -n NS -6 -j route show table all`; for the host the
same plus `bridge -j fdb show`, `iptables-save -c`, `ip6tables-save -c`,
`nft -j list ruleset` and `ethtool -S` of every host veth. Prints one JSON document.
"""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def run(args, stdin=None):
    p = subprocess.run(args, capture_output=True, text=True, input=stdin)
    return p.stdout


BATCH = "link show\naddr show\nroute show table all\nneigh show\n"


def batch(pre):
    # `ip -j -batch` prints one JSON array per command, one per line.
    lines = run(pre + ["-j", "-d", "-s", "-batch", "-"], BATCH).splitlines()
    return dict(zip(["link", "addr", "route4", "neigh"], (as_json(l) for l in lines)))


def as_json(text):
    try:
        return json.loads(text) if text.strip() else []
    except json.JSONDecodeError:
        return text


def main():
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    netns = [n["name"] for n in as_json(run(["ip", "-j", "netns", "list"])) or []]
    host_links = as_json(run(["ip", "-j", "-d", "-s", "link"]))
    veths = [l["ifname"] for l in host_links if l.get("linkinfo", {}).get("info_kind") == "veth"]
    jobs = {}
    batches = {}
    for ns in [None] + netns:
        pre = ["ip"] if ns is None else ["ip", "-n", ns]
        batches[ns] = pre
        jobs[(ns, "route6")] = pre + ["-j", "-6", "route", "show", "table", "all"]
    jobs[(None, "fdb")] = ["bridge", "-j", "fdb", "show"]
    jobs[(None, "iptables")] = ["iptables-save", "-c"]
    jobs[(None, "ip6tables")] = ["ip6tables-save", "-c"]
    jobs[(None, "nft")] = ["nft", "-j", "list", "ruleset"]
    for v in veths:
        jobs[(None, "ethtool:" + v)] = ["ethtool", "-S", v]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        bfut = {ns: pool.submit(batch, pre) for ns, pre in batches.items()}
        futures = {k: pool.submit(run, a) for k, a in jobs.items()}
        out = {}
        for ns, f in bfut.items():
            out.setdefault(ns or "host", {}).update(f.result())
        for (ns, what), f in futures.items():
            out.setdefault(ns or "host", {})[what] = as_json(f.result())
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
