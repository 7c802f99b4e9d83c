"""The registry: toolkits, formats and conversions as data, hooks as explicit references, one
gate concept, and a toolkit from outside registering the way the built-in ones do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends import registry
from backends.registry import RUNS_ON, Conversion, Format, Gate, Option, Toolkit
from catalog.config import PROJECT_DIR
from catalog.errors import InvalidInputError

TOOLKIT_PACKAGES = ("torch", "transformers", "onnx", "onnxruntime", "onnxruntime_genai", "llama_cpp", "gguf")


def test_loading_every_declaration_imports_no_toolkit() -> None:
    code = ("import sys; from backends import registry; registry.conversions(); registry.formats(); "
            f"print([m for m in {TOOLKIT_PACKAGES!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_every_conversion_names_its_hooks_a_gate_and_a_target() -> None:
    for conv in registry.conversions():
        assert callable(conv.convert), conv.key
        for hook in (conv.validate, conv.plan):
            assert hook is None or callable(hook), conv.key
        assert conv.runs_on in RUNS_ON, conv.key
        # Everything that makes a model is smoke-tested against a gate; only data outputs have none.
        output = registry.get_format(conv.output_format)
        assert (conv.gate is None) == (output.open_runner is None and output.open_encoder_classifier is None), conv.key
        for fmt in conv.input_formats:
            registry.get_format(fmt)  # every input format is declared by some toolkit


def test_gates_depend_on_the_declared_precision() -> None:
    quantize = registry.get_conversion("llamacpp.quantize")

    class Parent:
        format, precision = "hf", "F32"

    q8 = quantize.gate_for({"types": ["Q8_0"]}, Parent())
    q4 = quantize.gate_for({"types": ["Q4_K_M"]}, Parent())
    assert q8.metric == q4.metric == "top1_agreement" and q8.minimum > q4.minimum
    assert registry.get_conversion("onnxrt.export").gate_for({}, Parent()) == Gate(
        "output_agreement", 0.999, registry.get_conversion("onnxrt.export").gate.hint)
    assert Gate("x", 0.5).passes(0.5) and not Gate("x", 0.5).passes(0.49) and not Gate("x", 0.5).passes(float("nan"))


def test_main_files_and_run_snippets_come_from_the_format() -> None:
    gguf, genai, hf = (registry.get_format(n) for n in ("gguf", "onnx-genai", "hf"))
    folder = Path("/v")
    assert gguf.main_file(folder, ["model-Q8_0.gguf", "README.md"]) == folder / "model-Q8_0.gguf"
    assert genai.main_file(folder, ["model.onnx", "model.onnx.data", "genai_config.json"]) == folder / "model.onnx"
    assert hf.main_file(folder, ["config.json", "model.safetensors"]) == folder
    assert "model-Q8_0.gguf" in gguf.run_snippet("text-generation", "model-Q8_0.gguf")
    onnx = registry.get_format("onnx")
    assert "cosine" in onnx.run_snippet("feature-extraction", "model.onnx")
    assert "predicted class" in onnx.run_snippet("image-classification", "model.onnx")
    with pytest.raises(InvalidInputError, match="No installed toolkit knows the format"):
        registry.get_format("tflite")


def test_imports_are_recognised_by_the_toolkit_that_claims_them(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert registry.recognise_import(tmp_path / "m.gguf").name == "gguf"
    assert registry.recognise_import(tmp_path / "m.onnx").name == "onnx-genai"  # the ONNX check tells them apart
    assert registry.recognise_import(hf).name == registry.FALLBACK_IMPORT_FORMAT
    assert registry.importable_kinds().startswith("a .gguf file, a .onnx file")
    assert registry.importable_kinds().endswith(" or a folder with config.json and safetensors")
    assert {"gguf", "onnx", "safetensors"} <= set(registry.upload_suffixes())


def test_a_toolkit_from_outside_registers_like_the_built_in_ones() -> None:
    def convert(*args: object) -> None:
        raise AssertionError("not run here")

    fmt = Format(name="tflite", title="TensorFlow Lite", runtime="LiteRT", main_suffix=".tflite",
                 runtime_imports=("ai_edge_litert",))
    conv = Conversion(backend="litert", name="from_onnx", title="ONNX → TFLite", input_formats=("onnx",),
                      output_format="tflite", options=(Option("opt", "bool", False),), packages=("ai_edge_litert",),
                      convert=convert, gate=Gate("output_agreement", 0.9), runs_on="cpu")
    registry.register_toolkit(Toolkit(name="litert", title="LiteRT", runtime="LiteRT CPU", packages=("ai_edge_litert",),
                                      distributions=("ai-edge-litert",), formats=(fmt,), conversions=(conv,)))
    try:
        assert registry.get_conversion("litert.from_onnx") is conv
        assert conv in registry.conversions("onnx")
        assert registry.get_format("tflite").main_file(Path("/v"), ["m.tflite"]) == Path("/v/m.tflite")
        assert registry.toolkit_versions("litert") == {"ai-edge-litert": "missing"}
        assert conv.missing_packages() == ["ai_edge_litert"]
    finally:
        del registry.TOOLKITS["litert"]
    with pytest.raises(InvalidInputError):
        registry.get_conversion("litert.from_onnx")


def test_a_parents_smoke_side_is_computed_once_and_kept(root: Path) -> None:
    from backends.smoke import cached_outputs

    calls = []

    def compute() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"outputs": np.arange(6, dtype=np.float32).reshape(2, 3), "generations": np.asarray(["a", "b"])}

    class Parent:
        id = "v-parent"

    first = cached_outputs(Parent(), {"probe": "x"}, compute)
    again = cached_outputs(Parent(), {"probe": "x"}, compute)
    other = cached_outputs(Parent(), {"probe": "y"}, compute)  # other inputs or runtime: computed again
    assert len(calls) == 2
    assert np.array_equal(first["outputs"], again["outputs"]) and list(again["generations"]) == ["a", "b"]
    assert other["outputs"].shape == (2, 3)
    kept = list((root / "cache" / "smoke" / "v-parent").glob("*.npz"))
    assert len(kept) == 2 and not list((root / "cache" / "smoke" / "v-parent").glob(".*"))
    # a kept file cut short (a killed job, a full disk) is computed again and written whole
    kept[0].write_bytes(kept[0].read_bytes()[:100])
    cached_outputs(Parent(), {"probe": "x"}, compute)
    cached_outputs(Parent(), {"probe": "y"}, compute)
    assert len(calls) == 3 and all(p.stat().st_size > 100 for p in kept)


# The rule convert_job._label followed when it listed every toolkit's option names itself.
OLD_LABEL_OPTIONS = ("types", "outtype", "dtype", "calibration", "precision", "weight_format", "mode")
OLD_TOOLKITS = ("hf", "llamacpp", "onnxrt", "openvino")


def _old_label(conv: Conversion, options: dict) -> str:
    # less the options no step read (issue 25: "calibration=shipped" where no calibration ran)
    detail = ", ".join(f"{k}={v if not isinstance(v, list) else '+'.join(map(str, v))}"
                       for k, v in options.items() if k in OLD_LABEL_OPTIONS and k not in conv.unused_options(options))
    return f"{conv.title.split(' (')[0]} [{detail}]"


def test_each_conversion_names_its_label_options_and_job_titles_are_unchanged() -> None:
    from backends.convert_job import _label

    for conv in registry.conversions():
        assert set(conv.label_options) <= {o.name for o in conv.options}, conv.key
        defaults = conv.normalize({})
        variants = [defaults] + [dict(defaults, **{o.name: list(o.choices[-1:]) if o.type == "multichoice"
                                                   else o.choices[-1]})
                                 for o in conv.options if o.choices]
        for options in variants:
            step = type("Step", (), {"conversion": conv, "options": options, "extra_inputs": {}})()
            assert _label(step) == conv.step_title(options), (conv.key, options)
            if conv.backend in OLD_TOOLKITS:  # toolkits added since name their own label options
                assert _label(step) == _old_label(conv, options), (conv.key, options)
    quantize = registry.get_conversion("llamacpp.quantize")
    assert quantize.step_title({"types": ["IQ2_XXS"], "imatrix": "auto", "calibration": "shipped",
                                "input:imatrix": "v-m"}) == "GGUF → quantized GGUF [types=IQ2_XXS, calibration=shipped]"
    assert quantize.label_detail({"types": ["Q4_K_M", "Q8_0"]}) == "types=Q4_K_M+Q8_0"
    with pytest.raises(ValueError, match="label_options names no option 'typo'"):
        Conversion(backend="x", name="y", title="Y", input_formats=(), output_format="hf", options=(),
                   packages=(), convert=print, label_options=("typo",))


def test_a_calibration_no_step_read_is_named_nowhere() -> None:
    """Issue 25: "calibration=shipped" in the titles, recipes and cards of a Q8_0 (no importance
    matrix) and of an NNCF INT4 without AWQ, GPTQ or scale estimation."""
    from backends.convert_job import _label
    from catalog.model_card import shown_recipe

    quantize = registry.get_conversion("llamacpp.quantize")
    q8 = quantize.normalize({"types": ["Q8_0"]})
    assert quantize.step_title(q8) == "GGUF → quantized GGUF [types=Q8_0]"
    matrix_step = type("Step", (), {"conversion": quantize, "options": quantize.normalize({"types": ["IQ2_XXS"]}),
                                    "extra_inputs": {"imatrix": "v-matrix"}})()
    assert _label(matrix_step) == "GGUF → quantized GGUF [types=IQ2_XXS, calibration=shipped]"
    compress = registry.get_conversion("openvino.compress_weights")
    plain = compress.normalize({})
    assert compress.unused_options(plain) == ["calibration"] and "calibration" not in compress.label_detail(plain)
    assert compress.unused_options(compress.normalize({"awq": True})) == []
    assert registry.unused_recipe_options("llamacpp", "quantize", q8) == ["calibration"]
    assert registry.unused_recipe_options("hf", "import", {}) == []
    options, note = shown_recipe(q8, ["calibration"])
    assert "calibration" not in options and "`calibration`" in note and "no calibration ran" in note
    assert shown_recipe(q8, []) == (q8, "")
    assert "importance matri" not in compress.option("calibration").upload_label  # NNCF's own words
    assert "AWQ" in compress.option("calibration").upload_label


def test_hub_patterns_and_offline_variables_come_from_the_toolkits() -> None:
    from catalog import config

    # The same files as when the Hub import listed them itself.
    assert registry.hub_patterns() == ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.md", "*.gguf"]
    generic = config.offline_environment()
    assert generic["HF_HUB_OFFLINE"] == "1" and "OPENVINO_TELEMETRY_OPT_OUT" not in generic
    # The same variables as when catalog/config.py listed every toolkit's, plus ONNX Runtime's own
    # (1.32 writes a telemetry id under ~/.cache/Microsoft unless ORT_DISABLE_TELEMETRY is set).
    assert registry.offline_environment() == generic | {"OLIVE_DISABLE_TELEMETRY": "1",
                                                        "OPENVINO_TELEMETRY_OPT_OUT": "1",
                                                        "NNCF_DISABLE_TELEMETRY": "1",
                                                        "ORT_DISABLE_TELEMETRY": "1"}
    import os

    assert all(os.environ.get(k) for k in ("OPENVINO_TELEMETRY_OPT_OUT", "NNCF_DISABLE_TELEMETRY"))  # on registering


def test_the_test_processes_record_no_runtime_telemetry(tmp_path: Path) -> None:
    """onnxruntime 1.32 writes a device id and an event database (SQLite, 89 events after a morning
    of tests) under the user's cache on import unless ORT_DISABLE_TELEMETRY is set: the tests set
    what every entry point sets, before any test module imports a runtime."""
    import os
    import subprocess
    import sys

    # onnxruntime records nothing on a machine it takes for a CI runner (CI=true, GITHUB_ACTIONS, ...
    # read from its library's strings; CI's run set one): without them the check means something there.
    ci_markers = {"CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL",
                  "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER"}
    env = {k: v for k, v in os.environ.items() if k not in ci_markers}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path))
    (tmp_path / "intel").mkdir()
    (tmp_path / "intel" / "openvino_telemetry").write_text("0")  # what setup's OpenVINO step records
    code = "import onnxruntime, onnxruntime_genai, openvino"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, timeout=300)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["openvino_telemetry"]
    # the check can fail: without the variable the same import writes there
    bare = {k: v for k, v in env.items() if k != "ORT_DISABLE_TELEMETRY"}
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=bare, check=True, capture_output=True, timeout=300)
    assert (tmp_path / "cache" / "Microsoft").is_dir()


def test_setup_runs_each_toolkits_steps_that_are_not_done(monkeypatch: pytest.MonkeyPatch) -> None:
    from backends import setup_steps
    from backends.registry import SetupStep

    assert [s.title for t in registry.toolkits() for s in t.setup_steps] == ["opting out of OpenVINO telemetry"]
    ran: list[str] = []
    state = {"done": False}

    def run() -> None:
        ran.append("x")
        state["done"] = True

    step = SetupStep("doing x", done=lambda: state["done"], run=run)
    fake = Toolkit(name="fake", title="Fake", runtime="Fake CPU", packages=(), distributions=(), setup_steps=(step,))
    monkeypatch.setattr(setup_steps, "toolkits", lambda: [fake])
    assert setup_steps.run_setup_steps() == ["doing x"]
    assert setup_steps.run_setup_steps() == [] and ran == ["x"]  # a warm setup does nothing
