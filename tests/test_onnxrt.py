"""Real ONNX Runtime GenAI conversion of the demo model: build int4 with the model builder, check,
smoke-test and benchmark it beside the GGUF chain; refuse unverified precisions in pre-flight."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backends import convert_job
from backends.onnxrt.precisions import GENAI_GATES, PRECISION_LABELS, UNVERIFIED_PRECISIONS
from backends.preflight import errors

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def int4(chain_data, shared_root: Path):
    """The demo model's int4 ONNX GenAI variant, built once for this module."""
    from catalog import config, db
    from tests.helpers.chain import convert

    mp = pytest.MonkeyPatch()
    mp.setenv(config.ROOT_ENV, str(shared_root))
    db.reset_migration_cache()
    [variant] = convert("onnxrt.genai_build", chain_data["hf"].id, precision="int4")
    yield variant
    mp.undo()


def test_declared_precisions_are_the_builders_own() -> None:
    import onnxruntime_genai

    from backends.onnxrt.genai_build import builder_architectures

    source = (Path(onnxruntime_genai.__file__).parent / "models" / "builder.py").read_text()
    offered = set(re.findall(r'choices=\[("int4"[^\]]*)\]', source)[0].replace('"', "").replace(" ", "").split(","))
    assert set(PRECISION_LABELS) <= offered
    assert "LlamaForCausalLM" in builder_architectures()


def test_int4_variant_is_a_checked_genai_folder(chain, int4) -> None:
    from catalog.variants import variant_path

    assert int4.format == "onnx-genai" and int4.precision == "INT4" and int4.parent_id == chain["hf"].id
    files = {f.relpath for f in int4.files}
    assert {"genai_config.json", "model.onnx", "model.onnx.data", "tokenizer.json"} <= files
    folder = variant_path(int4)
    assert (folder / "model.onnx").stat().st_size < 2**20  # the weights live in the external data file
    smoke = int4.metadata["smoke"]
    assert smoke["top1_agreement"] >= GENAI_GATES["int4"].minimum and smoke["positions"] > 50
    assert "MatMulNBits" in int4.metadata["ops"] and int4.metadata["opset"]["ai.onnx"] >= 14
    assert int4.toolkit_versions["onnxruntime-genai"] == "0.14.1"


def test_same_recipe_returns_the_same_variant(chain, int4) -> None:
    [planned], problems = convert_job.plan("onnxrt.genai_build", chain["hf"].id, {"precision": "int4"})
    assert not errors(problems)
    assert planned.existing is not None and planned.existing.id == int4.id


@pytest.mark.parametrize("precision", sorted(set(PRECISION_LABELS) - {"int4"}))
def test_every_offered_precision_builds_and_runs_here(chain, shared_root: Path, precision: str) -> None:
    """The allow-list is exercised: each precision offered (int4 has its own fixture) builds, passes
    the checker, runs and meets its smoke-test agreement on this CPU."""
    from catalog import config, db
    from tests.helpers.chain import convert

    mp = pytest.MonkeyPatch()
    mp.setenv(config.ROOT_ENV, str(shared_root))
    db.reset_migration_cache()
    [variant] = convert("onnxrt.genai_build", chain["hf"].id, precision=precision)
    mp.undo()
    label, least = PRECISION_LABELS[precision], GENAI_GATES[precision].minimum
    assert variant.precision == label and variant.metadata["smoke"]["top1_agreement"] >= least


@pytest.mark.parametrize("precision", sorted(UNVERIFIED_PRECISIONS))
def test_unverified_precision_is_refused_in_preflight(chain, precision: str) -> None:
    steps, problems = convert_job.plan("onnxrt.genai_build", chain["hf"].id, {"precision": precision})
    assert steps == []
    [message] = errors(problems)
    assert "not verified here" in message and precision in message


def test_gguf_input_is_refused(chain) -> None:
    _, problems = convert_job.plan("onnxrt.genai_build", chain["quants"]["Q4_K_M"].id, {"precision": "int4"})
    assert any("takes hf input" in m for m in errors(problems))


def test_quick_benchmark_is_comparable_with_the_reference(chain, int4) -> None:
    from bench.jobs.common import submit_benchmarks
    from catalog import results
    from worker.runner import run_to_completion

    [sub] = submit_benchmarks([int4.id], "quick")
    job = run_to_completion(sub.job.id)
    assert job.state == "succeeded", job.error
    # this job's result: another test of the session may have benchmarked the same variant
    [result] = [r for r in results.results_for_variant(int4.id) if r.job_id == job.id]
    m = result.metrics
    assert result.runtime == "ONNX Runtime GenAI CPU"
    # Measured here: perplexity 26.6 against 20.0 for FP32 (GGUF Q4_K_M: 22.4).
    assert m["reference_perplexity"] < m["perplexity"] < 1.4 * m["reference_perplexity"]
    assert m["top1_agreement"] > 0.55 and m["decode_tps_p50"] > 1
    assert m["size_mb"] < 0.5 * chain["hf"].size_bytes / 2**20


@pytest.mark.parametrize("provider", ["cuda", "qnn", "tensorrt"])
def test_unverified_provider_is_refused(provider: str) -> None:
    from backends.registry import get_conversion
    from catalog.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=f"execution provider {provider} is not verified here"):
        get_conversion("onnxrt.genai_build").normalize({"execution_provider": provider})


def test_cli_explains_an_unverified_precision(chain, shared_root: Path) -> None:
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "cli.py", "convert", "onnxrt.genai_build", chain["hf"].id,
                           "--precision", "fp16", "--check"], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "MODEL_CATALOG_HOME": str(shared_root)}, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "fp16 is not verified here" in proc.stderr and "Cast buffer" in proc.stderr
    assert "invalid choice" not in proc.stderr
