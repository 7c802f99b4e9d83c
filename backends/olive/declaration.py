"""Microsoft Olive: its conversions, declared as data (no Olive import until a hook runs).

Olive's results are ONNX Runtime GenAI folders, so they become variants of the ONNX Runtime
toolkit's onnx-genai format and are benchmarked by its runner; Olive, its version and the workflow
config (with its passes) are the recipe. Olive runs only as `python -m backends.olive.launch`,
which keeps its telemetry from ever starting (see launch.py); ONNX Runtime's own telemetry is
turned off by the ONNX Runtime toolkit's offline variables.

Admin switch, in the data root's config.json: {"toolkit_settings": {"olive": {"allow_code": true}}}
lets workflow configs carry user_script/script_dir, passes from other modules and systems other
than LocalSystem. Off by default.
"""

from __future__ import annotations

from pathlib import Path

from backends.olive import combos, convert
from backends.registry import Conversion, Option, Toolkit, VerifiedChoice, register_toolkit

PACKAGES = ("olive", "onnxruntime_genai", "onnxruntime", "onnx", "yaml", "torch", "transformers")
EXAMPLES = Path(__file__).resolve().parent / "examples"
GENAI_FORMAT = "onnx-genai"  # the ONNX Runtime toolkit's format: its runner benchmarks Olive's output


# The workflow form's worked examples, each run here (tests/test_olive.py runs all but the
# asymmetric one, which is below the gate on the demo: a lesson, kept as such).
WORKFLOW_EXAMPLES = (("the chapter's auto-opt int4", "auto-opt-int4.yaml"),
                     ("int4 with an evaluator (latency, size)", "int4-with-evaluator.yaml"),
                     ("GPTQ int4 on the calibration text", "gptq-int4.yaml"),
                     ("model builder int4, asymmetric", "model-builder-int4-asym.yaml"))


def example(name: str) -> str:
    return (EXAMPLES / name).read_text()


AUTO_OPT = Conversion(
    backend="olive", name="auto_opt", title="Hugging Face → ONNX Runtime GenAI (Olive auto-opt)",
    input_formats=("hf",), output_format=GENAI_FORMAT, packages=PACKAGES,
    convert=convert.convert_auto_opt, validate=convert.validate_auto_opt, gate=convert.auto_opt_gate,
    help="Olive's auto-opt with the model builder (`olive auto-opt --use_model_builder`), run as the workflow "
         "config auto-opt writes, so Olive's footprints and run history are kept with the variant (olive/). "
         "Only combinations run here are offered; the others are refused with what was seen when tried.",
    options=(VerifiedChoice("device", "choice", "cpu", combos.DEVICES, "Olive's --device.",
                            unverified=tuple(combos.UNVERIFIED_DEVICES.items())),
             VerifiedChoice("execution_provider", "choice", "cpu", tuple(combos.PROVIDERS),
                            "Olive's --provider (cpu: CPUExecutionProvider).",
                            unverified=tuple(combos.UNVERIFIED_PROVIDERS.items())),
             VerifiedChoice("precision", "choice", "int4", tuple(combos.PRECISIONS),
                            "Olive's --precision: int4 is the model builder's RTN int4 (blocks of 32).",
                            unverified=tuple(combos.UNVERIFIED_PRECISIONS.items())),
             VerifiedChoice("route", "choice", "model_builder", combos.ROUTES,
                            "How the graph is made: --use_model_builder.",
                            unverified=tuple(combos.UNVERIFIED_ROUTES.items()))),
    label_options=("precision",), disk_factor=2.0, memory_factor=4.0)

QUANTIZE = Conversion(
    backend="olive", name="quantize", title="Hugging Face → ONNX Runtime GenAI (Olive quantize, RTN)",
    input_formats=("hf",), output_format=GENAI_FORMAT, packages=PACKAGES,
    convert=convert.convert_quantize, validate=convert.validate_quantize, gate=convert.QUANTIZE_GATE,
    help="`olive quantize --algorithm rtn` (Olive's own round-to-nearest pass on the PyTorch weights, 4-bit "
         "groups), then Olive's model builder pass writes the result as an ONNX Runtime GenAI folder: Olive's "
         "quantize alone leaves a PyTorch model in Olive's own quantized form, which no runner here loads.",
    options=(VerifiedChoice("algorithm", "choice", "rtn", tuple(combos.QUANTIZE_PASSES),
                            "Olive's --algorithm; only those run here are offered.",
                            unverified=tuple(combos.UNVERIFIED_ALGORITHMS.items())),
             VerifiedChoice("group_size", "choice", "32", combos.GROUP_SIZES, "Weights per 4-bit group.",
                            unverified=tuple(combos.UNVERIFIED_GROUP_SIZES.items())),
             Option("symmetric", "bool", False, help="Symmetric groups (no zero point); Olive's default is off.")),
    label_options=("algorithm",), disk_factor=2.0, memory_factor=4.0)

WORKFLOW = Conversion(
    backend="olive", name="workflow", title="Hugging Face → ONNX Runtime GenAI (Olive workflow config)",
    input_formats=("hf",), output_format=GENAI_FORMAT, packages=PACKAGES,
    convert=convert.convert_workflow, validate=convert.validate_workflow, gate=convert.WORKFLOW_GATE,
    help="Your own `olive run` workflow config, JSON or YAML; the config is the recipe (the same config gives the "
         "same variant). The catalog sets input_model, output_dir and cache_dir; other paths name files in the job "
         "folder, where calibration.jsonl holds the catalog's calibration text. user_script, script_dir, passes from "
         "other modules and non-local systems are refused unless an admin allows code. The result must be an ONNX "
         "Runtime GenAI folder and pass the smoke gate. Examples (backends/olive/examples/): the chapter's auto-opt "
         "int4 (the default here), int4 with an evaluator (Olive's latency and size metrics, shown on the "
         "variant's page), GPTQ on calibration.jsonl and asymmetric int4 (below the gate on the demo).",
    options=(convert.WorkflowOption("workflow", "text", example("auto-opt-int4.yaml"),
                                    help="An Olive workflow config (JSON or YAML). Example: passes: "
                                         "{model_builder: {type: ModelBuilder, precision: int4}}",
                                    examples=tuple((title, example(name)) for title, name in WORKFLOW_EXAMPLES)),),
    disk_factor=2.0, memory_factor=4.0)

TOOLKIT = register_toolkit(Toolkit(
    name="olive", title="Microsoft Olive", runtime="ONNX Runtime GenAI CPU", packages=PACKAGES,
    distributions=("olive-ai", "onnxruntime-genai", "onnxruntime", "onnx", "transformers", "torch"),
    conversions=(AUTO_OPT, QUANTIZE, WORKFLOW),
    libraries=(("olive", "Microsoft Olive"),),
    steps=(("olive", "Microsoft Olive"),),
    # Read by Olive after it has logged its heartbeat, so not enough alone: launch.py does the rest.
    offline_env=(("OLIVE_DISABLE_TELEMETRY", "1"),)))
