"""llama.cpp: the GGUF format and its conversions, declared as data (no toolkit is imported
until a hook runs)."""

from __future__ import annotations

from pathlib import Path

from backends.llamacpp import bench_report, convert, import_check, runner
from backends.llamacpp.quant_types import (
    CONVERTER_OUTTYPES,
    QUANT_TYPES,
    convert_hf_gate,
    dequantize_gate,
    quantize_gate,
)
from backends.registry import Conversion, Format, ImportCheck, Option, ReportReader, Toolkit, register_toolkit

PACKAGES = ("llama_cpp", "gguf", "numpy")

DEQUANTIZE = Conversion(
    backend="llamacpp", name="dequantize", title="GGUF → Hugging Face safetensors (dequantize)", past="dequantized",
    input_formats=("gguf",), output_format="hf",
    packages=PACKAGES + ("torch", "transformers", "accelerate"),
    convert=convert.convert_dequantize, validate=convert.validate_dequantize, gate=dequantize_gate,
    help="Rebuilds a Hugging Face folder (FP32 safetensors, tokenizer, chat template) from a GGUF. "
         "Every other backend starts from this form.",
    options=(Option("dtype", "choice", "float32", ("float32", "float16", "bfloat16"),
                    "Precision of the written safetensors."),), label_options=("dtype",),
    disk_factor=12.0, memory_factor=20.0)

CONVERT_HF = Conversion(
    backend="llamacpp", name="convert_hf", title="Hugging Face → GGUF (convert_hf_to_gguf.py)", past="converted",
    input_formats=("hf",), output_format="gguf",
    packages=PACKAGES + ("torch", "transformers"),
    convert=convert.convert_convert_hf, validate=convert.validate_convert_hf, gate=convert_hf_gate,
    help="llama.cpp's own converter, from the source of the installed llama-cpp-python.",
    options=(Option("outtype", "choice", "f16", CONVERTER_OUTTYPES,
                    "f32 and f16 keep the source's predictions; bf16 and q8_0 agree on most next tokens."),),
    label_options=("outtype",), disk_factor=1.2, memory_factor=2.5)

IMATRIX = Conversion(
    backend="llamacpp", name="imatrix", title="Importance matrix (llama-imatrix)",
    input_formats=("gguf",), output_format="imatrix", packages=PACKAGES,
    convert=convert.convert_imatrix, validate=convert.validate_imatrix,
    help="Activation statistics from a calibration text; IQ types need one. Keyed by the text's hash.",
    options=(Option("calibration", "str", "shipped",
                    help="'shipped' (a Python documentation excerpt, never the perplexity text) or the "
                         "path of an uploaded UTF-8 text file."),
             Option("chunks", "int", 32, help="Number of context windows of calibration text to read.",
                    minimum=1, maximum=1000),
             Option("ctx", "int", 256, help="Tokens per chunk.", minimum=32, maximum=8192)),
    label_options=("calibration",), disk_factor=0.1, memory_factor=2.0)

QUANTIZE = Conversion(
    backend="llamacpp", name="quantize", title="GGUF → quantized GGUF (llama-quantize)", past="quantized",
    input_formats=("gguf", "hf"), output_format="gguf", packages=PACKAGES,
    convert=convert.convert_quantize, validate=convert.validate_quantize, plan=convert.plan_quantize,
    gate=quantize_gate,
    batch_option="types",
    help="One job per type. From a Hugging Face folder an F16 GGUF is made first, once, and shared.",
    options=(Option("types", "multichoice", ["Q4_K_M"], QUANT_TYPES,
                    "Quantization types. The K types fall back per tensor when a row does not divide "
                    "their block size; the effective types are recorded."),
             Option("imatrix", "choice", "auto", ("auto", "always", "never"),
                    "auto: compute an importance matrix only for types llama.cpp refuses without one."),
             Option("calibration", "str", "shipped", help="Calibration text for the importance matrix: "
                    "'shipped' or the path of an uploaded UTF-8 text file. Used only where a matrix is made: "
                    "imatrix always, or auto for the types that need one.",
                    # a type quantized with a matrix names it as its input (plan_quantize)
                    used_if=lambda options: "input:imatrix" in options,
                    upload_label="Calibration text for importance matrices (optional; default: the shipped Python "
                                 "documentation excerpt; used only where a matrix is made: imatrix always, or auto "
                                 "for the types that need one)"),
             Option("allow_requantize", "bool", False,
                    "Quantizing an already quantized model compounds the error; allow it explicitly.")),
    label_options=("types", "calibration"), disk_factor=1.0, memory_factor=1.5)

RUN_SNIPPET = ("from llama_cpp import Llama\n"
               "llm = Llama(model_path=\"{main}\", n_ctx=2048, n_threads=4)\n"
               "print(llm(\"The capital of France is\", max_tokens=32)[\"choices\"][0][\"text\"])\n"
               "# or: llama-cli -m {main} -p \"The capital of France is\" -n 32\n")

GGUF = Format(
    name="gguf", title="GGUF", runtime="llama.cpp", main_suffix=".gguf", runtime_imports=("llama_cpp",),
    hub_library="gguf",
    runtime_versions=runner.runtime_versions, open_runner=runner.load, run_snippets={"": RUN_SNIPPET},
    import_check=ImportCheck(recognise=import_check.recognise, check=import_check.check,
                             describe=import_check.describe),
    import_as="a .gguf file", upload_suffixes=("gguf",), hub_patterns=("*.gguf",),
    # How the binding was built (its instruction-set level): llama.cpp's speed depends on it.
    fingerprint_fields=runner.fingerprint_fields,
    report_readers=(ReportReader(bench_report.TOOL, bench_report.read, bench_report.mismatch),),
    bundle_runner=Path(__file__).with_name("bundle_runner.py"))

# The imatrix output is data for later quantizations, not a model: no runner, no import.
IMATRIX_FORMAT = Format(name="imatrix", title="Importance matrix (GGUF)", runtime="llama.cpp",
                        main_suffix=".gguf", runtime_imports=("llama_cpp",))

TOOLKIT = register_toolkit(Toolkit(
    name="llamacpp", title="llama.cpp / GGUF", runtime="llama.cpp CPU", packages=PACKAGES,
    distributions=("llama-cpp-python", "gguf", "transformers", "torch"),
    formats=(GGUF, IMATRIX_FORMAT), conversions=(DEQUANTIZE, CONVERT_HF, QUANTIZE, IMATRIX),
    libraries=(("llama_cpp", "llama.cpp"),), steps=(("llama.cpp", "a llama.cpp tool"),)))
