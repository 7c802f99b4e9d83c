"""ONNX Runtime: its formats and conversions, declared as data (no toolkit import until a hook runs).

The model builder of onnxruntime-genai accepts more precisions than run on this CPU, so the
precision option offers only an allow-list that was built AND generated here (tests/test_onnxrt.py
builds the allow-list's default in CI); any other precision is refused in pre-flight as "not
verified here", with what was seen when it was tried.
"""

from __future__ import annotations

from pathlib import Path

from backends.onnxrt import encoder_classifier, genai_build, genai_runner, import_check, session_runner
from backends.onnxrt.precisions import PRECISION_LABELS, UNVERIFIED_PRECISIONS, UNVERIFIED_PROVIDERS, genai_gate
from backends.registry import (
    Conversion,
    Format,
    Gate,
    ImportCheck,
    Option,
    Toolkit,
    VerifiedChoice,
    register_toolkit,
)

PACKAGES = ("onnxruntime_genai", "onnxruntime", "onnx", "onnx_ir", "torch", "transformers")

GENAI_BUILD = Conversion(
    backend="onnxrt", name="genai_build", title="Hugging Face → ONNX Runtime GenAI (model builder)",
    input_formats=("hf",), output_format="onnx-genai", packages=PACKAGES,
    convert=genai_build.convert_genai_build, validate=genai_build.validate_genai_build, gate=genai_gate,
    help="onnxruntime-genai's model builder: a folder with model.onnx, its external weights, "
         "genai_config.json and the tokenizer, for the CPU execution provider.",
    options=(VerifiedChoice("precision", "choice", "int4", tuple(PRECISION_LABELS),
                            "int4: MatMul weights in 4-bit blocks of 32 (RTN), about a third of the FP32 size; "
                            "fp32 keeps the source's predictions. Only precisions verified on this CPU are "
                            "offered.", unverified=tuple(UNVERIFIED_PRECISIONS.items())),
             VerifiedChoice("execution_provider", "choice", "cpu", ("cpu",),
                            "The execution provider the model is built for; only the CPU is verified here.",
                            unverified=tuple(UNVERIFIED_PROVIDERS.items()))),
    label_options=("precision",),
    # Output is at most the FP32 input's size, plus the builder's temporary files.
    disk_factor=2.0, memory_factor=4.0)

TENSOR_PACKAGES = ("onnxruntime", "onnx", "numpy")
# Least smoke score of each encoder/classifier conversion: a classifier's top-1 agreement, an
# encoder's mean cosine similarity of sentence embeddings, with its parent.
HINT = "try per-channel scales, another calibration method, or a larger block size"


def output_agreement(least: float) -> Gate:
    return Gate("output_agreement", least, HINT)


CALIBRATION_HELP = ("'shipped' (the Python documentation lines for encoders, the digits training images for "
                    "classifiers) or an uploaded file: UTF-8 text, one sentence per line, or a NumPy .npy array of "
                    "images shaped like the model's input.")

EXPORT = Conversion(
    backend="onnxrt", name="export", title="Hugging Face → ONNX (encoder or image classifier)",
    input_formats=("hf",), output_format="onnx", packages=("torch", "transformers", "onnx", "onnxruntime"),
    convert=encoder_classifier.convert_export, validate=encoder_classifier.validate_export,
    gate=output_agreement(0.999),
    help="torch.onnx export of a BERT-family encoder (last hidden state; batch and sequence axes dynamic) or the "
         "digits CNN (logits; batch axis dynamic), checked with the ONNX checker. Text-generation models use the "
         "model builder instead.",
    options=(Option("opset", "int", 17, help="ONNX opset of the exported graph.", minimum=14, maximum=20),),
    disk_factor=1.5, memory_factor=4.0)

def onnx_to_onnx(name: str, title: str, help: str, options: tuple[Option, ...], least: float,
                 memory_factor: float = 3.0, disk_factor: float = 1.5,
                 label_options: tuple[str, ...] = ()) -> Conversion:
    """An onnxruntime.quantization step: an ONNX encoder or classifier in, the same graph quantized out.
    Its hooks are encoder_classifier.convert_<name> / validate_<name> / plan_<name>, referenced
    explicitly (a missing one fails at import, never as a silent None)."""
    return Conversion(backend="onnxrt", name=name, title=title, input_formats=("onnx",), output_format="onnx",
                      packages=TENSOR_PACKAGES, help=help, options=options, gate=output_agreement(least),
                      convert=HOOKS[name][0], validate=HOOKS[name][1], plan=HOOKS[name][2],
                      disk_factor=disk_factor, memory_factor=memory_factor, label_options=label_options)


