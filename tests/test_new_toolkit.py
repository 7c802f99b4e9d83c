"""A new toolkit is one folder: a throwaway one, written into a temporary package here (a
declaration with one conversion, a format and its runner), is seen by the registry, the Convert
form, the CLI, the offline environment and setup, with no shared code edited.

What it needed besides its folder: naming its declaration module to the registry, here through
MODEL_CATALOG_TOOLKITS (an installed package names it with a "model_catalog.toolkits" entry point;
a built-in toolkit adds its line to DEFAULT_TOOLKITS). A real one also adds its packages to
requirements.txt, a line to the README and its tests: the four touches.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from backends import registry

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "mc_throwaway_toolkit"

DECLARATION = '''
"""The throwaway toolkit: copies a GGUF's bytes into a ".copied" file and "runs" it."""

import shutil
from pathlib import Path

import numpy as np

from backends.registry import Conversion, Format, Gate, Option, SetupStep, Toolkit, register_toolkit

DONE = []


class Runner:
    runtime, task = "Copier CPU", "image-classification"

    def __init__(self, path, task, threads, copies="one"):
        self.size = Path(path).stat().st_size

    def raw(self, feeds):
        return np.full((1, 2), float(self.size))

    def versions(self):
        return {"copier": "1"}

    def close(self):
        pass


def load(path, task, threads=2, **options):
    return Runner(path, task, threads, **options)


def convert(ctx, parent, parent_main_file, out_dir, options, extras):
    from backends.convert_job import ConversionOutput

    for n in range(1 if options["copies"] == "one" else 2):
        shutil.copy(parent_main_file, Path(out_dir) / f"model{n}.copied")
    return ConversionOutput(precision=options["copies"])


COPY = Conversion(
    backend="copier", name="copy", title="GGUF → copied bytes (copier)", input_formats=("gguf",),
    output_format="copied", packages=("shutil",), convert=convert, gate=Gate("output_agreement", 0.5),
    options=(Option("copies", "choice", "one", ("one", "two"), "How many copies to write."),),
    label_options=("copies",))

COPIED = Format(name="copied", title="Copied bytes", runtime="Copier", main_suffix=".copied",
                runtime_imports=("shutil",), open_encoder_classifier=load,
                runtime_options=(Option("speed", "choice", "slow", ("slow", "fast")),),
                fingerprint_fields=lambda: {"copier_build": "b1"})

TOOLKIT = register_toolkit(Toolkit(
    name="copier", title="Copier", runtime="Copier CPU", packages=("shutil",), distributions=(),
    formats=(COPIED,), conversions=(COPY,), offline_env=(("COPIER_TELEMETRY", "0"),),
    setup_steps=(SetupStep("recording a copier consent", done=lambda: bool(DONE), run=lambda: DONE.append(1)),)))
'''


@pytest.fixture
def throwaway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The toolkit's folder on sys.path and its declaration named to the registry."""
    package = tmp_path / "toolkits" / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "declaration.py").write_text(textwrap.dedent(DECLARATION))
    # Importable here and in the processes started from here (job children, the CLI), as if installed.
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(package.parent), os.environ.get("PYTHONPATH"))
                                                      if p))
    monkeypatch.setenv(registry.TOOLKITS_ENV, f"{PACKAGE}.declaration")
    monkeypatch.delenv("COPIER_TELEMETRY", raising=False)  # its registration sets it; removed afterwards
    yield str(package.parent)
    registry.TOOLKITS.pop("copier", None)
    for name in [m for m in sys.modules if m.startswith(PACKAGE)]:
        del sys.modules[name]


def test_the_registry_and_setup_see_a_new_toolkit(throwaway: str, tmp_path: Path) -> None:
    from backends.setup_steps import run_setup_steps

    conv = registry.get_conversion("copier.copy")
    assert conv in registry.conversions("gguf") and registry.get_format("copied").is_model
    assert "copied" in registry.formats_running(encoder_classifier=True)
    assert conv.step_title({"copies": "two"}) == "GGUF → copied bytes [copies=two]"
    assert registry.runtime_options_for("copied", {"speed": "fast"}) == {"speed": "fast"}
    assert registry.fingerprint_fields("copied") == {"copier_build": "b1"}
    assert registry.offline_environment()["COPIER_TELEMETRY"] == "0" and os.environ["COPIER_TELEMETRY"] == "0"
    assert "recording a copier consent" in run_setup_steps()
    assert "recording a copier consent" not in run_setup_steps()
    # Its hook and its runner work through the registry (a trivial conversion: a copy).
    parent = tmp_path / "m.gguf"
    parent.write_bytes(b"GGUF" + bytes(60))
    out = tmp_path / "out"
    out.mkdir()
    assert conv.convert(None, None, parent, out, conv.normalize({"copies": "two"}), {}).precision == "two"
    runner = registry.open_encoder_classifier("copied", out / "model0.copied", "image-classification")
    assert np.array_equal(runner.raw({}), [[64.0, 64.0]])


def test_the_convert_form_and_the_cli_offer_a_new_toolkit(throwaway: str, demo_source) -> None:
    from backends import convert_job

    steps, problems = convert_job.plan("copier.copy", demo_source.root_variant_id, {"copies": "two"})
    assert not [p for p in problems if p.level == "error"], problems
    assert [s.options for s in steps] == [{"copies": "two"}]
    at = AppTest.from_file(str(REPO / "pages" / "convert.py"), default_timeout=60)
    at.query_params["conversion"] = "copier.copy"
    at.run()
    assert not at.exception
    assert [s.value for s in at.selectbox if s.label == "copies"] == ["one"]
    out = subprocess.run([sys.executable, "cli.py", "convert", "copier.copy", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "--copies {one,two}" in out and "How many copies to write." in out
