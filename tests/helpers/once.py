"""Session fixtures made once per run, even under pytest-xdist.

Each xdist worker has its own session fixtures, so two workers would each make the GGUF chain or
the tensor models (minutes apiece). Instead the first worker to need one makes it in a neutral
data root under the run's common temp folder, holding a file lock; every worker (the maker too)
then works on its own copy, so a test that writes to its root never touches another worker's.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pickle
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

logger = logging.getLogger(__name__)

T = TypeVar("T")


def made_once(name: str, factory: pytest.TempPathFactory, root: Path, make: Callable[[Path], T]) -> T:
    """make(data_root) once for the whole run; returns its value with paths moved to `root`."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return make(root)
    common = factory.getbasetemp().parent / f"made-{name}"
    common.mkdir(exist_ok=True)
    made_file = common / "made.pickle"
    start = time.monotonic()
    with open(common / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits here while the first one makes it
        if not made_file.exists():
            value = make(common / "data")
            partial = made_file.with_suffix(".partial")
            # The test run's own objects, written and read by this run only (never user input).
            partial.write_bytes(pickle.dumps(value))
            partial.replace(made_file)
    value = pickle.loads(made_file.read_bytes())  # noqa: S301 - written above by this run
    # A copy, not links: tests change files of their own root (truncate, delete) to check refusals.
    shutil.copytree(common / "data", root)
    logger.info("%s ready in %s after %.1f s", name, root, time.monotonic() - start)
    return _moved(value, common / "data", root)


def _moved(value, old: Path, new: Path):
    """The same structure with every path under `old` pointing under `new`."""
    if isinstance(value, dict):
        return {k: _moved(v, old, new) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_moved(v, old, new) for v in value)
    if isinstance(value, Path) and value.is_relative_to(old):
        return new / value.relative_to(old)
    return value
