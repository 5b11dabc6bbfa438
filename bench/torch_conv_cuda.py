#!/usr/bin/env python3
"""PyTorch peer of bench/conv_cuda: forward convolution with bias, cudnn.benchmark on,
fp16/bf16 channels-last, TF32/fp32 NCHW. Prints one JSON line per case and precision.
With "backward": the input, weight and bias gradients of the same convolution
(torch.autograd.grad from a fixed dy, the forward's graph kept).
Usage: torch_conv_cuda.py CASES_FILE SECONDS [backward]"""
import json
import sys
import time

import torch

torch.backends.cudnn.benchmark = True
cases_path, seconds = sys.argv[1], float(sys.argv[2])
backward = len(sys.argv) > 3 and sys.argv[3] == "backward"
precisions = {"f16": torch.float16, "bf16": torch.bfloat16, "tf32": torch.float32, "f32": torch.float32}
for line in open(cases_path):
    if not line.strip() or line.startswith("#"):
        continue
    name, n, c, h, w, k, r, stride, pad, dil, groups = line.split()
    n, c, h, w, k, r, stride, pad, dil, groups = map(int, (n, c, h, w, k, r, stride, pad, dil, groups))
    for precision, dtype in precisions.items():
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
        fmt = torch.channels_last if dtype != torch.float32 else torch.contiguous_format
        conv = torch.nn.Conv2d(c, k, r, stride, pad, dil, groups, bias=True).cuda().to(dtype)
        conv = conv.to(memory_format=fmt)
        x = torch.randn(n, c, h, w, device="cuda", dtype=dtype).to(memory_format=fmt)
        if backward:
            x.requires_grad_(True)
            y = conv(x)
            dy = torch.randn_like(y)
            params = [x, conv.weight, conv.bias]
            step = lambda: torch.autograd.grad(y, params, dy, retain_graph=True)
        else:
            step = lambda: conv(x)
        with torch.set_grad_enabled(backward):
            for _ in range(3):
                step()
            torch.cuda.synchronize()
            times = []
            start = time.time()
            while len(times) < 5 or time.time() - start < seconds:
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                begin.record()
                for _ in range(10):
                    step()
                end.record()
                end.synchronize()
                times.append(begin.elapsed_time(end) / 10)
        times.sort()
        print(json.dumps({"case": name, "precision": precision, "torch_ms": times[len(times) // 2]}), flush=True)
