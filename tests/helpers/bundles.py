"""Device-run bundles in tests: made through the service action, unzipped and run by their own
script as a teammate would, in an environment that cannot import this project."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from catalog.access import local_admin
from service import actions

logger = logging.getLogger(__name__)


def bare_env() -> dict[str, str]:
    """An environment with nothing of this project: no PYTHONPATH, a neutral home."""
    return {"PATH": os.defpath, "HOME": "/tmp", "LANG": "C.UTF-8"}


def run_bundle(bundle: Path, *args: str) -> subprocess.CompletedProcess:
    # -I: isolated (no PYTHONPATH, no user site, the script's folder first on the path); the
    # interpreter is the venv's only for its runtime packages (and their numpy).
    return subprocess.run([sys.executable, "-I", "run_bundle.py", *args], cwd=bundle, env=bare_env(),
                          capture_output=True, text=True, timeout=1800, check=False)


def bundle_and_run(variant_ids: list[str], work: Path) -> tuple[Path, Path, float]:
    """Bundle the variants, unzip the bundle and run it as a teammate would: (zip, folder, run seconds)."""
    t = time.perf_counter()
    zipped = actions.device_bundle(local_admin(), variant_ids, work / "bundle.zip")
    made_s = time.perf_counter() - t
    folder = work / "bundle"
    with zipfile.ZipFile(zipped) as zf:
        zf.extractall(folder)
    t = time.perf_counter()
    proc = run_bundle(folder)
    run_s = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr[-3000:]
    logger.info("bundle of %d variant(s): %.1f MB written in %.1f s; run in %.1f s", len(variant_ids),
                zipped.stat().st_size / 2**20, made_s, run_s)
    return zipped, folder, run_s