HOOKS = {
    "quantize_dynamic": (encoder_classifier.convert_quantize_dynamic, encoder_classifier.validate_quantize_dynamic,
                         None),
    "quantize_static": (encoder_classifier.convert_quantize_static, encoder_classifier.validate_quantize_static,
                        encoder_classifier.plan_quantize_static),
    "quantize_int4": (encoder_classifier.convert_quantize_int4, encoder_classifier.validate_quantize_int4, None),
    "convert_fp16": (encoder_classifier.convert_convert_fp16, encoder_classifier.validate_convert_fp16, None),
}


QUANTIZE_DYNAMIC = onnx_to_onnx(
    "quantize_dynamic", "ONNX → dynamic INT8 (onnxruntime.quantization)",
    help="Weights of MatMul/Gemm/Gather stored as int8; activations quantized at run time, so no calibration "
         "data is needed. Convolutions stay float.",
    options=(Option("per_channel", "bool", False, help="One scale per output channel instead of per tensor."),),
    least=0.9)

QUANTIZE_STATIC = onnx_to_onnx(
    "quantize_static", "ONNX → static INT8, calibrated (onnxruntime.quantization)",
    help="Weights int8 and activations uint8 with ranges fixed from calibration data. QDQ keeps float ops between "
         "QuantizeLinear/DequantizeLinear pairs (what NPUs and the QNN tools expect); QOperator uses quantized "
         "operators (QLinearConv, QLinearMatMul...).",
    options=(Option("format", "choice", "QDQ", ("QDQ", "QOperator"), "Graph form of the quantized model."),
             Option("method", "choice", "MinMax", ("MinMax", "Entropy", "Percentile"),
                    "How activation ranges are chosen from the calibration data: the extremes, the range that "
                    "minimises KL divergence, or the 99.999th percentile."),
             Option("per_channel", "bool", False, help="One weight scale per output channel."),
             Option("samples", "int", 64, help="Calibration samples to run.", minimum=8, maximum=2048),
             Option("calibration", "file", "shipped", help=CALIBRATION_HELP)),
    least=0.85, memory_factor=6.0, label_options=("calibration",))

QUANTIZE_INT4 = onnx_to_onnx(
    "quantize_int4", "ONNX → INT4 weight-only, MatMulNBits (onnxruntime.quantization)",
    help="MatMul weights in 4-bit blocks (MatMulNBits); activations stay float. RTN rounds each block to the nearest "
         "level; HQQ (half-quadratic) optimises scale and zero point per block. Other ops are unchanged.",
    options=(Option("algorithm", "choice", "RTN", ("RTN", "HQQ"), "Block quantization algorithm."),
             Option("block_size", "choice", "32", ("16", "32", "64", "128"), "Weights per 4-bit block."),
             Option("symmetric", "bool", True, help="Symmetric blocks (no zero point); left out, on for RTN and "
                                                   "off for HQQ, which always fits zero points.",
                    default_from=lambda chosen: chosen["algorithm"] != "HQQ")),
    least=0.85)

CONVERT_FP16 = onnx_to_onnx(
    "convert_fp16", "ONNX → FP16 weights (onnxruntime float16 converter)",
    help="Float tensors stored and computed as float16; inputs and outputs stay float32. Halves the size; on CPUs "
         "without float16 arithmetic ONNX Runtime converts back at run time, so it is rarely faster here.",
    options=(), least=0.99, disk_factor=1.0)

GENAI_SNIPPET = ("import onnxruntime_genai as og\n"
                 "model = og.Model(\".\")\n"
                 "tok = og.Tokenizer(model)\n"
                 "params = og.GeneratorParams(model)\n"
                 "params.set_search_options(max_length=64)\n"
                 "gen = og.Generator(model, params)\n"
                 "gen.append_tokens(tok.encode(\"The capital of France is\"))\n"
                 "while not gen.is_done():\n"
                 "    gen.generate_next_token()\n"
                 "print(tok.decode(gen.get_sequence(0)))\n")

