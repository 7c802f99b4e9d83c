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


def bare_env(home: Path | None = None) -> dict[str, str]:
    """An environment with nothing of this project: no PYTHONPATH, no telemetry opt-out, a neutral
    home (its own folder when given, to see what the runtimes write there)."""
    return {"PATH": os.defpath, "HOME": str(home or "/tmp"), "LANG": "C.UTF-8"}


def run_bundle(bundle: Path, *args: str, home: Path | None = None) -> subprocess.CompletedProcess:
    # -I: isolated (no PYTHONPATH, no user site, the script's folder first on the path); the
    # interpreter is the venv's only for its runtime packages (and their numpy).
    return subprocess.run([sys.executable, "-I", "run_bundle.py", *args], cwd=bundle, env=bare_env(home),
                          capture_output=True, text=True, timeout=1800, check=False)


def bundle_and_run(variant_ids: list[str], work: Path) -> tuple[Path, Path, float]:
    """Bundle the variants, unzip the bundle and run it as a teammate would, with a home of its
    own (work/home: nothing may be written under its cache): (zip, folder, run seconds)."""
    t = time.perf_counter()
    zipped = actions.device_bundle(local_admin(), variant_ids, work / "bundle.zip")
    made_s = time.perf_counter() - t
    folder = work / "bundle"
    with zipfile.ZipFile(zipped) as zf:
        zf.extractall(folder)
    t = time.perf_counter()
    home = work / "home"
    (home / "intel").mkdir(parents=True)
    (home / "intel" / "openvino_telemetry").write_text("0")  # the opt-out the bundle's README asks for
    proc = run_bundle(folder, home=home)
    run_s = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = [rel for p in home.rglob("*") if p.is_file() and (rel := p.relative_to(home).as_posix()) !=
               "intel/openvino_telemetry"]
    assert not written, f"the bundle's runtimes wrote {written} under the user's home (telemetry?)"
    logger.info("bundle of %d variant(s): %.1f MB written in %.1f s; run in %.1f s", len(variant_ids),
                zipped.stat().st_size / 2**20, made_s, run_s)
    return zipped, folder, run_s


