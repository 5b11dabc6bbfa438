#!/usr/bin/env python3
"""Writes a torchvision model's state_dict in cnngraph's weights format (safetensors, f32,
convolution weights OHWI, the classifier as a [classes, 1, 1, features] 1x1 convolution),
plus a check file: a batch of NHWC inputs and PyTorch's logits for it in fp32 (TF32 off)
and fp16, which tests/models_test.cpp compares cnngraph's logits with.

The model is torchvision's own random initialization under a fixed seed, with its
batch-norm statistics and affine terms randomized too (a fresh model has mean 0 and
variance 1, which would leave the folding of batch norm untested). Pass --pretrained to
use the weights torchvision has cached locally instead (nothing is downloaded).

Usage: export_torchvision.py {resnet50,mobilenet_v2,efficientnet_b0} OUT_DIR [--seed 0] [--batch 4]
Needs torch and torchvision (the GPU machine has both); writes OUT_DIR/<model>.safetensors
and OUT_DIR/<model>_check.safetensors."""
import argparse
import json
import os
import struct

import torch
import torchvision


def save_safetensors(path, tensors):
    """The safetensors layout, written without the safetensors package."""
    header, blobs, offset = {}, [], 0
    for name, tensor in tensors.items():
        data = tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for blob in blobs:
            out.write(blob)


def cnngraph_tensors(model):
    out = {}
    for name, tensor in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        if tensor.dim() == 4:  # OIHW -> OHWI
            tensor = tensor.permute(0, 2, 3, 1)
        elif tensor.dim() == 2:  # the classifier after global pooling: a 1x1 convolution
            tensor = tensor.reshape(tensor.shape[0], 1, 1, tensor.shape[1])
        out[name] = tensor
    return out


def randomize_batch_norm(model):
    """A fresh model's batch norms have mean 0 and variance 1, which would leave their
    folding untested: statistics and affine terms drawn around those values instead."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.8, 1.2)
                module.bias.uniform_(-0.1, 0.1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=["resnet50", "mobilenet_v2", "efficientnet_b0"])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--pretrained", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    weights = "DEFAULT" if args.pretrained else None
    model = getattr(torchvision.models, args.model)(weights=weights).eval()
    if not args.pretrained:
        randomize_batch_norm(model)
    os.makedirs(args.out_dir, exist_ok=True)
    save_safetensors(os.path.join(args.out_dir, args.model + ".safetensors"), cnngraph_tensors(model))

    x = torch.randn(args.batch, 3, 224, 224)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.no_grad():
        model = model.to(device)
        logits32 = model(x.to(device)).float()
        logits16 = model.half()(x.to(device).half()).float() if device == "cuda" else logits32
    save_safetensors(os.path.join(args.out_dir, args.model + "_check.safetensors"),
                     {"input": x.permute(0, 2, 3, 1), "logits_f32": logits32, "logits_f16": logits16})
    print(json.dumps({"exported": args.model, "dir": args.out_dir, "batch": args.batch}))


if __name__ == "__main__":
    main()
