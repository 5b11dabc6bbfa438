"""cnngraph: convolutional network graphs compiled once for a device and run on batches.

The Python face of the C++ library (docs/python.md). Images go in and out as NumPy arrays
(copied); every cnngraph exception is a class of this module that also derives from the
matching builtin (ShapeError is a ValueError, and so on).
"""

from ._cnngraph import *  # noqa: F401,F403
from ._cnngraph import __version__  # noqa: F401
from . import onnx  # noqa: F401
