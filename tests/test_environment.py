"""The virtual environment that scripts/setup.sh leaves: its console scripts (streamlit, which
scripts/run starts; benchmark_app; ray) must run from any checkout that links it, including one
made after the checkout that installed it was deleted."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

VENV = Path(sys.prefix)


def _python_scripts(bin_dir: Path) -> dict[str, str]:
    scripts = {}
    for path in sorted(bin_dir.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as handle:
            first = handle.readline(300).decode("utf-8", "replace").strip()
        if first.startswith("#!") and "/bin/python" in first:
            scripts[path.name] = first[2:]
    return scripts


def test_console_scripts_name_the_environment_itself_not_a_checkout_link() -> None:
    scripts = _python_scripts(VENV / "bin")
    assert {"streamlit", "benchmark_app", "ray"} <= set(scripts), sorted(scripts)
    for name, interpreter in scripts.items():
        assert Path(interpreter).exists(), f"{name} names {interpreter}, which does not exist"
    if not VENV.is_symlink():
        pytest.skip("this checkout's .venv is its own folder, not a shared environment")
    real = VENV.resolve()
    wrong = {name: i for name, i in scripts.items() if not i.startswith(f"{real}/bin/python")}
    assert not wrong, f"scripts name a checkout's link, not {real}: {wrong}"


def test_a_console_script_starts() -> None:
    done = subprocess.run([str(VENV / "bin" / "benchmark_app"), "-h"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "-hint" in done.stdout, done.stderr[-500:]
