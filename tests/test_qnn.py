"""Qualcomm QNN through onnxruntime-qnn, for real: the digits CNN's ONNX export quantized to QDQ
for the HTP backend (a simulator on x86_64) and run there with CPU fallback off; its node
coverage; a context binary made and loaded; the QNN overrides JSON round trip; and the bad
inputs pre-flight or the job refuses in one sentence."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from backends import convert_job
from backends.preflight import errors

pytestmark = pytest.mark.slow

DIGITS_QDQ = {"activation_type": "uint8", "weight_type": "int8", "per_channel": True, "fixed_shapes": "batch=1",
              "samples": 16}


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("qnn") / "data"


@pytest.fixture(scope="module")
def digits_qdq(digits_root: Path):
    """The digits CNN (trained here in seconds), its ONNX export, the QDQ variant for the HTP and its
    context binary, made once in this module's data root (lighter than the session's tensor models)."""
    from backends.importers import ImportRequest, import_now
    from catalog import variants
    from tests.helpers.chain import convert, data_root_at

    with data_root_at(digits_root, allowed_roots=[str(digits_root.parent)]):
        source = import_now(ImportRequest(kind="demo", example="digits-cnn"))
        [fp32] = convert("onnxrt.export", source.root_variant_id)
        [qdq] = convert("qnn.quantize", fp32.id, **DIGITS_QDQ)
        [context] = convert("qnn.context_binary", qdq.id)
        return {"fp32": fp32, "qdq": variants.get_variant(qdq.id), "context": context}


@pytest.fixture
def in_root(digits_root: Path, digits_qdq, monkeypatch: pytest.MonkeyPatch) -> dict:
    from catalog import config, db

    monkeypatch.setenv(config.ROOT_ENV, str(digits_root))
    db.reset_migration_cache()
    return digits_qdq


def _problems(conversion: str, variant_id: str, **options) -> list[str]:
    _, problems = convert_job.plan(conversion, variant_id, options)
    return errors(problems)


def test_digits_qdq_runs_on_the_htp_simulator_with_fallback_off(in_root) -> None:
    from backends.registry import main_file
    from bench.fingerprint import device_class

    qdq = in_root["qdq"]
    assert qdq.format == "qnn" and qdq.precision == "QDQ A8W8" and qdq.parent_id == in_root["fp32"].id
    meta = qdq.metadata
    assert meta["cpu_fallback"] is False and meta["fixed_shapes"] == {"pixel_values": [1, 1, 8, 8]}
    assert "QuantizeLinear" in meta["ops"] and meta["qnn_sdk"].count(".") == 2
    assert meta["smoke"]["score"] >= 0.85  # the smoke test ran it on the HTP backend, fallback off
    # The runner names the simulator, which the fingerprint keeps as its own device class.
    from backends.qnn.runner import load

    runner = load(main_file(qdq), "image-classification", threads=1)
    try:
        assert runner.runtime == "QNN HTP simulator" and device_class(runner.runtime) == "QNN HTP simulator"
        logits = runner.raw({"pixel_values": np.zeros((3, 1, 8, 8), dtype=np.float32)})  # batch 3 on a batch-1 model
        assert logits.shape == (3, 10)
    finally:
        runner.close()


# With the session's MiniLM (made in test_onnx_tensor's group, so this test runs on that worker).
@pytest.mark.xdist_group("test_onnx_tensor")
def test_minilm_qdq_runs_on_the_htp_simulator_with_fallback_off(tensor_models) -> None:
    """MiniLM, A16W8 at batch 1 and 64 tokens (the smoke test's sentence length; half the simulator
    time of 128): every node on the HTP simulator with fallback off, smoke-tested on 16 real
    sentences, cosine above the gate."""
    from tests.helpers.chain import convert

    fp32 = tensor_models["minilm"]["fp32"]
    [qdq] = convert("qnn.quantize", fp32.id, activation_type="uint16", weight_type="uint8",
                    fixed_shapes="batch=1, sequence=64", samples=8)
    meta = qdq.metadata
    assert qdq.precision == "QDQ A16W8" and meta["cpu_fallback"] is False
    assert meta["fixed_shapes"]["input_ids"] == [1, 64]
    assert meta["smoke"]["samples"] == 16 and meta["smoke"]["score"] >= 0.9 == meta["smoke"]["min_score"]
    report = meta["coverage"]
    assert report["nodes"] > 700 and report["blocking_op_types"] == []
    assert {"MatMul", "Softmax", "LayerNormalization", "Gelu"} <= {op for op, n in report["by_op_type"].items()
                                                                   if n["htp"] > 0}


def test_node_coverage_is_recorded_on_the_variant(in_root) -> None:
    report = in_root["qdq"].metadata["coverage"]
    assert report["device"] == "QNN HTP simulator"
    assert report["nodes"] == report["htp_nodes"] + report["cpu_nodes"] and report["htp_nodes"] > 20
    assert report["by_op_type"]["Conv"] == {"htp": 2, "cpu": 0}
    # With fallback allowed ORT leaves only the graph-boundary quantize/dequantize on the CPU.
    assert set(report["cpu_op_types"]) <= {"QuantizeLinear", "DequantizeLinear"} and report["blocking_op_types"] == []


def test_context_binary_is_made_and_loaded(in_root) -> None:
    import onnx

    from backends.registry import main_file

    context = in_root["context"]
    assert context.format == "qnn-context" and context.parent_id == in_root["qdq"].id
    graph = onnx.load(str(main_file(context))).graph
    assert [n.op_type for n in graph.node] == ["EPContext"]
    assert context.metadata["smoke"]["score"] >= 0.99 and context.metadata["load_s"] < 5
    assert context.metadata["run_here"].startswith("compiled here and run on the QNN HTP simulator")
    # Another architecture: compiled here and labelled as not run on a device.
    steps, problems = convert_job.plan("qnn.context_binary", in_root["qdq"].id, {"soc": "SM8650"})
    assert not errors(problems) and any("not run on a device" in p.message for p in problems)
    assert steps[0].options["soc"] == "SM8650"


def test_overrides_json_round_trips_through_tensor_quant_overrides(in_root, tmp_path: Path) -> None:
    from backends.encoder_classifier_calibration import calibration_samples
    from backends.qnn import overrides
    from backends.qnn import quantize as qdq
    from backends.registry import main_file

    model = main_file(in_root["qdq"])
    written = json.loads((model.parent / overrides.OVERRIDES_FILE).read_text())
    weight = next(e for k, e in written["param_encodings"].items() if k.endswith("weight"))
    # QNN's sign: offset = round(min / scale), so an int8 symmetric weight reads offset -128.
    assert weight[0]["bitwidth"] == 8 and weight[0]["offset"] == -128 and weight[0]["is_symmetric"] == "True"
    act = written["activation_encodings"]["pixel_values"][0]
    assert act["offset"] == round(act["min"] / act["scale"]) <= 0
    # Back through onnxruntime's TensorQuantOverrides: quantizing again reproduces every encoding.
    fixed = tmp_path / "fixed.onnx"
    shapes = qdq.fix_shapes(main_file(in_root["fp32"]), fixed, {"batch": 1})
    feeds = calibration_samples("image-classification", tmp_path, "shipped", 4, list(shapes))
    again = tmp_path / "again.onnx"
    read_back = overrides.read(model.parent / overrides.OVERRIDES_FILE)
    qdq.quantize_qdq(fixed, again, feeds, "uint8", "int8", True, read_back)
    assert overrides.encodings(again) == written
    # Mixed precision: MatMul outputs kept at 16 bits.
    mixed = tmp_path / "mixed.onnx"
    qdq.quantize_qdq(fixed, mixed, feeds, "uint8", "uint8", False, qdq.sixteen_bit_overrides(fixed, ["MatMul"], []))
    bits = {k: v[0]["bitwidth"] for k, v in overrides.encodings(mixed)["activation_encodings"].items()}
    assert 16 in bits.values() and 8 in bits.values() and bits["pixel_values"] == 8


def test_bad_input_is_refused_before_a_job(in_root, tmp_path: Path) -> None:
    from catalog import config

    fp32, qdq = in_root["fp32"], in_root["qdq"]
    # A dynamic-shaped model with no fixed shape given: the axes are named.
    [msg] = _problems("qnn.quantize", fp32.id)
    assert "dynamic axes: pixel_values (batch)" in msg and "batch=1" in msg
    assert "no dynamic axis named sequence" in _problems("qnn.quantize", fp32.id, fixed_shapes="batch=1, sequence=8")[0]
    # FP32 on the HTP: refused with the reason.
    [msg] = _problems("qnn.context_binary", fp32.id)
    assert msg.startswith("This model is F32") and "QNN_COMMON_ERROR_MEM_ALLOC" in msg
    # An SoC the SDK does not know.
    [msg] = _problems("qnn.context_binary", qdq.id, soc="SM9999")
    assert "knows no SoC named SM9999" in msg
    # A calibration file of the wrong shape.
    bad = Path(str(config.data_root())).parent / "qnn-bad-calibration.npy"
    np.save(bad, np.zeros((4, 1, 7, 7), dtype=np.float32))
    try:
        [msg] = _problems("qnn.quantize", fp32.id, fixed_shapes="batch=1", calibration=str(bad))
        assert "shape (4, 1, 7, 7)" in msg and "(n, 1, 8, 8)" in msg
    finally:
        bad.unlink()


def test_an_op_the_htp_cannot_take_fails_naming_it(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from backends.qnn import ep
    from catalog.errors import InvalidInputError

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Hardmax", ["r"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])])
    path = tmp_path / "hardmax.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(InvalidInputError, match=r"cannot take the operator Hardmax of hardmax\.onnx, and CPU "
                                                r"fallback is off"):
        ep.open_without_fallback(path)
    report = ep.coverage(path)  # with fallback on, it runs: Relu on the HTP, Hardmax on the CPU
    assert report["by_op_type"] == {"Relu": {"htp": 1, "cpu": 0}, "Hardmax": {"htp": 0, "cpu": 1}}


def test_benchmark_on_the_simulator_next_to_the_cpu_ep(in_root) -> None:
    from bench.fingerprint import device_class
    from bench.jobs.common import submit_benchmarks
    from catalog import results
    from worker.runner import run_to_completion

    qdq = in_root["qdq"]
    for options in ({}, {"qnn_provider": "cpu"}):
        for sub in submit_benchmarks([qdq.id], "quick", runtime_options=options):
            job = run_to_completion(sub.job.id)
            assert job.state == "succeeded", job.error
    by_device = {device_class(r.fingerprint["target"]): r for r in results.results_for_variant(qdq.id)}
    sim, cpu = by_device["QNN HTP simulator"], by_device["CPU"]
    assert sim.fingerprint["qnn_sdk"] == qdq.metadata["qnn_sdk"] and sim.fingerprint_id != cpu.fingerprint_id
    assert cpu.fingerprint["runtime_options"] == {"qnn_provider": "cpu"}
    for r in (sim, cpu):
        m = r.metrics
        assert m["latency_ms_p50"] > 0 and m["accuracy"] > 0.9 and m["top1_agreement"] > 0.95
        assert 0 < m["max_abs_error"] < 1
    # each scored where it was timed: the CPU EP's result from the CPU EP's outputs
    from backends.encoder_classifier_quality import predict
    from backends.registry import main_file
    from bench.jobs.common import reference_variant
    from bench.jobs.encoder_classifier import held_out_feeds, protocol_of, quality, reference_outputs

    protocol = protocol_of("qnn", "image-classification", "quick")
    reference = reference_variant(qdq.source_id)
    feeds = held_out_feeds(protocol, reference)
    for r, options in ((sim, {}), (cpu, {"qnn_provider": "cpu"})):
        own = quality(protocol.task, reference_outputs(reference, protocol, feeds),
                      predict("qnn", main_file(qdq), protocol.task, feeds, protocol.threads, options))
        assert r.metrics["max_abs_error"] == pytest.approx(own["max_abs_error"], abs=1e-6), options


def test_a_device_bundle_of_onnx_openvino_and_qnn_variants_scores_like_the_catalog(in_root, tmp_path: Path) -> None:
    """Issue 26's encoder/classifier bundles: the digits CNN as ONNX FP32, OpenVINO IR, QDQ for the
    HTP and its context binary run by the bundle's own script in a process that cannot import this
    project (the HTP here is the simulator, a Snapdragon's NPU on the device); their raw outputs
    are scored at import against the reference and give the figures this catalog's runners give
    on the same held-out inputs. A result of another protocol or with malformed outputs is refused."""
    import copy
    import subprocess
    import sys

    from backends.encoder_classifier_quality import predict
    from backends.registry import main_file
    from bench.jobs.common import reference_variant
    from bench.jobs.encoder_classifier import held_out_feeds, protocol_of, quality, reference_outputs
    from catalog import results, variants
    from catalog.access import local_admin
    from catalog.errors import InvalidInputError
    from service import actions
    from tests.helpers.bundles import bare_env, bundle_and_run
    from tests.helpers.chain import convert

    [ir] = convert("openvino.convert_onnx", in_root["fp32"].id)
    made = {"onnx": in_root["fp32"], "openvino": ir, "qnn": in_root["qdq"], "qnn-context": in_root["context"]}
    zipped, folder, run_s = bundle_and_run([v.id for v in made.values()], tmp_path)
    probe = subprocess.run([sys.executable, "-I", "-c", "import backends"], cwd=folder, env=bare_env(),
                           capture_output=True, text=True, check=False)
    assert probe.returncode != 0  # the bundle's environment cannot import this project
    for fmt in ("onnx", "openvino", "qnn"):
        text = (folder / "runners" / f"{fmt}.py").read_text()
        assert not any(f"{word} " in text for word in ("from catalog", "import catalog", "from bench", "from backends"))
    result = json.loads((folder / "result.json").read_text())
    targets = {e["format"]: e["raw"]["target"] for e in result["variants"]}
    assert targets == {"onnx": "ONNX Runtime CPU", "openvino": "OpenVINO CPU (LATENCY)",
                       "qnn": "QNN HTP simulator", "qnn-context": "QNN HTP simulator"}

    def stored() -> int:
        return sum(len(results.results_for_variant(v.id)) for v in made.values())

    before = stored()
    imported = results.results_by_id(actions.import_result(local_admin(), "result.json",
                                                           (folder / "result.json").read_bytes()))
    reference = reference_variant(in_root["fp32"].source_id)
    for dev in imported:
        variant = variants.get_variant(dev.variant_id)
        protocol = protocol_of(variant.format, "image-classification", "quick")
        feeds = held_out_feeds(protocol, reference)
        own = quality(protocol.task, reference_outputs(reference, protocol, feeds),
                      predict(variant.format, main_file(variant), protocol.task, feeds, threads=protocol.threads))
        assert dev.flags[:2] == ["imported", "device_run"] and dev.protocol_id == protocol.id
        assert dev.metrics["scored_samples"] == own["scored_samples"] == 449  # the digits test set
        assert dev.metrics["accuracy"] == pytest.approx(own["accuracy"], abs=1e-9), dev.runtime
        assert dev.metrics["top1_agreement"] == pytest.approx(own["top1_agreement"], abs=1e-9)
        assert dev.metrics["max_abs_error"] == pytest.approx(own["max_abs_error"], abs=1e-5)
        assert dev.metrics["latency_ms_p50"] > 0 and dev.metrics["throughput_per_s"] > 0
        assert "outputs" not in dev.raw["device_run"] and dev.raw["device_run"]["outputs_scored"] == [449, 10]
    assert dev.fingerprint["runtime_device"]["device"] == "QNN HTP simulator"
    # a QNN bundle carries what the binary was compiled for, and the device reports its own SDK
    context = next(r for r in imported if r.variant_id == made["qnn-context"].id)
    assert context.fingerprint["made_for"]["htp_arch"] == made["qnn-context"].metadata["htp_arch"]
    assert context.fingerprint["made_for"]["qnn_sdk"] == context.fingerprint["runtime_device"]["qnn_sdk"]

    def changed(edit) -> bytes:
        data = copy.deepcopy(result)
        edit(data)
        return json.dumps(data).encode()

    cases = {
        "another protocol": (lambda d: d["variants"][2]["protocol"].update(id="p-000000000000"),
                             "under protocol p-000000000000.* make a new bundle"),
        "malformed outputs": (lambda d: d["variants"][0]["raw"]["outputs"].pop(), "outputs for .* are malformed"),
        "ragged outputs": (lambda d: d["variants"][0]["raw"]["outputs"][3].append(1.0), "are malformed"),
        "a quality figure with no outputs": (
            lambda d: (d["variants"][1]["raw"].pop("outputs"), d["variants"][1].update(metrics={"accuracy": 1.0})),
            "claims accuracy .* no raw output"),
        "no latencies": (lambda d: d["variants"][0]["raw"].update(latencies_s=[]), "latencies for .* missing"),
    }
    assert stored() == before + 4
    for what, (edit, sentence) in cases.items():
        with pytest.raises(InvalidInputError, match=sentence):
            actions.import_result(local_admin(), "result.json", changed(edit))
        assert stored() == before + 4, what
    # NaN outputs on the device are stored as failed, with no quality figure made up from them
    nan = changed(lambda d: d["variants"][0]["raw"]["outputs"][0].__setitem__(0, float("nan")))
    again = results.results_by_id(actions.import_result(local_admin(), "result.json", nan))
    failed = next(r for r in again if r.variant_id == result["variants"][0]["id"])
    assert "nonfinite_outputs" in failed.flags and "accuracy" not in failed.metrics
    assert failed.metrics["nonfinite_share"] == pytest.approx(1 / 449)
    logging.getLogger(__name__).info(
        "bundle %.1f MB run in %.1f s: %s", zipped.stat().st_size / 2**20, run_s,
        ", ".join(f"{r.runtime} p50 {r.metrics['latency_ms_p50']:.2f} ms" for r in imported))
