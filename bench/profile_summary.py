#!/usr/bin/env python3
"""Sums a CNNGRAPH_PROFILE log (stderr of a program run with CNNGRAPH_PROFILE=1) by kernel.

Reads the lines "cnngraph: profile: NAME MS ms IMPLEMENTATION [ATTRIBUTES]" of the last run
(runs are separated by lines "run N", as bench/resnet50_cuda --profile prints them, or else
a run starts again where the first step's name comes back: a training step repeats names), and prints one JSON line per implementation: the
steps, their total milliseconds and share of the run, then the --top slowest steps.
Usage: profile_summary.py [--top N] [LOG] (stdin without LOG)
"""
import argparse
import collections
import json
import re
import sys

LINE = re.compile(r"cnngraph: profile: (.+?)\s+([0-9.]+) ms(?:  (.*?) \[(.*)\])?\s*$")

RUN = re.compile(r"run \d+$")


def last_run(lines):
    runs, current, first = [], [], None
    marked = any(RUN.match(line) for line in lines)
    for line in lines:
        if marked and RUN.match(line):
            if current:
                runs.append(current)
            current = []
            continue
        m = LINE.search(line)
        if not m:
            continue
        name = m.group(1)
        if first is None:
            first = name
        elif not marked and name == first:
            runs.append(current)
            current = []
        current.append((name, float(m.group(2)), m.group(3) or "-", m.group(4) or ""))
    if current:
        runs.append(current)
    return runs[-1] if runs else []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("log", nargs="?")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    lines = open(args.log).readlines() if args.log else sys.stdin.readlines()
    steps = last_run(lines)
    total = sum(ms for _, ms, _, _ in steps)
    by_kernel = collections.defaultdict(lambda: [0, 0.0])
    for _, ms, kernel, _ in steps:
        by_kernel[kernel][0] += 1
        by_kernel[kernel][1] += ms
    print(json.dumps({"profile_total_ms": round(total, 4), "steps": len(steps)}))
    for kernel, (count, ms) in sorted(by_kernel.items(), key=lambda kv: -kv[1][1]):
        print(json.dumps({"kernel": kernel, "steps": count, "ms": round(ms, 4),
                          "share": round(ms / total, 3) if total else 0}))
    for name, ms, kernel, attributes in sorted(steps, key=lambda s: -s[1])[:args.top]:
        print(json.dumps({"step": name, "ms": ms, "kernel": kernel, "attributes": attributes}))


if __name__ == "__main__":
    main()
