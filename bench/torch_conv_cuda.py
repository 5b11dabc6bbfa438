#!/usr/bin/env python3
"""PyTorch peer of bench/conv_cuda: forward convolution with bias, cudnn.benchmark on,
fp16/bf16 channels-last, TF32/fp32 NCHW. Prints one JSON line per case and precision.
With "backward": the input, weight and bias gradients of the same convolution
(torch.autograd.grad from a fixed dy, the forward's graph kept).
Usage: torch_conv_cuda.py CASES_FILE SECONDS [backward]"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from problem_string import read_problems, same_padding

torch.backends.cudnn.benchmark = True
cases_path, seconds = sys.argv[1], float(sys.argv[2])
backward = len(sys.argv) > 3 and sys.argv[3] == "backward"
precisions = {"f16": torch.float16, "bf16": torch.bfloat16, "tf32": torch.float32, "f32": torch.float32}
for p in read_problems(cases_path):
    name, n, c, h, w, k, r = p.label, p.dim("n"), p.dim("c"), p.dim("h"), p.dim("w"), p.dim("k"), p.dim("r")
    stride, pad, dil, groups = p.dim("s", 1), same_padding(p), p.dim("d", 1), p.dim("g", 1)
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
