#!/usr/bin/python3
"""PyTorch CPU peer of bench/lrn: LocalResponseNorm(size, alpha, beta, k) forward and
forward+backward on channels-last inputs (2 threads). The input of each case is
x[i] = 2 sin(0.001 i) over the NHWC index i; the forward result is written, NHWC float32, to
<dir>/<case>.f32 so that bench/lrn can compare it with cnngraph's. Prints one JSON line per
case with median milliseconds."""
import json, statistics, sys, time
import torch

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


for line in open(cases_path):
    if not line.strip() or line.startswith("#"):
        continue
    name, n, c, h, w, size, alpha, beta, k = line.split()
    n, c, h, w, size = map(int, (n, c, h, w, size))
    lrn = torch.nn.LocalResponseNorm(size, float(alpha), float(beta), float(k))
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
