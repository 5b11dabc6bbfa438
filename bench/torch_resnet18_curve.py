#!/usr/bin/env python3
"""The PyTorch side of tests/cuda_training_test.cpp's ResNet-18 loss curve: torchvision's
resnet18 (10 classes) under a fixed seed trains 20 steps of SGD (learning rate 0.003,
momentum 0.9) on 20 fixed random batches of 16 images of 64x64, in fp32 with TF32 off,
batch norm in training mode. Writes OUT_DIR/resnet18_curve.safetensors (the initial
weights in cnngraph's layout, see export_torchvision.py) and
OUT_DIR/resnet18_curve_data.safetensors (the batches NHWC, one-hot labels
[steps, batch, 1, 1, 10], the learning rate and the 20 losses), which the test reads through
CNNGRAPH_RESNET18_CURVE_DIR.
Usage: torch_resnet18_curve.py OUT_DIR [--device cuda|cpu]"""
import argparse
import json
import os

import torch
import torchvision

from export_torchvision import cnngraph_tensors, save_safetensors

STEPS, BATCH, SIZE, CLASSES = 20, 16, 64, 10
# At 0.01 the curve of random labels swings by 40% within 20 steps, and summation-order
# differences of 1e-7 grew to 5% (cnngraph's first two steps agreed to 4e-7).
LEARNING_RATE = 0.003


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=CLASSES).train()
    os.makedirs(args.out_dir, exist_ok=True)
    save_safetensors(os.path.join(args.out_dir, "resnet18_curve.safetensors"),
                     cnngraph_tensors(model))
    images = torch.randn(STEPS, BATCH, 3, SIZE, SIZE)
    classes = torch.randint(0, CLASSES, (STEPS, BATCH))
    model = model.to(args.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for step in range(STEPS):
        optimizer.zero_grad()
        loss = loss_fn(model(images[step].to(args.device)), classes[step].to(args.device))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    one_hot = torch.nn.functional.one_hot(classes, CLASSES).float().reshape(STEPS, BATCH, 1, 1, CLASSES)
    save_safetensors(os.path.join(args.out_dir, "resnet18_curve_data.safetensors"),
                     {"images": images.permute(0, 1, 3, 4, 2), "labels": one_hot,
                      "learning_rate": torch.tensor([LEARNING_RATE]),
                      "losses": torch.tensor(losses)})
    print(json.dumps({"resnet18_curve": [round(v, 5) for v in losses]}))


if __name__ == "__main__":
    main()
