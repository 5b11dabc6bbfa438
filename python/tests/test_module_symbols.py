"""The extension module exports its init function only (python/CMakeLists.txt says why)."""

import shutil
import subprocess
import sys

import pytest

import cnngraph._cnngraph as native


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("nm") is None,
                    reason="needs Linux and binutils' nm")
def test_the_module_exports_nothing_but_its_init_function():
    listing = subprocess.run(["nm", "-D", "--defined-only", native.__file__], check=True,
                             capture_output=True, text=True).stdout
    exported = [line.split()[-1] for line in listing.splitlines() if line.strip()]
    assert exported == ["PyInit__cnngraph"], exported[:20]
