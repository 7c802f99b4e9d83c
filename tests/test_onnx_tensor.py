"""Encoders and image classifiers through ONNX Runtime, for real: the digits CNN (trained here on
scikit-learn's digits) and the real all-MiniLM-L6-v2 encoder are imported, exported to ONNX,
quantized three ways (dynamic INT8, static INT8 QDQ, INT4 weight-only) plus FP16, smoke-tested
and benchmarked on the quick protocol against their FP32 PyTorch form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backends import convert_job, registry
from backends.preflight import errors

pytestmark = pytest.mark.slow


def test_digits_cnn_is_a_real_classifier(tensor_models) -> None:
    made = tensor_models["digits-cnn"]
    assert made["source"].task == "image-classification" and made["source"].license == "bsd-3-clause"
    fp32 = made["fp32"]
    assert fp32.format == "onnx" and fp32.precision == "F32"
    assert fp32.metadata["inputs"][0]["shape"][0] == "batch"  # dynamic batch axis
    base = made["results"][made["root"]].metrics
    assert base["accuracy"] > 0.95 and base["top1_agreement"] == 1.0


@pytest.mark.parametrize("example", ["digits-cnn", "minilm"])
def test_quantized_variants_are_smaller_and_agree(tensor_models, example: str) -> None:
    made = tensor_models[example]
    fp32 = made["fp32"]
    assert made["int4"].metadata["matmul_nbits_nodes"] > 0 and "MatMulNBits" in made["int4"].metadata["ops"]
    assert "QuantizeLinear" in made["static"].metadata["ops"]
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & set(made["dynamic"].metadata["ops"])
    for name in ("dynamic", "static", "int4", "fp16"):
        variant = made[name]
        assert variant.parent_id == fp32.id and variant.size_bytes < fp32.size_bytes, name
        assert variant.metadata["smoke"]["score"] >= variant.metadata["smoke"]["min_score"], name
    results = made["results"]
    for name in ("fp32", "dynamic", "static", "int4"):
        metrics = results[made[name].id].metrics
        assert metrics["latency_ms_p50"] > 0 and metrics["memory_rise_mb"] > 0 and metrics["size_mb"] > 0
        assert 0.5 < metrics["quality_retention"] <= 1.0 + 1e-6
    assert results[fp32.id].metrics["quality_retention"] > 0.999  # the export is exact


def test_encoder_quality_is_cosine_similarity(tensor_models) -> None:
    made = tensor_models["minilm"]
    assert made["source"].task == "feature-extraction"
    shape = made["fp32"].metadata["inputs"][0]["shape"]
    assert shape == ["batch", "sequence"]
    metrics = made["results"][made["dynamic"].id].metrics
    assert 0.9 < metrics["cosine_min"] <= metrics["cosine_mean"] < 1.0
    assert "accuracy" not in metrics  # no labels: agreement with FP32 only


def test_an_encoder_device_bundle_gives_the_catalogs_cosine(tensor_models, tmp_path: Path) -> None:
    """MiniLM's dynamic INT8 run from a device bundle (issue 26): the bundle ships the sentences as
    token ids, the device mean-pools its hidden states as the catalog does, and the import scores
    them against the reference: the cosine is the catalog's own quick run's."""
    import json

    from catalog import results
    from catalog.access import local_admin
    from service import actions
    from tests.helpers.bundles import bundle_and_run

    made = tensor_models["minilm"]
    own = made["results"][made["dynamic"].id]
    _, folder, _ = bundle_and_run([made["dynamic"].id], tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    n = own.metrics["scored_samples"]  # the benchmark text's sentences, fewer than the protocol's 64
    assert manifest["workload"]["pooling"] == "mean" and manifest["workload"]["samples"] == n
    with np.load(folder / "inputs.npz") as inputs:
        assert set(inputs.files) == {"input_ids", "attention_mask", "token_type_ids"}
        assert inputs["input_ids"].shape == (n, 128)
    [dev] = results.results_by_id(actions.import_result(local_admin(), "result.json",
                                                        (folder / "result.json").read_bytes()))
    assert dev.protocol_id == own.protocol_id and dev.raw["device_run"]["outputs_scored"] == [n, 384]
    for key in ("cosine_mean", "cosine_min"):
        assert dev.metrics[key] == pytest.approx(own.metrics[key], abs=1e-6), key
    assert dev.metrics["latency_ms_p50"] > 0 and dev.metrics["memory_rise_mb"] > 0


def test_bad_calibration_shape_is_refused(tensor_models, tmp_path: Path) -> None:
    from catalog import config

    fp32 = tensor_models["digits-cnn"]["fp32"]
    bad = config.uploads_dir() / "calibration-bad.npy"
    np.save(bad, np.zeros((16, 3, 28, 28), dtype=np.float32))
    _, problems = convert_job.plan("onnxrt.quantize_static", fp32.id, {"calibration": str(bad)})
    [message] = errors(problems)
    assert "shape (16, 3, 28, 28)" in message and "(n, 1, 8, 8)" in message
    text = config.uploads_dir() / "calibration-lines.txt"
    text.write_text("one\ntwo\n" * 8)
    [message] = errors(convert_job.plan("onnxrt.quantize_static", fp32.id, {"calibration": str(text)})[1])
    assert "takes images" in message
    pickled = config.uploads_dir() / "calibration-pickle.npy"
    np.save(pickled, np.array([{"a": 1}] * 10, dtype=object))
    [message] = errors(convert_job.plan("onnxrt.quantize_static", fp32.id, {"calibration": str(pickled)})[1])
    assert "not a readable NumPy array" in message


def test_impossible_and_repeated_quantization_are_refused(tensor_models) -> None:
    made = tensor_models["minilm"]
    [message] = errors(convert_job.plan("onnxrt.quantize_int4", made["fp32"].id,
                                        {"algorithm": "HQQ", "symmetric": True})[1])
    assert "HQQ" in message and "symmetric" in message
    [message] = errors(convert_job.plan("onnxrt.quantize_dynamic", made["static"].id, {})[1])
    assert "already INT8" in message


def test_export_refuses_a_causal_lm(root: Path) -> None:
    from backends.onnxrt.torch_to_onnx import export_task
    from catalog.errors import InvalidInputError
    from tests.helpers.models import tiny_hf_folder

    folder = tiny_hf_folder(root.parent / "tiny")
    with pytest.raises(InvalidInputError, match="ONNX Runtime GenAI"):
        export_task(folder)


def test_imported_onnx_classifier_is_quantized_and_benchmarked_against_itself(tensor_models) -> None:
    """A plain .onnx file (here the CNN's export, copied out) is imported with its task and precision
    read from the graph, quantized, and benchmarked with the imported float model as its baseline."""
    import shutil

    from backends.importers import ImportRequest, import_now
    from bench.jobs.common import reference_variant, submit_benchmarks
    from catalog import config, results, variants
    from tests.helpers.chain import convert
    from worker.runner import run_to_completion

    outside = config.data_root().parent / "outside" / "digits.onnx"
    outside.parent.mkdir(exist_ok=True)
    shutil.copy(registry.main_file(tensor_models["digits-cnn"]["fp32"]), outside)
    source = import_now(ImportRequest(kind="path", path=str(outside), name="digits-onnx"))
    root = variants.get_variant(source.root_variant_id)
    assert source.task == "image-classification" and root.precision == "float"
    [int8] = convert("onnxrt.quantize_dynamic", root.id)
    assert reference_variant(source.id).id == root.id
    for sub in submit_benchmarks([root.id, int8.id], "quick"):
        assert run_to_completion(sub.job.id).state == "succeeded"
    found = {r.variant_id: r.metrics for r in results.latest_results(source.id, "quick")}
    assert found[root.id]["top1_agreement"] == 1.0 and found[int8.id]["accuracy"] > 0.9


def test_entropy_calibration_chooses_its_own_ranges(tensor_models) -> None:
    """quantize_static alone would build its Entropy calibrator with one candidate range (= MinMax);
    ours searches 2,048 bins, so at least some activation scales must differ from MinMax's."""
    import onnx
    from onnx import numpy_helper

    from backends.registry import main_file
    from tests.helpers.chain import convert

    made = tensor_models["digits-cnn"]
    [entropy] = convert("onnxrt.quantize_static", made["fp32"].id, format="QDQ", method="Entropy", samples=32)

    def scales(variant) -> dict[str, np.ndarray]:
        graph = onnx.load(str(main_file(variant))).graph
        return {i.name: numpy_helper.to_array(i) for i in graph.initializer if i.name.endswith("_scale")}

    minmax, kl = scales(made["static"]), scales(entropy)
    assert minmax.keys() == kl.keys()
    assert any(not np.allclose(minmax[k], kl[k]) for k in minmax)
    assert entropy.metadata["calibration_method"] == "Entropy"


def test_uploaded_calibration_images_are_used_and_keyed_by_content(tensor_models) -> None:
    from catalog import config
    from tests.helpers.chain import convert
    from workloads.datasets import digits

    fp32 = tensor_models["digits-cnn"]["fp32"]
    first, second = config.uploads_dir() / "first.npy", config.uploads_dir() / "second.npy"
    for path in (first, second):  # raw 0-16 pixels, (n, 8, 8): scaled and given a channel axis
        np.save(path, (digits().train_images[:16, 0] * 16).astype(np.uint8))
    [a], _ = convert_job.plan("onnxrt.quantize_static", fp32.id, {"calibration": str(first), "samples": 16})
    [b], _ = convert_job.plan("onnxrt.quantize_static", fp32.id, {"calibration": str(second), "samples": 16})
    assert a.target_variant_id == b.target_variant_id  # the same bytes under two names: one recipe
    [variant] = convert("onnxrt.quantize_static", fp32.id, calibration=str(first), samples=16)
    assert variant.metadata["calibration_samples"] == 16 and variant.metadata["calibration"].endswith(".npy")


@pytest.mark.parametrize("example", ["digits-cnn", "minilm"])
def test_exported_run_snippet_runs(tensor_models, example: str, tmp_path: Path) -> None:
    """The RUN.md of an exported ONNX variant is code a user can paste: it runs in the folder."""
    import re
    import subprocess
    import sys

    from backends.export import export_variant

    folder = export_variant(tensor_models[example]["dynamic"].id, tmp_path)
    code = re.search(r"```python\n(.*?)```", (folder / "RUN.md").read_text(), re.S).group(1)
    proc = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("cosine similarity:" if example == "minilm" else "predicted class:") in proc.stdout


@pytest.mark.parametrize("example", ["digits-cnn", "minilm"])
def test_benchmarks_page_compares_and_tries_an_input(tensor_models, example: str) -> None:
    """AppTest of the Benchmarks page on a tensor model: task metrics, held-out examples, and the
    try-it box answered by a runner process for every compared variant."""
    from tests.test_pages import page, texts

    made = tensor_models[example]
    at = page("benchmarks", source=made["source"].id)
    assert not at.exception, at.exception
    assert "Held-out examples" in [s.value for s in at.subheader]
    at.button(key="bm_try_run").click().run()
    assert not at.exception and not at.error, texts(at)
    rows = at.dataframe[-1].value
    assert len(rows) == 5  # the baseline and the four benchmarked ONNX variants
    column = "class" if example == "digits-cnn" else "cosine of the two sentences"
    if example == "digits-cnn":
        assert rows[column].nunique() == 1  # they all read the first held-out digit the same way
    else:
        assert ((rows[column] > 0) & (rows[column] < 1)).all()


def test_convert_page_shows_what_is_not_offered_and_why(tensor_models) -> None:
    from tests.test_pages import page, texts

    made = tensor_models["minilm"]
    at = page("convert", source=made["source"].id, variant=made["root"], conversion="onnxrt.genai_build")
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Not offered here" in shown and "**fp16**" in shown and "**cuda**" in shown
    assert "does not support the architecture BertModel" in shown  # pre-flight, before any job
    at = page("convert", source=made["source"].id, variant=made["fp32"].id, conversion="onnxrt.quantize_static")
    assert not at.exception and "Plan" in texts(at)


def test_a_variant_below_its_gate_is_not_published(tensor_models) -> None:
    """Measured here: true Entropy calibration clips MiniLM's activation outliers (mean cosine about
    0.79 against FP32), below the 0.85 static INT8 gate. The job fails with that sentence and leaves
    no variant row and no files."""
    from catalog import variants
    from catalog.variants import variant_dir
    from worker.runner import run_to_completion

    made = tensor_models["minilm"]
    [sub] = convert_job.submit("onnxrt.quantize_static", made["fp32"].id, {"method": "Entropy", "samples": 32})
    job = run_to_completion(sub.job.id)
    assert job.state == "failed" and "below the 0.85" in job.error and "cosine" in job.error
    assert variants.find_variant(job.target_variant_id) is None
    assert not variant_dir(made["source"].id, job.target_variant_id).exists()
