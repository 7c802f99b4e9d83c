"""Calibration files are inputs like models: read only inside allowed_roots (or uploads), under
a size limit, never copied by a pre-flight check (`--check`), and their copy goes with a job that
failed. Real digits CNN, real static INT8 quantization; the failure is injected into the job."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import cli
from catalog import config, db
from catalog.records import Variant

FAULTS = Path(__file__).resolve().parent / "helpers" / "faults"


@pytest.fixture(scope="module")
def digits_onnx(tmp_path_factory: pytest.TempPathFactory):
    """The digits CNN example imported and exported to ONNX FP32, in a data root of its own."""
    from backends.importers import ImportRequest, import_now
    from tests.helpers.chain import convert

    mp = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("calibration")
    data = base / "data"
    mp.setenv(config.ROOT_ENV, str(data))
    db.reset_migration_cache()
    config.save_settings(config.Settings(allowed_roots=[str(base / "allowed")], lease_timeout_s=10))
    source = import_now(ImportRequest(kind="demo", example="digits-cnn"))
    [fp32] = convert("onnxrt.export", source.root_variant_id)
    yield {"data": data, "allowed": base / "allowed", "fp32": fp32}
    mp.undo()


@pytest.fixture
def onnx_root(digits_onnx, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(config.ROOT_ENV, str(digits_onnx["data"]))
    db.reset_migration_cache()
    return digits_onnx


def _images(path: Path, n: int = 16, scale: int = 16) -> Path:
    """Raw 0-16 digits pixels, (n, 8, 8): a valid calibration array."""
    from workloads.datasets import digits

    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, (digits().train_images[:n, 0] * scale).astype(np.uint8))
    return path


def _kept(root: Path) -> list[str]:
    folder = root / "calibration"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _convert_cli(fp32: Variant, calibration: Path, *extra: str) -> list[str]:
    return ["convert", "onnxrt.quantize_static", fp32.id, "--calibration", str(calibration), "--samples", "16",
            *extra]


def test_check_copies_nothing_and_calibration_outside_the_allowed_folders_is_refused(
        onnx_root, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = _images(tmp_path / "elsewhere" / "images.npy")
    assert cli.main(_convert_cli(onnx_root["fp32"], outside, "--check")) == cli.EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert "outside the folders imports may read from" in error and "allowed_roots" in error
    inside = _images(onnx_root["allowed"] / "images.npy")
    assert cli.main(_convert_cli(onnx_root["fp32"], inside, "--check")) == cli.EXIT_OK
    assert "onnxrt.quantize_static" in capsys.readouterr().out
    assert _kept(onnx_root["data"]) == []  # "pre-flight only" writes nothing


def test_a_calibration_file_over_the_size_limit_is_refused(onnx_root, capsys: pytest.CaptureFixture[str]) -> None:
    settings = config.load_settings()
    config.save_settings(config.Settings(**{**settings.__dict__, "max_calibration_mb": 1}))
    try:
        big = _images(onnx_root["allowed"] / "big.npy", n=1000, scale=16)
        big.write_bytes(big.read_bytes() + b"\0" * 2**21)  # numpy reads the header's count only
        assert cli.main(_convert_cli(onnx_root["fp32"], big)) == cli.EXIT_BAD_INPUT
    finally:
        config.save_settings(settings)
    error = capsys.readouterr().err.strip()
    assert "big.npy is 2.1 MB, over the 1 MB limit" in error and "max_calibration_mb" in error
    assert error.count("\n") == 0 and _kept(onnx_root["data"]) == []


def test_a_failed_job_removes_its_calibration_copy_and_a_made_variant_keeps_its_own(
        onnx_root, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends import convert_job
    from tests.helpers.chain import convert
    from worker.runner import run_to_completion

    used = _images(onnx_root["allowed"] / "used.npy")
    [variant] = convert("onnxrt.quantize_static", onnx_root["fp32"].id, calibration=str(used), samples=16)
    kept = Path(variant.options["calibration"])
    assert _kept(onnx_root["data"]) == [kept.name]

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAULTS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MODEL_CATALOG_TEST_FAULT", "static INT8=tool:/bin/false")
    failing = _images(onnx_root["allowed"] / "failing.npy", n=12)
    [sub] = convert_job.submit("onnxrt.quantize_static", onnx_root["fp32"].id,
                               {"calibration": str(failing), "samples": 12})
    assert len(_kept(onnx_root["data"])) == 2  # copied when submitted
    job = run_to_completion(sub.job.id)
    assert job.state == "failed", job.state
    assert _kept(onnx_root["data"]) == [kept.name]


def test_imatrix_calibration_text_is_checked_copied_at_submit_and_released_on_cancel(
        demo_source, root: Path, tmp_path: Path) -> None:
    """The llama.cpp side: the same checks, one copy for the importance matrix and the quantization
    that share it, gone when the user cancels them."""
    from backends import convert_job
    from backends.preflight import errors
    from catalog import jobs

    words = " ".join(f"word{i}" for i in range(300))
    outside = tmp_path.parent / f"{tmp_path.name}-quotes.txt"
    outside.write_text(words)
    options = {"types": ["IQ2_XXS"], "allow_requantize": True}
    [message] = errors(convert_job.plan("llamacpp.quantize", demo_source.root_variant_id,
                                        dict(options, calibration=str(outside)))[1])
    assert "outside the folders imports may read from" in message
    inside = tmp_path / "quotes.txt"
    inside.write_text(words)
    steps, problems = convert_job.plan("llamacpp.quantize", demo_source.root_variant_id,
                                       dict(options, calibration=str(inside)))
    assert not errors(problems) and [s.conversion.name for s in steps] == ["imatrix", "quantize"]
    assert _kept(root) == []  # a plan (the Convert page, `--check`) copies nothing
    subs = convert_job.submit("llamacpp.quantize", demo_source.root_variant_id, dict(options, calibration=str(inside)))
    assert _kept(root) == [Path(steps[0].options["calibration"]).name]  # one copy for both jobs
    jobs.cancel(subs[0].job.id)
    assert jobs.get_job(subs[1].job.id).state == "failed"  # with its parent
    assert _kept(root) == []
