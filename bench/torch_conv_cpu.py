#!/usr/bin/python3
"""PyTorch CPU peer of bench/conv_cpu: reads the case file, prints one JSON line per case
with the median milliseconds of a channels-last forward convolution with bias (2 threads)."""
import json, os, statistics, sys, time
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from problem_string import read_problems, same_padding

torch.set_num_threads(2)
torch.manual_seed(0)
min_seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
with torch.no_grad():
    for p in read_problems(sys.argv[1]):
        name, n, c, h, w, k = p.label, p.dim("n"), p.dim("c"), p.dim("h"), p.dim("w"), p.dim("k")
        r, s, g = p.dim("r"), p.dim("s", 1), p.dim("g", 1)
        conv = torch.nn.Conv2d(c, k, r, stride=s, padding=same_padding(p), groups=g, bias=True)
        conv = conv.to(memory_format=torch.channels_last).eval()
        x = torch.randn(n, c, h, w).to(memory_format=torch.channels_last)
        conv(x)  # warm-up
        times = []
        start = time.perf_counter()
        while len(times) < 3 or time.perf_counter() - start < min_seconds:
            t = time.perf_counter()
            conv(x)
            times.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({"case": name, "torch_ms": statistics.median(times)}), flush=True)