ONNX_SNIPPETS = {
    "": ("import onnxruntime as ort\n"
         "session = ort.InferenceSession(\"{main}\", providers=[\"CPUExecutionProvider\"])\n"
         "print([i.name for i in session.get_inputs()])\n"),
    "feature-extraction": (
        "import numpy as np, onnxruntime as ort\n"
        "from tokenizers import Tokenizer\n"
        "tok = Tokenizer.from_file(\"tokenizer.json\"); tok.enable_padding(); tok.enable_truncation(128)\n"
        "session = ort.InferenceSession(\"{main}\", providers=[\"CPUExecutionProvider\"])\n"
        "enc = tok.encode_batch([\"Edge devices run small models.\", \"Phones run compact networks.\"])\n"
        "feeds = {{\"input_ids\": np.array([e.ids for e in enc]),\n"
        "         \"attention_mask\": np.array([e.attention_mask for e in enc]),\n"
        "         \"token_type_ids\": np.array([e.type_ids for e in enc])}}\n"
        "names = [i.name for i in session.get_inputs()]\n"
        "hidden = session.run(None, {{k: v for k, v in feeds.items() if k in names}})[0]\n"
        "mask = feeds[\"attention_mask\"][..., None]\n"
        "emb = (hidden * mask).sum(1) / mask.sum(1)  # mean pooling, as sentence-transformers does\n"
        "emb /= np.linalg.norm(emb, axis=1, keepdims=True)\n"
        "print(\"cosine similarity:\", float(emb[0] @ emb[1]))\n"),
    "image-classification": (
        "import numpy as np, onnxruntime as ort\n"
        "session = ort.InferenceSession(\"{main}\", providers=[\"CPUExecutionProvider\"])\n"
        "images = np.zeros((1, 1, 8, 8), dtype=np.float32)  # pixel values / 16, shape (batch, 1, 8, 8)\n"
        "print(\"predicted class:\", session.run(None, {{\"pixel_values\": images}})[0].argmax(-1))\n"),
}

IMPORT = ImportCheck(recognise=import_check.recognise, check=import_check.check, describe=import_check.describe)

# ONNX Runtime GenAI folders (model.onnx + genai_config.json) and plain ONNX graphs (encoders,
# classifiers) are told apart by the import check (describe_onnx's "format").
ONNX_GENAI = Format(
    name="onnx-genai", title="ONNX Runtime GenAI", runtime="ONNX Runtime GenAI", main_suffix=".onnx",
    hub_library="onnx",
    runtime_imports=("onnxruntime_genai",), runtime_versions=genai_runner.runtime_versions,
    open_runner=genai_runner.load, run_snippets={"": GENAI_SNIPPET}, import_check=IMPORT,
    import_as="a .onnx file", upload_suffixes=("onnx", "data"), bundle_runner=Path(genai_runner.__file__))
ONNX = Format(
    name="onnx", title="ONNX", runtime="ONNX Runtime", main_suffix=".onnx", runtime_imports=("onnxruntime",),
    hub_library="onnx",
    runtime_versions=session_runner.runtime_versions, open_encoder_classifier=session_runner.load,
    run_snippets=ONNX_SNIPPETS, encoder_classifier_bundle_runner=Path(session_runner.__file__))

TOOLKIT = register_toolkit(Toolkit(
    name="onnxrt", title="ONNX Runtime", runtime="ONNX Runtime CPU", packages=PACKAGES,
    distributions=("onnxruntime-genai", "onnxruntime", "onnx", "onnx-ir", "transformers", "torch"),
    formats=(ONNX_GENAI, ONNX),
    conversions=(GENAI_BUILD, EXPORT, QUANTIZE_DYNAMIC, QUANTIZE_STATIC, QUANTIZE_INT4, CONVERT_FP16),
    # Most specific first: a frame in onnxruntime_genai is not one in onnx.
    libraries=(("onnxruntime_genai", "ONNX Runtime GenAI"), ("onnxruntime", "ONNX Runtime"),
               ("onnx", "the ONNX library")),
    steps=(("model builder", "the ONNX Runtime GenAI model builder"),),
    # ONNX Runtime 1.32 records telemetry on Linux too (a device id and onnxruntime.db under
    # ~/.cache/Microsoft/DeveloperTools/.onnxruntime, from any InferenceSession or og.Model);
    # ORT_DISABLE_TELEMETRY=1 stops it, ort.disable_telemetry_events() does not.
    offline_env=(("ORT_DISABLE_TELEMETRY", "1"),)))
