"""Shared helpers of the Python tests: the devices to run on and NumPy references."""

import numpy as np
import pytest

import cnngraph as cg


def cpu_devices():
    """The reference backend always; oneDNN's where this build has it."""
    devices = [cg.Device.cpu_reference()]
    try:
        devices.append(cg.Device.cpu())
    except cg.Unsupported:
        pass
    return devices


@pytest.fixture(params=cpu_devices(), ids=lambda d: d.kind.name)
def device(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def tolerance(device):
    # The reference backend computes in double precision; oneDNN in float32.
    return 1e-5 if device.kind == cg.DeviceKind.cpu_reference else 1e-4


def conv2d_same(x, w, b=None, stride=1):
    """NHWC x, OHWI w: a convolution with odd kernels and centred `same` padding."""
    n, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    ph, pw = kh // 2, kw // 2
    xp = np.pad(x.astype(np.float64), ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    out = np.zeros((n, h, wd, o))
    for dy in range(kh):
        for dx in range(kw):
            out += np.einsum("nhwc,oc->nhwo", xp[:, dy:dy + h, dx:dx + wd, :], w[:, dy, dx, :])
    if b is not None:
        out += b
    return out[:, ::stride, ::stride, :]


def pool2x2(x, reduce):
    n, h, w, c = x.shape
    return reduce(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
