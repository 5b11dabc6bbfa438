"""The Python examples (examples/python/) in a short mode, each in its own interpreter:
they finish, print their result lines and write their figures."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cnngraph as cg

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"
FASHION_MNIST = Path(os.environ.get("CNNGRAPH_FASHION_MNIST_DIR",
                                    "/usr/share/datasets/fashion-mnist"))


def has(module):
    return importlib.util.find_spec(module) is not None


def run_example(name, *args, code=None, timeout=240):
    """The example's stdout; its exit status must be 0. `code` runs instead of the file
    (with sys.argv set as for it)."""
    env = dict(os.environ)
    # The package this test imports, wherever it comes from (a build tree or an install).
    package_root = str(Path(cg.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["MPLBACKEND"] = "Agg"
    command = [sys.executable, str(EXAMPLES / name), *args]
    if code is not None:
        command = [sys.executable, "-c", code, str(EXAMPLES / name), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=EXAMPLES)
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def assert_png(path):
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists(),
                    reason=f"no Fashion-MNIST in {FASHION_MNIST} (Debian's dataset-fashion-mnist)")
@pytest.mark.skipif(not (has("tqdm") and has("matplotlib")),
                    reason="the example needs tqdm and matplotlib (tools/setup installs them)")
def test_the_fashion_mnist_trainer_prints_the_test_accuracy_and_draws_its_curves(tmp_path):
    png = tmp_path / "curves.png"
    out = run_example("fashion_mnist_train.py", "--epochs", "1", "--limit", "256",
                      "--test-limit", "200", "--plot", str(png))
    assert "training the reference network on 256 Fashion-MNIST images" in out
    accuracy = re.search(r"epoch 1: test accuracy (\d+\.\d\d)%, test loss \d+\.\d+", out)
    assert accuracy, out
    assert 0.0 <= float(accuracy.group(1)) <= 100.0
    assert_png(png)


@pytest.mark.skipif(not (has("torch") and has("torchvision")),
                    reason="PyTorch and torchvision are absent")
@pytest.mark.skipif(not cg.onnx.available, reason="this build has no ONNX importer")
def test_a_torchvision_model_through_onnx_agrees_with_pytorch():
    out = run_example("onnx_torchvision.py", "--model", "resnet18", "--batch", "1",
                      "--size", "64")
    diff = re.search(r"max \|cnngraph - torch\| = (\S+)", out)
    assert diff and float(diff.group(1)) < 1e-3, out
    assert "top-5 agreement: 1/1 images" in out


def test_the_onnx_example_skips_cleanly_without_pytorch():
    # torch made unimportable in the child, whether or not it is installed.
    code = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    out = run_example("onnx_torchvision.py", code=code)
    assert "onnx_torchvision: skipped, PyTorch and torchvision are needed" in out


@pytest.mark.skipif(not has("matplotlib"), reason="matplotlib is absent")
def test_the_python_data_source_trains_in_cpu_style_and_logs_its_calls(tmp_path):
    png = tmp_path / "filters.png"
    out = run_example("custom_data_source.py", "--steps", "6", "--plot", str(png))
    assert re.search(r"test accuracy after 6 steps: \d+\.\d%", out), out
    # One load per compile of each graph, then one after each update; as many purges.
    counts = re.search(r"'gabor': (\d+) loads, (\d+) purges, 6 updates", out)
    assert counts and counts.group(1) == counts.group(2) and int(counts.group(1)) >= 7, out
    assert_png(png)
