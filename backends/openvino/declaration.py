"""OpenVINO: the IR format and its conversions, declared as data (no toolkit is imported until a
hook runs). LLMs come from their Hugging Face form through optimum-intel and NNCF weight
compression; encoders and classifiers from their ONNX graph, then NNCF post-training INT8."""

from __future__ import annotations

from pathlib import Path

from backends.openvino import bench_report, convert, encoder_classifier, import_check, llm_runner, runtime_runner, setup
from backends.openvino.weights import (
    BACKUP_PRECISIONS,
    FALLBACKS,
    GROUP_SIZES,
    MODES,
    WEIGHT_FORMATS,
    compress_gate,
    default_group_size,
    uses_data,
    weight_format_gate,
)
from backends.registry import (
    Conversion,
    Format,
    Gate,
    ImportCheck,
    Option,
    ReportReader,
    SetupStep,
    Toolkit,
    VerifiedChoice,
    register_toolkit,
)

PACKAGES = ("openvino", "openvino_genai", "openvino_tokenizers", "nncf", "optimum.intel", "torch", "transformers")

# Devices other than the CPU: what each would need (neither is on this machine).
UNVERIFIED_DEVICES = (
    ("gpu", "it needs an Intel GPU (integrated or Arc) with its OpenCL driver, and this machine has none"),
    ("npu", "it needs an Intel NPU (Core Ultra) with its driver, and this machine has none"),
)


def device_option() -> VerifiedChoice:
    return VerifiedChoice("device", "choice", "cpu", ("cpu",),
                          "The OpenVINO device the result is compiled for in its checks; only the CPU is here.",
                          unverified=UNVERIFIED_DEVICES)


CALIBRATION_HELP = ("Calibration text for the data-aware methods: 'shipped' (a Python documentation excerpt, never "
                    "the perplexity text) or the path of an uploaded UTF-8 text file, one sentence per line.")

EXPORT_LLM = Conversion(
    backend="openvino", name="export_llm", title="Hugging Face → OpenVINO IR (optimum-intel)",
    input_formats=("hf",), output_format="openvino", packages=PACKAGES,
    convert=convert.convert_export_llm, validate=convert.validate_export_llm, gate=weight_format_gate,
    help="optimum-intel's OpenVINO exporter, plus the tokenizer and detokenizer IRs OpenVINO GenAI needs. int8: "
         "per-channel asymmetric weights; int4: asymmetric groups of 64, every layer but the embedding (which "
         "NNCF keeps at int8).",
    options=(Option("weight_format", "choice", "int4", WEIGHT_FORMATS, "Precision of the stored weights."),
             device_option()),
    label_options=("weight_format",), disk_factor=1.5, memory_factor=6.0)

COMPRESS_WEIGHTS = Conversion(
    backend="openvino", name="compress_weights", title="Hugging Face → OpenVINO IR, NNCF weight compression",
    input_formats=("hf",), output_format="openvino", packages=PACKAGES,
    convert=convert.convert_compress_weights, validate=convert.validate_compress_weights,
    plan=convert.plan_compress_weights, gate=compress_gate,
    help="NNCF weight compression with every option: the mode, the share of layers in it (the rest in the backup "
         "precision), group size and what to do with layers it does not divide, and the data-aware methods that "
         "calibrate on text (AWQ, scale estimation, GPTQ, LoRA correction).",
    options=(Option("mode", "choice", "INT4_ASYM", tuple(MODES),
                    "INT8 per channel, INT4 (sym or asym) in groups, or the 4-bit float modes NF4 and MXFP4."),
             Option("ratio", "float", 1.0, help="Share of the layers in the 4-bit mode; the rest take the backup "
                                                "precision.", minimum=0.0, maximum=1.0),
             Option("group_size", "choice", "64", GROUP_SIZES,
                    "Weights per quantization group (-1: one scale per output channel). Follows the mode unless "
                    "given: -1 for the 8-bit modes, 32 for MXFP4, 64 for the others.",
                    default_from=default_group_size),
             Option("group_size_fallback", "choice", "error", FALLBACKS,
                    "A layer whose width the group size does not divide: stop (error), use a smaller group for it "
                    "(adjust), or leave it uncompressed (ignore)."),
             Option("backup_precision", "choice", "int8_asym", BACKUP_PRECISIONS,
                    "Precision of the layers the ratio leaves out (none: keep them float)."),
             Option("all_layers", "bool", False, help="Compress the embedding and the last layer in the 4-bit mode "
                                                      "too (by default they stay 8-bit)."),
             Option("awq", "bool", False, help="Activation-aware scaling (data-aware)."),
             Option("scale_estimation", "bool", False, help="Scale estimation on calibration data (data-aware)."),
             Option("gptq", "bool", False, help="GPTQ: layer-wise error correction (data-aware, slow)."),
             Option("lora_correction", "bool", False, help="Low-rank correction adapters (data-aware)."),
             Option("calibration", "str", "shipped", help=CALIBRATION_HELP, used_if=uses_data,
                    upload_label="Calibration text for NNCF's data-aware methods: AWQ, scale estimation, GPTQ, "
                                 "LoRA correction (optional; UTF-8, one sentence per line; default: the shipped "
                                 "Python documentation excerpt; used only when one of them is ticked)"),
             Option("samples", "int", 32, help="Calibration lines used by the data-aware methods.",
                    minimum=4, maximum=1024),
             device_option()),
    label_options=("mode", "calibration"), disk_factor=1.5, memory_factor=8.0)

