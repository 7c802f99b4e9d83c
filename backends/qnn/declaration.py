"""Qualcomm QNN through ONNX Runtime's QNN execution provider (onnxruntime-qnn, a plugin EP beside
onnxruntime): QDQ models for the HTP (Hexagon NPU) backend, their node coverage, and EPContext
models holding a context binary. On x86_64 the HTP backend is a simulator, and every figure
measured on it says so ("QNN HTP simulator")."""

from __future__ import annotations

from pathlib import Path

from backends.qnn import bundle_runner, convert, runner
from backends.qnn.quantize import ACTIVATION_TYPES, WEIGHT_TYPES
from backends.registry import Conversion, Format, Gate, Option, Toolkit, register_toolkit

PACKAGES = ("onnxruntime", "onnxruntime_qnn", "onnx", "numpy")

CALIBRATION_HELP = ("'shipped' (the Python documentation lines for encoders, the digits training images for "
                    "classifiers) or an uploaded file: UTF-8 text, one sentence per line, or a NumPy .npy array of "
                    "images shaped like the model's input.")


# The smoke test's held-out inputs on the HTP simulator: MiniLM runs about 1 s per sentence there
# (all 44 sentences took 226 s on a busy machine), the digits CNN milliseconds per image.
SMOKE_SAMPLES = 16


def _quantize_gate(options: dict, parent: object) -> Gate:
    least = 0.9 if options["activation_type"] == "uint16" else 0.85
    return Gate("output_agreement", least, "try uint16 activations, per-channel weights, or keep the failing op "
                                           "types at 16 bits", samples=SMOKE_SAMPLES)


QUANTIZE = Conversion(
    backend="qnn", name="quantize", title="ONNX → QDQ for the QNN HTP (onnxruntime QNN helpers)",
    input_formats=("onnx",), output_format="qnn", packages=PACKAGES,
    convert=convert.convert_quantize, validate=convert.validate_quantize, plan=convert.plan_quantize,
    gate=_quantize_gate, runs_on="qnn-htp",
    help="onnxruntime.quantization's QNN path: input shapes fixed, qnn_preprocess_model, get_qnn_qdq_config and "
         "quantize, calibrated on data. The result is run on the QNN HTP backend (a simulator on this machine) "
         "with every node on the HTP unless CPU fallback is allowed; which nodes the HTP takes is recorded, and "
         "the encodings are written as a QNN quantization-overrides JSON file.",
    options=(Option("activation_type", "choice", "uint8", ACTIVATION_TYPES,
                    "Activation type: uint8 (smallest, fastest) or uint16 (what transformers usually need)."),
             Option("weight_type", "choice", "uint8", WEIGHT_TYPES,
                    "Weight type: uint8 (asymmetric), int8 (symmetric) or int4 (symmetric; opset 21 Q/DQ)."),
             Option("per_channel", "bool", False, help="One weight scale per output channel (Conv, Gemm)."),
             Option("fixed_shapes", "str", "",
                    help="Sizes of the model's dynamic axes, e.g. batch=1 (digits CNN) or batch=1, sequence=128 "
                         "(encoders): the HTP runs fixed shapes only. Pre-flight lists the model's axes."),
             Option("calibration", "file", "shipped", help=CALIBRATION_HELP),
             Option("samples", "int", 32, help="Calibration samples to run.", minimum=4, maximum=1024),
             Option("keep_16bit_ops", "str", "",
                    help="Mixed precision: op types whose outputs stay 16-bit, comma-separated (e.g. MatMul, "
                         "Softmax)."),
             Option("keep_16bit_tensors", "str", "",
                    help="Mixed precision: activation tensors that stay 16-bit, by name, comma-separated."),
             Option("cpu_fallback", "bool", False,
                    help="Allow nodes the HTP cannot take to run on the CPU. Off: such a model fails, naming the "
                         "operators.")),
    label_options=("activation_type", "weight_type", "calibration"),
    disk_factor=2.0, memory_factor=6.0)

CONTEXT_BINARY = Conversion(
    backend="qnn", name="context_binary", title="QDQ → QNN context binary (EPContext model)",
    input_formats=("qnn", "onnx"), output_format="qnn-context", packages=PACKAGES,
    convert=convert.convert_context_binary, validate=convert.validate_context_binary,
    gate=Gate("output_agreement", 0.99, "the context binary should match its QDQ parent; see the job log",
              samples=SMOKE_SAMPLES),
    runs_on="qnn-htp",
    help="The QNN EP compiles the QDQ model for an HTP architecture or Snapdragon SoC and writes an EPContext "
         "ONNX model holding the context binary (ep.context_enable=1): what a Snapdragon device loads without "
         "compiling again. The simulator runs every architecture here; only a device proves one.",
    options=(Option("htp_arch", "choice", convert.SIMULATOR_ARCH, convert.HTP_ARCHS,
                    "HTP architecture (v68 ... v81); default: the SDK's own choice, which the simulator runs."),
             Option("soc", "str", "",
                    help=f"A Snapdragon SoC instead ({', '.join(sorted(convert.SOCS))}); sets the architecture."),
             Option("embed", "bool", True, help="Keep the context binary inside the ONNX file (else a .bin beside "
                                                "it).")),
    label_options=("htp_arch", "soc"), disk_factor=3.0, memory_factor=6.0)

