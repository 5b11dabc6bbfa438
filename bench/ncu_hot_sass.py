#!/usr/bin/env python3
"""The SASS lines of one kernel that execute the most warp instructions, from Nsight
Compute's source page as CSV (ncu --import REPORT --page source --print-source sass --csv).
Usage: ncu_hot_sass.py CSV [--top N]
"""
import csv
import sys


def main():
    path = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 40
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header_at = next(i for i, r in enumerate(rows) if any("Instructions Executed" in c for c in r))
    header = rows[header_at]
    executed = next(i for i, c in enumerate(header) if c.startswith("Instructions Executed"))
    source = next(i for i, c in enumerate(header) if c in ("Source", "# Source", "SASS"))
    body = []
    for r in rows[header_at + 1:]:
        try:
            body.append((float(r[executed].replace(",", "")), r[source]))
        except (ValueError, IndexError):
            continue
    total = sum(n for n, _ in body)
    print(f"{len(body)} SASS lines, {total:.0f} warp instructions executed")
    for n, text in sorted(body, reverse=True)[:top]:
        print(f"{n:12.0f} {100 * n / total:5.1f}%  {text}")


if __name__ == "__main__":
    main()
