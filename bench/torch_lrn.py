#!/usr/bin/python3
"""PyTorch CPU peer of bench/lrn: LocalResponseNorm(size, alpha, beta, k) forward and
forward+backward on channels-last inputs (2 threads). The input of each case is
x[i] = 2 sin(0.001 i) over the NHWC index i; the forward result is written, NHWC float32, to
<dir>/<case>.f32 so that bench/lrn can compare it with cnngraph's. Prints one JSON line per
case with median milliseconds."""
import json, os, statistics, sys, time
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from problem_string import read_problems

torch.set_num_threads(2)
cases_path, out_dir = sys.argv[1], sys.argv[2]
min_seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5


def median_ms(fn):
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


for p in read_problems(cases_path):
    name, n, c, h, w = p.label, p.dim("n"), p.dim("c"), p.dim("h"), p.dim("w")
    size = int(p.number("size", 5))
    lrn = torch.nn.LocalResponseNorm(size, p.number("alpha", 1), p.number("beta", 5), p.number("delta", 1))
    index = torch.arange(n * h * w * c, dtype=torch.float64)
    nhwc = (2 * torch.sin(0.001 * index)).float().reshape(n, h, w, c)
    x = nhwc.permute(0, 3, 1, 2)  # NCHW view of NHWC memory: channels-last
    with torch.no_grad():
        y = lrn(x)
        y.permute(0, 2, 3, 1).contiguous().numpy().tofile(f"{out_dir}/{name}.f32")
        forward = median_ms(lambda: lrn(x))
    xg = x.detach().clone().requires_grad_(True)
    dy = torch.ones_like(xg)

    def step():
        xg.grad = None
        lrn(xg).backward(dy)

    backward = median_ms(step)
    print(json.dumps({"case": name, "torch_forward_ms": forward, "torch_train_ms": backward}),
          flush=True)