CONVERT_ONNX = Conversion(
    backend="openvino", name="convert_onnx", title="ONNX → OpenVINO IR (encoder or image classifier)",
    input_formats=("onnx",), output_format="openvino", packages=("openvino",),
    convert=encoder_classifier.convert_convert_onnx, validate=encoder_classifier.validate_convert_onnx,
    gate=lambda options, parent: Gate("output_agreement", 0.999 if options["precision"] == "fp32" else 0.99),
    help="openvino.convert_model of an encoder's or classifier's ONNX graph, saved as IR with its tokenizer files.",
    options=(Option("precision", "choice", "fp32", ("fp32", "fp16"), "Precision of the stored weights."),
             device_option()),
    label_options=("precision",), disk_factor=1.5, memory_factor=3.0)

QUANTIZE_STATIC = Conversion(
    backend="openvino", name="quantize_static", title="OpenVINO IR → INT8, calibrated (NNCF)",
    input_formats=("openvino",), output_format="openvino", packages=("openvino", "nncf"),
    convert=encoder_classifier.convert_quantize_static, validate=encoder_classifier.validate_quantize_static,
    plan=encoder_classifier.plan_quantize_static,
    gate=Gate("output_agreement", 0.85, "try the mixed preset, more samples, or accuracy control"),
    help="nncf.quantize: weights and activations INT8, ranges from calibration data. With a maximum accuracy drop "
         "(classifiers), nncf.quantize_with_accuracy_control returns layers to float until the held-out accuracy "
         "is within it.",
    options=(Option("preset", "choice", "PERFORMANCE", ("PERFORMANCE", "MIXED"),
                    "PERFORMANCE: symmetric activations and weights; MIXED: asymmetric activations."),
             Option("samples", "int", 64, help="Calibration samples to run.", minimum=8, maximum=2048),
             Option("calibration", "file", "shipped",
                    help="'shipped' (the Python documentation lines for encoders, the digits training images for "
                         "classifiers) or an uploaded .txt (one sentence per line) or .npy array of images."),
             Option("max_accuracy_drop", "float", 0.0,
                    help="0: plain quantization. Above 0 (classifiers): the largest absolute top-1 accuracy drop "
                         "on held-out digits allowed.", minimum=0.0, maximum=0.5),
             device_option()),
    label_options=("calibration",), disk_factor=1.2, memory_factor=6.0)

# A benchmark option of encoders and classifiers: LATENCY runs one request at a time on one
# stream; THROUGHPUT splits the threads into streams and keeps several requests in flight.
PERFORMANCE_HINT = Option(
    "performance_hint", "choice", runtime_runner.DEFAULT_HINT, runtime_runner.HINTS,
    "How OpenVINO variants are compiled for the benchmark. LATENCY: one request at a time (as every other "
    "runtime is measured). THROUGHPUT: streams, throughput measured with several requests in flight; its "
    "results are recorded as measured another way and not charted as comparable with LATENCY ones.")

