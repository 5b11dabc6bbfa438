#!/usr/bin/python3
"""PyTorch CPU peer of bench/train_cpu: the reference network (examples/reference_network.hpp)
with Adam, dropout 0.5 and softmax cross-entropy, 2 threads. Prints one JSON line with training
and inference images per second on random data of the Fashion-MNIST shape."""
import json, sys, time
import torch
import torch.nn as nn

torch.set_num_threads(2)
torch.manual_seed(0)
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 64
inference_batches = int(sys.argv[3]) if len(sys.argv) > 3 else 10

net = nn.Sequential(
    nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 10))
for p in net.parameters():
    if p.dim() > 1:
        nn.init.uniform_(p, -0.2, 0.2)
    else:
        nn.init.constant_(p, 0.1)
optimizer = torch.optim.Adam(net.parameters(), lr=0.001)
loss_fn = nn.CrossEntropyLoss()
x = torch.rand(batch, 1, 28, 28)
y = torch.randint(0, 10, (batch,))

def step():
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(net(x), y)
    loss.backward()
    optimizer.step()

net.train()
step()  # warm-up
start = time.perf_counter()
for _ in range(steps):
    step()
train_seconds = time.perf_counter() - start

net.eval()
xi = torch.rand(1000, 1, 28, 28)
with torch.no_grad():
    net(xi)
    start = time.perf_counter()
    for _ in range(inference_batches):
        net(xi)
    inference_seconds = time.perf_counter() - start
print(json.dumps({"torch_train_img_s": steps * batch / train_seconds,
                  "torch_inference_img_s": inference_batches * 1000 / inference_seconds}),
      flush=True)
