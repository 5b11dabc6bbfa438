"""Runs pytest with tools/debug/crash_backtrace.c's handler installed before every test, so
that a native crash prints its frames even where a library replaced the handler at load.
Usage: CRASH_BACKTRACE_LIB=/tmp/crash_backtrace.so python3 pytest_with_backtraces.py ARGS"""

import ctypes
import os
import sys

lib = ctypes.CDLL(os.environ["CRASH_BACKTRACE_LIB"])
lib.crash_backtrace_report_handler()
import cnngraph  # noqa: E402  (loaded here to see whether it replaces the handler)

cnngraph.Device.cuda_device_count()
lib.crash_backtrace_report_handler()
import pytest  # noqa: E402


class InstallBeforeEachTest:
    def pytest_runtest_setup(self, item):
        lib.crash_backtrace_install()


sys.exit(pytest.main(["-p", "no:cacheprovider", "-p", "no:faulthandler"] + sys.argv[1:],
                     plugins=[InstallBeforeEachTest()]))