QNN_PROVIDER = Option(
    "qnn_provider", "choice", runner.DEFAULT_PROVIDER, runner.PROVIDERS,
    "Where QNN QDQ variants run in a benchmark: htp (the QNN HTP backend, a simulator on x86_64: its latency is "
    "simulated, not a device's) or cpu (ONNX Runtime's CPU EP on the same QDQ model, to put next to it).")

# Measured here (2-core VM, busy): MiniLM QDQ at sequence 64 takes about 2 s per sentence on the HTP
# simulator (0.1 s on the CPU EP), so the encoder's quick profile (2 + 10 batches of 8, 64 sentences
# scored) would take over 4 minutes; these keep it under one. The digits CNN takes about 1.3 ms
# per image there: its protocols stay as they are.
PROTOCOL_CHANGES = {("feature-extraction", "quick"): {"batch_size": 1, "warmup": 1, "repetitions": 5,
                                                      "eval_samples": 8},
                    ("feature-extraction", "full"): {"batch_size": 1, "warmup": 2, "repetitions": 20,
                                                     "eval_samples": 32}}

SNIPPET = ("import numpy as np, onnxruntime as ort, onnxruntime_qnn\n"
           "ort.register_execution_provider_library(\"QNNExecutionProvider\", onnxruntime_qnn.get_library_path())\n"
           "devices = [d for d in ort.get_ep_devices() if d.ep_name == \"QNNExecutionProvider\"]\n"
           "options = ort.SessionOptions()\n"
           "options.add_session_config_entry(\"session.disable_cpu_ep_fallback\", \"1\")\n"
           "options.add_provider_for_devices(devices, {{\"backend_path\": onnxruntime_qnn.get_qnn_htp_path()}})\n"
           "session = ort.InferenceSession(\"{main}\", options)\n"
           "feeds = {{i.name: np.zeros(i.shape, dtype=np.int64 if \"int64\" in i.type else np.float32)\n"
           "         for i in session.get_inputs()}}  # the HTP runs the fixed shapes the model was made with\n"
           "print(session.run(None, feeds)[0].shape)\n")

QNN = Format(
    name="qnn", title="QNN QDQ ONNX", runtime="ONNX Runtime QNN EP", main_suffix=".onnx",
    runtime_imports=("onnxruntime", "onnxruntime_qnn"), runtime_versions=runner.runtime_versions,
    open_encoder_classifier=runner.load, runtime_options=(QNN_PROVIDER,), run_snippets={"": SNIPPET},
    runs_on=("qnn-htp", "cpu"), hub_library="onnx", fingerprint_fields=runner.fingerprint_fields,
    protocol_changes=PROTOCOL_CHANGES, encoder_classifier_bundle_runner=Path(bundle_runner.__file__),
    bundle_facts=("qnn_sdk", "cpu_fallback"))
QNN_CONTEXT = Format(
    name="qnn-context", title="QNN context binary (EPContext)", runtime="ONNX Runtime QNN EP", main_suffix=".onnx",
    runtime_imports=("onnxruntime", "onnxruntime_qnn"), runtime_versions=runner.runtime_versions,
    open_encoder_classifier=runner.load_context, run_snippets={"": SNIPPET}, runs_on=("qnn-htp",),
    hub_library="onnx", fingerprint_fields=runner.fingerprint_fields,
    protocol_changes=PROTOCOL_CHANGES, encoder_classifier_bundle_runner=Path(bundle_runner.__file__),
    bundle_facts=("qnn_sdk", "htp_arch", "soc", "ep_sdk_version"))

TOOLKIT = register_toolkit(Toolkit(
    name="qnn", title="Qualcomm QNN (ONNX Runtime QNN EP)", runtime="QNN HTP simulator", packages=PACKAGES,
    distributions=("onnxruntime-qnn", "onnxruntime", "onnx"),
    formats=(QNN, QNN_CONTEXT), conversions=(QUANTIZE, CONTEXT_BINARY),
    libraries=(("onnxruntime_qnn", "the QNN execution provider"),),
    steps=(("QNN", "the QNN execution provider"), ("QNN QDQ", "onnxruntime's QNN quantizer"))))
