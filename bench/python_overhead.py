#!/usr/bin/env python3
"""What the Python package adds to a graph run, against C++ on the identical graph.

For each case, bench/python_overhead (the C++ program, built with the benchmarks) builds the
network, writes it as a saved graph, loads the file back and times Graph::run on it: a
warm-up, then as many runs as fit in --seconds, each timed on its own, the median. This
driver then loads the same file with cnngraph.load_graph, compiles it with the same options
(for CUDA, the plan cache file the C++ run wrote, so the same cuDNN plans), makes the same
input once on the same device (a device-resident image for CUDA), and times exactly as many
graph.run([image]) calls with time.perf_counter_ns after the same warm-up. It prints

    python_overhead resnet50 cuda f16 b1: C++ 812.3 us, Python 818.9 us, added 6.6 us (1.008x)

and checks that both outputs agree (a weighted checksum). --rounds (3) repeats the pair, C++
then Python, and reports the median of each side's medians, which keeps a busy machine's
moments from landing on one side only. Cases: resnet50_cuda_f16_b1 (on a
GPU; skipped elsewhere), mnist_cpu_b1, mnist_cpu_b64 (the Fashion-MNIST reference network;
in builds with the examples), relu_cpu_b1 (one ReLU on a 1x1x1 image: the
fixed cost of a run, where the bindings' share is largest). Use a Release build of both (the C++ program and the Python
package); a Debug build measures the debug glue.

Usage: python_overhead.py [--program PATH] [--cases a,b] [--seconds S] [--warmup N]
                          [--rounds N] [--dir DIR] [--json]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import cnngraph as cg

ROOT = Path(__file__).resolve().parents[1]


def find_program():
    for build in ("release", "dev"):
        path = ROOT / "build" / build / "bench" / "python_overhead"
        if path.exists():
            return str(path)
    sys.exit("python_overhead.py: no bench/python_overhead program found in build/release or "
             "build/dev: build the target python_overhead and pass --program PATH")


def input_image(case, device):
    """The C++ program's input: value i is ((i * 7919) % 1000) / 1000 - 0.5, in float32
    arithmetic as there, then in the input's element type; made once, on the device."""
    shape = (case["batch"], case["size"], case["size"], case["channels"])
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    values = ((i * 7919) % 1000).astype(np.float32) / np.float32(1000) - np.float32(0.5)
    if case["precision"] == "f16":
        values = values.astype(np.float16)
    return cg.Image(values.reshape(shape), device=device)


def checksum(image):
    values = np.asarray(image.numpy(), dtype=np.float64).reshape(-1)
    return float((values * (1 + np.arange(values.size) % 10)).sum())


def time_python(case):
    device = cg.Device(case["device"])
    options = cg.GraphOptions(precision=cg.Precision[case["precision"]],
                              autotune=case["device"] == "cuda",
                              plan_cache_file=case["plan_cache_file"])
    saved = cg.load_graph(case["file"])
    graph = cg.Graph(device, saved.results[0], True, options=options)
    sources = [input_image(case, device)]
    check = checksum(graph.run(sources)[0])
    for _ in range(case["warmup"]):
        graph.run(sources)
    clock, run = time.perf_counter_ns, graph.run
    times = []
    for _ in range(case["repetitions"]):
        start = clock()
        run(sources)
        times.append(clock() - start)
    times.sort()
    return times[len(times) // 2] / 1000.0, check  # the upper median, as the C++ side's


def run_cpp(program, name, directory, args, keep):
    """The C++ program's JSON line for one case (with 'skipped' or 'failed' when it did not
    run)."""
    done = subprocess.run([program, "--dir", directory, "--cases", name, "--seconds",
                           str(args.seconds), "--warmup", str(args.warmup)]
                          + (["--keep"] if keep else []), capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    case = lines[0] if lines else {}
    if done.returncode != 0 and "skipped" not in case:
        case["failed"] = f"the C++ program exited {done.returncode}"
    return case


def run_case(program, name, directory, args):
    """Rounds of C++ then Python, so that both sides see the machine in the same states;
    the median of each side's medians. 0, or 1 when the case failed or the outputs differ."""
    cpp, python, case = [], [], {}
    for round_ in range(args.rounds):
        case = run_cpp(program, name, directory, args, keep=round_ > 0)
        if "skipped" in case or "failed" in case:
            why = case.get("skipped") or case["failed"]
            print(f"python_overhead {name}: {'skipped' if 'skipped' in case else 'failed'}, {why}")
            return 0 if "skipped" in case and "failed" not in case else 1
        python_us, python_check = time_python(case)
        cpp.append(case["cpp_us"])
        python.append(python_us)
    label = f"{name.split('_')[0]} {case['device']} {case['precision']} b{case['batch']}"
    cpp_us, python_us = float(np.median(cpp)), float(np.median(python))
    print(f"python_overhead {label}: C++ {cpp_us:.1f} us, Python {python_us:.1f} us, "
          f"added {python_us - cpp_us:.1f} us ({python_us / cpp_us:.3f}x)", flush=True)
    if args.json:
        print(json.dumps({**case, "cpp_us": round(cpp_us, 2), "python_us": round(python_us, 2),
                          "cpp_rounds_us": cpp, "python_rounds_us": [round(t, 2) for t in python],
                          "added_us": round(python_us - cpp_us, 2),
                          "ratio": round(python_us / cpp_us, 4)}))
    tolerance = 1e-2 if case["precision"] == "f16" else 1e-4
    if abs(python_check - case["checksum"]) > tolerance * max(1.0, abs(case["checksum"])):
        print(f"python_overhead {label}: the outputs differ (checksum C++ "
              f"{case['checksum']:.6g}, Python {python_check:.6g})")
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", help="bench/python_overhead (default: build/release or "
                        "build/dev's)")
    parser.add_argument("--cases", help="comma-separated (default: every case of the program)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed runs per side, in s")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3,
                        help="C++ then Python, this many times; the medians of the rounds")
    parser.add_argument("--dir", help="where the saved graphs go (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="also print each case as JSON")
    args = parser.parse_args()
    program = args.program or find_program()
    cases = args.cases.split(",") if args.cases else subprocess.run(
        [program, "--list"], check=True, capture_output=True, text=True).stdout.split()
    print(f"# {program}; cnngraph {cg.__version__} from {Path(cg.__file__).parent}")
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or tmp
        for name in cases:
            status |= run_case(program, name, directory, args)
    return status


if __name__ == "__main__":
    sys.exit(main())
