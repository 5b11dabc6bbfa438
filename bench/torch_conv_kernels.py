#!/usr/bin/env python3
"""Which GPU kernels PyTorch (cudnn.benchmark on) runs for some cases of bench/conv_cuda,
with their mean device time: a diagnostic for cases where the peer is faster.
Usage: torch_conv_kernels.py CASES_FILE PRECISION[,PRECISION...] [CASE,CASE...]"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from problem_string import read_problems, same_padding
from torch.profiler import ProfilerActivity, profile

torch.backends.cudnn.benchmark = True
cases_path, wanted_precisions = sys.argv[1], sys.argv[2].split(",")
wanted_cases = sys.argv[3].split(",") if len(sys.argv) > 3 else None
dtypes = {"f16": torch.float16, "bf16": torch.bfloat16, "tf32": torch.float32, "f32": torch.float32}
for p in read_problems(cases_path):
    name = p.label
    if wanted_cases and name not in wanted_cases:
        continue
    n, c, h, w, k, r = p.dim("n"), p.dim("c"), p.dim("h"), p.dim("w"), p.dim("k"), p.dim("r")
    stride, pad, dil, groups = p.dim("s", 1), same_padding(p), p.dim("d", 1), p.dim("g", 1)
    for precision in wanted_precisions:
        dtype = dtypes[precision]
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
        fmt = torch.channels_last if dtype != torch.float32 else torch.contiguous_format
        conv = torch.nn.Conv2d(c, k, r, stride, pad, dil, groups).cuda().to(dtype).to(memory_format=fmt)
        x = torch.randn(n, c, h, w, device="cuda", dtype=dtype).to(memory_format=fmt)
        with torch.no_grad():
            for _ in range(3):
                conv(x)
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    conv(x)
                torch.cuda.synchronize()
        for event in prof.key_averages():
            if event.device_type.name == "CUDA" or getattr(event, "device_time_total", 0) > 0:
                mean_us = event.device_time_total / max(event.count, 1)
                print(f"{name} {precision}: {mean_us:9.1f} us x{event.count // 5} {event.key[:150]}", flush=True)
