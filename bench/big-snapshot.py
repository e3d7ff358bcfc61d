#!/usr/bin/env python3
"""Write a synthetic snapshot of a host with N containers (3 links each: lo, eth0 and the
host veth), derived from the recorded fixture fixtures/lab-healthy.json, for the
`--from` scale benchmark (bench/from-scale.sh). Usage: big-snapshot.py N OUT.json"""
import copy
import json
import sys

n, out = int(sys.argv[1]), sys.argv[2]
d = json.load(open(__file__.rsplit("/", 2)[0] + "/fixtures/lab-healthy.json"))
host = next(x for x in d["netns"] if x["key"] == d["host"])
other = next(x for x in d["netns"] if x["key"] != d["host"])
hveth = next(l for l in host["links"] if l["name"] == "vc1")
br = next(l for l in host["links"] if l["name"] == "br0")
host["links"] = [l for l in host["links"] if l["kind"] != "veth"]
host["fdb"] = []
netns = [host]
for i in range(n):
    nsid = i + 10
    hidx = 100 + i
    v = copy.deepcopy(hveth)
    v.update(name=f"veth{i:06x}", ifindex=hidx, link=2, link_netnsid=nsid, master=br["ifindex"],
             mac="02:%02x:%02x:%02x:00:01" % (i >> 16 & 255, i >> 8 & 255, i & 255))
    host["links"].append(v)
    c = copy.deepcopy(other)
    c["key"] = {"dev": 4, "ino": 5000000 + i}
    c["refs"] = [{"type": "named", "name": f"c{i}", "path": f"/run/netns/c{i}"}]
    c["nsid"] = nsid
    c["host_nsid"] = 0
    for l in c["links"]:
        if l["name"] == "eth0":
            l["link"] = hidx
            l["mac"] = "02:%02x:%02x:%02x:00:02" % (i >> 16 & 255, i >> 8 & 255, i & 255)
    for a in c["addresses"]:
        if a["address"].startswith("10."):
            a["address"] = "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, (i & 255) or 1)
    netns.append(c)
d["netns"] = netns
json.dump(d, open(out, "w"))
