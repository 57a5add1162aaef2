#!/usr/bin/python3
"""
bench_mem.py - the memory of a running Artemis node, as the benchmark bar
counts it: every process of the node (the master and its children) by its
PSS from /proc/PID/smaps without the registry region's mapping, plus the
region's resident pages counted once (the allocated blocks of the sparse
/dev/shm file: tmpfs pages are resident once touched and never swapped).

usage: bench_mem.py MASTER_PID SHM_NAME   -> one JSON object on stdout
"""
import json
import os
import sys


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except OSError:
            pass
    return out


def pss_without(pid, region_path):
    total = region = 0
    in_region = False
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split()
                in_region = len(parts) >= 6 and parts[5] == region_path
                continue
            if first == "Pss:":
                kb = int(line.split()[1])
                if in_region:
                    region += kb
                else:
                    total += kb
    return total, region


def main():
    master, shm = int(sys.argv[1]), sys.argv[2]
    path = "/dev/shm/" + shm.lstrip("/")
    pids = [master] + children(master)
    procs = []
    other_kb = 0
    for p in pids:
        try:
            with open("/proc/%d/cmdline" % p) as f:
                name = f.read().replace("\0", " ").strip()
            kb, region_pss = pss_without(p, path)
        except OSError:
            continue
        other_kb += kb
        procs.append({"pid": p, "title": name, "pss_kb_without_region": kb,
                      "region_pss_kb": region_pss})
    region_bytes = os.stat(path).st_blocks * 512
    total = other_kb * 1024 + region_bytes
    print(json.dumps({"processes": procs, "pss_without_region_bytes": other_kb * 1024,
                      "region_resident_bytes": region_bytes, "total_bytes": total,
                      "total_mb": round(total / 1e6, 1),
                      "region_size_bytes": os.stat(path).st_size}))


if __name__ == "__main__":
    main()
