#!/usr/bin/env python3
"""Exports torchvision models to ONNX, with a check file of inputs and the outputs of
PyTorch and ONNX Runtime for them, which tests/onnx_models_test.cpp compares cnngraph's
import with (and bench/onnx_models times).

Each model is torchvision's random initialization under a fixed seed, with batch-norm
statistics and affine terms randomized as bench/export_torchvision.py does. Two exporters:
`dynamo` (torch.onnx.export's default in PyTorch 2.11, opset 18) and `torchscript` (the
older tracer, opset 13, which writes the Shape/Gather/Unsqueeze/Concat chains around
Flatten). For each model and exporter it writes OUT_DIR/<model>_<exporter>.onnx and
OUT_DIR/<model>_<exporter>_check.safetensors holding `input` (NCHW), `torch_f32` (TF32
off), `torch_f16` (on a GPU) and `ort_f32` (ONNX Runtime's CPU provider).

Usage: export_onnx_torchvision.py OUT_DIR [--models resnet18,...] [--exporters dynamo,torchscript]
       [--batch 2] [--seed 0]
Needs torch, torchvision, onnx, onnxscript and onnxruntime (the GPU machine has them)."""
import argparse
import json
import os
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torchvision import randomize_batch_norm, save_safetensors  # noqa: E402

MODELS = ["resnet18", "resnet50", "mobilenet_v2", "squeezenet1_1", "alexnet", "googlenet",
          "efficientnet_b0"]
OPSETS = {"dynamo": 18, "torchscript": 13}


def make_model(name, seed):
    torch.manual_seed(seed)
    extra = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    model = getattr(torchvision.models, name)(weights=None, **extra).eval()
    randomize_batch_norm(model)
    return model


def export(model, x, path, exporter):
    if exporter == "dynamo":
        torch.onnx.export(model, (x,), path, dynamo=True, opset_version=OPSETS[exporter],
                          external_data=False)
    else:
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=OPSETS[exporter],
                          input_names=["input"], output_names=["logits"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--exporters", default="dynamo,torchscript")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import onnxruntime

    os.makedirs(args.out_dir, exist_ok=True)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    failures = 0
    for name in args.models.split(","):
        model = make_model(name, args.seed)
        x = torch.randn(args.batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            on_device = model.to(device)
            torch_f32 = on_device(x.to(device)).float().cpu()
            torch_f16 = (on_device.half()(x.to(device).half()).float().cpu()
                         if device == "cuda" else torch_f32)
            model = make_model(name, args.seed)
        for exporter in args.exporters.split(","):
            stem = os.path.join(args.out_dir, f"{name}_{exporter}")
            start = time.time()
            try:
                export(model, x, stem + ".onnx", exporter)
                session = onnxruntime.InferenceSession(stem + ".onnx",
                                                       providers=["CPUExecutionProvider"])
                feed = {session.get_inputs()[0].name: x.numpy()}
                ort_f32 = torch.from_numpy(session.run(None, feed)[0])
            except Exception as error:  # report and go on: the test skips a missing model
                failures += 1
                print(json.dumps({"model": name, "exporter": exporter, "error": str(error)[:400]}))
                continue
            save_safetensors(stem + "_check.safetensors",
                             {"input": x, "torch_f32": torch_f32, "torch_f16": torch_f16,
                              "ort_f32": ort_f32})
            gap = float((ort_f32 - torch_f32).abs().max() / torch_f32.abs().max())
            print(json.dumps({"model": name, "exporter": exporter, "opset": OPSETS[exporter],
                              "seconds": round(time.time() - start, 1),
                              "ort_vs_torch": f"{gap:.2e}",
                              "bytes": os.path.getsize(stem + ".onnx")}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