LLM_SNIPPET = ("import openvino_genai as og\n"
               "pipe = og.LLMPipeline(\".\", \"CPU\")\n"
               "print(pipe.generate(\"The capital of France is\", max_new_tokens=32))\n")
RUNTIME_SNIPPETS = {
    "feature-extraction": (
        "import numpy as np, openvino as ov\n"
        "from tokenizers import Tokenizer\n"
        "tok = Tokenizer.from_file(\"tokenizer.json\"); tok.enable_padding(); tok.enable_truncation(128)\n"
        "model = ov.Core().compile_model(\"{main}\", \"CPU\")\n"
        "enc = tok.encode_batch([\"Edge devices run small models.\", \"Phones run compact networks.\"])\n"
        "feeds = {{\"input_ids\": np.array([e.ids for e in enc]),\n"
        "         \"attention_mask\": np.array([e.attention_mask for e in enc]),\n"
        "         \"token_type_ids\": np.array([e.type_ids for e in enc])}}\n"
        "names = [i.any_name for i in model.inputs]\n"
        "hidden = model({{k: v for k, v in feeds.items() if k in names}})[model.outputs[0]]\n"
        "mask = feeds[\"attention_mask\"][..., None]\n"
        "emb = (hidden * mask).sum(1) / mask.sum(1)  # mean pooling, as sentence-transformers does\n"
        "emb /= np.linalg.norm(emb, axis=1, keepdims=True)\n"
        "print(\"cosine similarity:\", float(emb[0] @ emb[1]))\n"),
    "image-classification": (
        "import numpy as np, openvino as ov\n"
        "model = ov.Core().compile_model(\"{main}\", \"CPU\")\n"
        "images = np.zeros((1, 1, 8, 8), dtype=np.float32)  # pixel values / 16, shape (batch, 1, 8, 8)\n"
        "print(\"predicted class:\", model({{\"pixel_values\": images}})[model.outputs[0]].argmax(-1))\n"),
    "text-generation": LLM_SNIPPET,
    "": LLM_SNIPPET,
}

OPENVINO = Format(
    name="openvino", title="OpenVINO IR", runtime="OpenVINO", main_suffix=".xml",
    hub_library="openvino",
    runtime_imports=("openvino", "openvino_genai"), runtime_versions=runtime_runner.runtime_versions,
    open_runner=llm_runner.load, open_encoder_classifier=runtime_runner.load, run_snippets=RUNTIME_SNIPPETS,
    import_check=ImportCheck(recognise=import_check.recognise, check=import_check.check,
                             describe=import_check.describe, keeps=import_check.keeps),
    import_as="an OpenVINO IR (.xml with its .bin)", upload_suffixes=("xml", "bin"), runs_on=("cpu",),
    runtime_options=(PERFORMANCE_HINT,),
    report_readers=(ReportReader(bench_report.TOOL, bench_report.read, bench_report.mismatch),),
    bundle_runner=Path(__file__).with_name("bundle_runner.py"),
    encoder_classifier_bundle_runner=Path(runtime_runner.__file__),
    bundle_note="OpenVINO writes a telemetry client id and a usage count under ~/intel on import unless its consent "
                "file says no: run `opt_in_out --opt_out` once (installed with openvino) before running the bundle.")

TOOLKIT = register_toolkit(Toolkit(
    name="openvino", title="OpenVINO / NNCF", runtime="OpenVINO CPU", packages=PACKAGES,
    distributions=("openvino", "openvino-genai", "openvino-tokenizers", "nncf", "optimum-intel", "transformers",
                   "torch"),
    formats=(OPENVINO,), conversions=(EXPORT_LLM, COMPRESS_WEIGHTS, CONVERT_ONNX, QUANTIZE_STATIC),
    libraries=(("openvino_genai", "OpenVINO GenAI"), ("openvino", "OpenVINO"), ("nncf", "NNCF"),
               ("optimum", "optimum-intel")),
    steps=(("OpenVINO", "OpenVINO"), ("NNCF", "NNCF"), ("NNCF weight compression", "NNCF weight compression")),
    offline_env=(("OPENVINO_TELEMETRY_OPT_OUT", "1"), ("NNCF_DISABLE_TELEMETRY", "1")),
    setup_steps=(SetupStep("opting out of OpenVINO telemetry", done=setup.opted_out, run=setup.opt_out),)))
