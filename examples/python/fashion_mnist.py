"""Reading Fashion-MNIST's gzip-compressed IDX files (Debian's dataset-fashion-mnist)."""

import gzip
import os
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path(os.environ.get("CNNGRAPH_FASHION_MNIST_DIR",
                                  "/usr/share/datasets/fashion-mnist"))

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _read_idx(path, magic, limit):
    with gzip.open(path, "rb") as f:
        header = np.frombuffer(f.read(4), ">u4")[0]
        if header != magic:
            raise OSError(f"{path}: not an IDX file of this kind (magic {header:#x}, "
                          f"expected {magic:#x})")
        dims = np.frombuffer(f.read(4 * (magic & 0xFF)), ">u4").astype(int)
        count = dims[0] if limit is None else min(int(limit), dims[0])
        size = count * int(np.prod(dims[1:]))
        data = np.frombuffer(f.read(size), np.uint8)
    if data.size != size:
        raise OSError(f"{path}: truncated ({data.size} of {size} bytes)")
    return data.reshape(count, *dims[1:])


def load(split, directory=DEFAULT_DIR, limit=None):
    """(images, labels) of split "train" or "t10k": uint8 arrays of shape (N, 28, 28, 1)
    (NHWC, ready for cnngraph.Image, which scales uint8 to [0, 1]) and (N,)."""
    directory = Path(directory)
    images = directory / f"{split}-images-idx3-ubyte.gz"
    if not images.exists():
        raise FileNotFoundError(f"{images} not found: install Debian's dataset-fashion-mnist "
                                "or pass --data-dir")
    x = _read_idx(images, 0x803, limit)[..., np.newaxis]
    y = _read_idx(directory / f"{split}-labels-idx1-ubyte.gz", 0x801, limit)
    return np.ascontiguousarray(x), y
