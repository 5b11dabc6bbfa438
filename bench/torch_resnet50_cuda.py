#!/usr/bin/env python3
"""PyTorch peer of bench/resnet50_cuda: X
on CUDA, channels-last, cudnn.benchmark on, in three ways: eager, eager replayed from a
CUDA graph, and torch.compile(mode="reduce-overhead") (inductor with CUDA graphs, the
strongest PyTorch path). fp16 is the model in half precision; fp32 leaves TF32 on, as
PyTorch does by default for convolutions. Prints one JSON line per precision, batch and
way: steady-state milliseconds per batch and images per second (median of timed runs),
and the cold start (model built and moved to the GPU, or compiled, up to the first
result). Each torch.compile starts from torch._dynamo.reset(); inductor's on-disk cache
may make later compiles faster than the first.
Usage: torch_resnet50_cuda.py MODEL BATCHES SECONDS [WAYS [PRECISIONS]], e.g.
resnet50 1,32,256 1 eager,graphs,compile f16,fp32_tf32"""
import json
import sys
import time

import torch
import torchvision

model_name, batches, seconds = sys.argv[1], [int(b) for b in sys.argv[2].split(",")], float(sys.argv[3])
ways = sys.argv[4].split(",") if len(sys.argv) > 4 else ["eager", "graphs", "compile"]
precisions = sys.argv[5].split(",") if len(sys.argv) > 5 else ["f16", "fp32_tf32"]
torch.backends.cudnn.benchmark = True
torch.backends.cudnn.allow_tf32 = True
torch.backends.cuda.matmul.allow_tf32 = True


def build(dtype):
    torch.manual_seed(0)
    model = getattr(torchvision.models, model_name)(weights=None).eval()
    return model.to("cuda", dtype).to(memory_format=torch.channels_last)


def median_ms(fn):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times, start = [], time.time()
    while len(times) < 5 or time.time() - start < seconds:
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        fn()
        end.record()
        end.synchronize()
        times.append(begin.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def with_cuda_graph(model, x):
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            model(x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = model(x)
    return lambda: (graph.replay(), out)[1]


for precision, dtype in (("f16", torch.float16), ("fp32_tf32", torch.float32)):
    if precision not in precisions:
        continue
    for batch in batches:
        x = torch.randn(batch, 3, 224, 224, device="cuda", dtype=dtype).to(memory_format=torch.channels_last)
        for way in ways:
            torch.cuda.synchronize()
            start = time.time()
            with torch.no_grad():
                model = build(dtype)
                if way == "eager":
                    run = lambda: model(x)
                elif way == "graphs":
                    run = with_cuda_graph(model, x)
                else:
                    torch._dynamo.reset()
                    compiled = torch.compile(model, mode="reduce-overhead")
                    run = lambda: compiled(x)
                run()
                torch.cuda.synchronize()
                cold = time.time() - start
                ms = median_ms(run)
            print(json.dumps({"model": model_name, "precision": precision, "batch": batch, "way": way,
                              "torch_ms": ms, "img_s": batch * 1000.0 / ms, "cold_s": cold}), flush=True)
            del model, run
            torch.cuda.empty_cache()
