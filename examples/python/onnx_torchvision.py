#!/usr/bin/env python3
"""Exports a torchvision model to ONNX with PyTorch, imports it with cnngraph.onnx and runs
both on the same random batch: prints the largest difference of the logits and how many
images' top-5 classes agree. Without torch and torchvision it says so and exits 0.

    python3 examples/python/onnx_torchvision.py --model resnet18 --device cuda

The weights are torchvision's random initialization under a fixed seed (nothing is
downloaded), with random batch-norm statistics and affine terms, so that every layer
matters to the comparison.
"""

import argparse
import os
import sys
import tempfile

import numpy as np

import cnngraph as cg


def randomize_batch_norm(model, torch, generator):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
            m.running_var.copy_(0.5 + torch.rand(c, generator=generator))
            m.weight.data.copy_(0.5 + torch.rand(c, generator=generator))
            m.bias.data.copy_(0.1 * torch.randn(c, generator=generator))


def export(torch, model, x, path, exporter):
    if exporter == "auto":
        try:
            import onnxscript  # noqa: F401  (the dynamo exporter needs it)
            exporter = "dynamo" if hasattr(torch.onnx, "ONNXProgram") else "torchscript"
        except ImportError:
            exporter = "torchscript"
    if exporter == "dynamo":
        torch.onnx.export(model, (x,), path, dynamo=True, opset_version=18,
                          external_data=False)
    else:
        kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
        torch.onnx.export(model, (x,), path, opset_version=13, input_names=["input"],
                          output_names=["logits"], **kwargs)
    return exporter


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18", help="a torchvision.models name")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--device", default="cpu", help="cnngraph's device: cpu or cuda[:N]")
    parser.add_argument("--exporter", default="auto", choices=["auto", "dynamo", "torchscript"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        import torch
        import torchvision
    except ImportError as e:
        print(f"onnx_torchvision: skipped, PyTorch and torchvision are needed ({e})")
        return 0
    if not cg.onnx.available:
        print("onnx_torchvision: skipped, this cnngraph build has no ONNX importer")
        return 0

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    model = getattr(torchvision.models, args.model)(weights=None).eval()
    randomize_batch_norm(model, torch, generator)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=generator)
    device = cg.Device(args.device)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        path = os.path.join(tmp, f"{args.model}.onnx")
        exporter = export(torch, model, x, path, args.exporter)
        imported = cg.onnx.import_model(path, batch=args.batch)
        print(f"{args.model}: {exporter} export, {imported}, "
              f"input {imported.input_shapes[0]}, {len(imported.weights)} weight tensors")

        # PyTorch on the same kind of device, in full f32 (no TF32), as cnngraph's default.
        torch_device = "cuda" if args.device.startswith("cuda") else "cpu"
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        want = model.to(torch_device)(x.to(torch_device)).float().cpu().numpy()

        graph = cg.Graph(device, imported.outputs)
        # NHWC, as cnngraph images are; on a CUDA device the image is made there.
        image = cg.Image(x.permute(0, 2, 3, 1).contiguous().numpy(), device=device)
        got = graph.run(image)[0].numpy().reshape(args.batch, -1)

    diff = np.abs(got - want)
    top5_torch = np.argsort(-want, axis=1)[:, :5]
    top5_cnngraph = np.argsort(-got, axis=1)[:, :5]
    same_sets = sum(set(a) == set(b) for a, b in zip(top5_torch, top5_cnngraph))
    same_order = int((top5_torch == top5_cnngraph).all(axis=1).sum())
    print(f"max |cnngraph - torch| = {diff.max():.3g} (logits up to {np.abs(want).max():.3g}), "
          f"mean {diff.mean():.3g}")
    print(f"top-5 agreement: {same_sets}/{args.batch} images (same classes), "
          f"{same_order}/{args.batch} (same order); top-1 agreement "
          f"{int((top5_torch[:, 0] == top5_cnngraph[:, 0]).sum())}/{args.batch}")
    return 0 if same_sets == args.batch else 1


if __name__ == "__main__":
    sys.exit(main())
