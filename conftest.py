"""For the notebooks run by ``pytest --nbmake``: notebook 06 reads CIFAR-10 from the folder named by
NANODDPM_CIFAR10_DIR (the package's loader honours it), so the tests give it a tiny stand-in there instead of
a download. Only notebook items see the variable: the package tests exercise the download path themselves."""

import os
import sys
import tempfile
from pathlib import Path

_FAKE = {}


def _is_notebook(item) -> bool:
    return Path(str(item.fspath)).suffix == ".ipynb"


def pytest_runtest_setup(item):
    if not _is_notebook(item) or os.environ.get("NANODDPM_CIFAR10_DIR"):
        return
    if "dir" not in _FAKE:
        sys.path.insert(0, str(Path(__file__).parent / "tests" / "colab"))
        from fake_cifar10 import write_batches

        _FAKE["dir"] = str(write_batches(Path(tempfile.mkdtemp(prefix="fake-cifar10-"))))
    os.environ["NANODDPM_CIFAR10_DIR"] = _FAKE["dir"]
    _FAKE["set"] = True


def pytest_runtest_teardown(item):
    if _FAKE.pop("set", False):
        os.environ.pop("NANODDPM_CIFAR10_DIR", None)
