#!/usr/bin/python3
"""PyTorch CPU peer of bench/conv_cpu: reads the case file, prints one JSON line per case
with the median milliseconds of a channels-last forward convolution with bias (2 threads)."""
import json, statistics, sys, time
import torch

torch.set_num_threads(2)
torch.manual_seed(0)
min_seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
with torch.no_grad():
    for line in open(sys.argv[1]):
        if not line.strip() or line.startswith("#"):
            continue
        name, n, c, h, w, k, r, s, g = line.split()
        n, c, h, w, k, r, s, g = map(int, (n, c, h, w, k, r, s, g))
        conv = torch.nn.Conv2d(c, k, r, stride=s, padding=(r - 1) // 2, groups=g, bias=True)
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
