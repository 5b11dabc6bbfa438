#!/usr/bin/env python3
"""ONNX Runtime's CPU provider on the model files bench/onnx_cpu times, as its peer: the same
files, batch sizes and thread count. Prints one JSON line per model and batch: the session's
creation time, the first run, the median of repeated runs after a warm-up, and the top class
of each image (inputs read from --inputs, as onnx_cpu writes them, else seeded).

Usage: ort_cpu.py --threads 2 --seconds 2 --batches 1,32 MODEL.onnx...
Needs PyPI's onnxruntime (tools/setup --bench puts it in /opt/cnngraph-bench)."""
import argparse
import json
import os
import statistics
import time

import numpy as np
import onnxruntime


def median_ms(run, seconds):
    run()
    times, start = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--inputs", help="folder of <model>_b<batch>.input.f32 (NCHW floats)")
    args = parser.parse_args()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    for path in args.models:
        start = time.perf_counter()
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        create_ms = (time.perf_counter() - start) * 1e3
        source = session.get_inputs()[0]
        for batch in (int(b) for b in args.batches.split(",")):
            shape = [batch] + [int(d) for d in source.shape[1:]]
            stem = os.path.splitext(os.path.basename(path))[0]
            given = args.inputs and os.path.join(args.inputs, f"{stem}_b{batch}.input.f32")
            if given and os.path.exists(given):
                x = np.fromfile(given, dtype=np.float32).reshape(shape)
            else:
                x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
            start = time.perf_counter()
            logits = session.run(None, {source.name: x})[0]
            first_ms = (time.perf_counter() - start) * 1e3
            ms = median_ms(lambda: session.run(None, {source.name: x}), args.seconds)
            print(json.dumps({"model": os.path.basename(path), "batch": batch, "ort_ms": ms,
                              "ort_first_ms": first_ms, "ort_create_ms": create_ms,
                              "ort_version": onnxruntime.__version__,
                              "ort_top1": logits.reshape(batch, -1).argmax(1).tolist()}),
                  flush=True)


if __name__ == "__main__":
    main()
