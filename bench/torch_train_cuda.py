#!/usr/bin/env python3
"""PyTorch peer of bench/train_cuda: one training step (forward, cross-entropy loss,
backward, SGD with momentum 0.9) of torchvision's resnet50, resnet18 and mobilenet_v2 at
batch 128 (or BATCH) and of the
LeNet-style network (examples/reference_network.hpp) at batch 64, cudnn.benchmark on,
channels-last, on a fixed random batch resident on the GPU.
Ways: "eager" (resnet50 fp16: the model in half precision, PyTorch's faster eager fp16 form;
fp32 leaves TF32 on, PyTorch's default for convolutions) and "compile": torch.compile
(the ImageNet models in fp16: autocast with fp32 weights, default mode; LeNet:
mode="reduce-overhead", CUDA graphs). The ImageNet models in fp32 are measured eager only
(ResNet-50's compile alone takes about a minute). Prints one JSON line per model, precision and way: the
median milliseconds of a step, images per second, the cold start in seconds (model
built, moved to the GPU or compiled, up to the end of the first step) and the peak of
torch.cuda.max_memory_allocated in MiB.
Usage: torch_train_cuda.py MODELS SECONDS [WAYS [BATCH]], e.g. lenet,resnet50 2 eager,compile"""
import json
import sys
import time

import torch
import torch.nn as nn
import torchvision

models, seconds = sys.argv[1].split(","), float(sys.argv[2])
ways = sys.argv[3].split(",") if len(sys.argv) > 3 else ["eager", "compile"]
imagenet_batch = int(sys.argv[4]) if len(sys.argv) > 4 else 128
torch.backends.cudnn.benchmark = True
torch.backends.cudnn.allow_tf32 = True
torch.backends.cuda.matmul.allow_tf32 = True


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 1024), nn.ReLU(), nn.Linear(1024, 10))


def median_ms(step):
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times, start = [], time.time()
    while len(times) < 5 or time.time() - start < seconds:
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        step()
        end.record()
        end.synchronize()
        times.append(begin.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def setup(model_name, precision, way):
    torch.manual_seed(0)
    if model_name == "lenet":
        model, batch, shape, classes = lenet(), 64, (1, 28, 28), 10
    else:
        model = getattr(torchvision.models, model_name)(weights=None)
        batch, shape, classes = imagenet_batch, (3, 224, 224), 1000
    half = precision == "f16" and way == "eager"
    model = model.to("cuda", torch.half if half else torch.float).to(
        memory_format=torch.channels_last)
    x = torch.randn(batch, *shape, device="cuda", dtype=torch.half if half else torch.float)
    x = x.to(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device="cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    autocast = precision == "f16" and way == "compile"

    def forward_backward(inputs, labels):
        with torch.autocast("cuda", dtype=torch.half, enabled=autocast):
            loss = loss_fn(model(inputs), labels)
        loss.backward()
        return loss

    if way == "compile":
        mode = "reduce-overhead" if model_name == "lenet" else "default"
        torch._dynamo.reset()
        forward_backward = torch.compile(forward_backward, mode=mode)

    def step():
        optimizer.zero_grad(set_to_none=True)
        forward_backward(x, y)
        optimizer.step()

    return step, batch


for model_name in models:
    for precision in ["fp32_tf32"] if model_name == "lenet" else ["f16", "fp32_tf32"]:
        for way in ways:
            if way == "compile" and model_name != "lenet" and precision != "f16":
                continue
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            start = time.time()
            step, batch = setup(model_name, precision, way)
            step()
            torch.cuda.synchronize()
            cold = time.time() - start
            ms = median_ms(step)
            print(json.dumps({"model": model_name, "precision": precision, "batch": batch,
                              "way": way, "torch_ms": round(ms, 4),
                              "img_s": round(batch * 1000.0 / ms, 1), "cold_s": round(cold, 2),
                              "peak_mib": round(torch.cuda.max_memory_allocated() / 2**20)}),
                  flush=True)
