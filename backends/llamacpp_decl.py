"""llama.cpp / GGUF conversions, declared as data (no toolkit import).

Quant type names are the ones `llama-quantize --help` prints; tests/test_llamacpp_convert.py
(test_declared_quant_types_exist_in_the_installed_llama_cpp) checks every declared name against the
installed binary, so a rename upstream fails CI.
"""

from __future__ import annotations

from backends.registry import Backend, Conversion, Option, register

LEGACY_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")
K_TYPES = ("Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K")
IQ_TYPES = ("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M",
            "IQ4_NL", "IQ4_XS")
QUANT_TYPES = K_TYPES + LEGACY_TYPES + IQ_TYPES
FLOAT_TYPES = ("F32", "F16", "BF16")
CONVERTER_OUTTYPES = ("f32", "f16", "bf16", "q8_0")

# Bits per weight class -> the least top-1 agreement with the parent a result must reach in its
# smoke test. Measured on SmolLM2-135M (see the GGUF issue's note); below it the job fails.
MIN_AGREEMENT = {"float": 0.97, "8bit": 0.85, "6bit": 0.75, "5bit": 0.7, "4bit": 0.6, "3bit": 0.45, "2bit": 0.2}

PACKAGES = ("llama_cpp", "gguf", "numpy")

DEQUANTIZE = Conversion(
    backend="llamacpp", name="dequantize", title="GGUF → Hugging Face safetensors (dequantize)",
    input_formats=("gguf",), output_format="hf", module="backends.llamacpp",
    packages=PACKAGES + ("torch", "transformers", "accelerate"),
    help="Rebuilds a Hugging Face folder (FP32 safetensors, tokenizer, chat template) from a GGUF. "
         "Every other backend starts from this form.",
    options=(Option("dtype", "choice", "float32", ("float32", "float16", "bfloat16"),
                    "Precision of the written safetensors."),),
    disk_factor=12.0, memory_factor=20.0)

CONVERT_HF = Conversion(
    backend="llamacpp", name="convert_hf", title="Hugging Face → GGUF (convert_hf_to_gguf.py)",
    input_formats=("hf",), output_format="gguf", module="backends.llamacpp",
    packages=PACKAGES + ("torch", "transformers"),
    help="llama.cpp's own converter, from the source of the installed llama-cpp-python.",
    options=(Option("outtype", "choice", "f16", CONVERTER_OUTTYPES,
                    "f32 and f16 keep the source's predictions; bf16 and q8_0 agree on most next tokens."),),
    disk_factor=1.2, memory_factor=2.5)

IMATRIX = Conversion(
    backend="llamacpp", name="imatrix", title="Importance matrix (llama-imatrix)",
    input_formats=("gguf",), output_format="imatrix", module="backends.llamacpp", packages=PACKAGES,
    help="Activation statistics from a calibration text; IQ types need one. Keyed by the text's hash.",
    options=(Option("calibration", "str", "shipped",
                    help="'shipped' (a Python documentation excerpt, never the perplexity text) or the "
                         "path of an uploaded UTF-8 text file."),
             Option("chunks", "int", 32, help="Number of context windows of calibration text to read.",
                    minimum=1, maximum=1000),
             Option("ctx", "int", 256, help="Tokens per chunk.", minimum=32, maximum=8192)),
    disk_factor=0.1, memory_factor=2.0)

QUANTIZE = Conversion(
    backend="llamacpp", name="quantize", title="GGUF → quantized GGUF (llama-quantize)",
    input_formats=("gguf", "hf"), output_format="gguf", module="backends.llamacpp", packages=PACKAGES,
    batch_option="types",
    help="One job per type. From a Hugging Face folder an F16 GGUF is made first, once, and shared.",
    options=(Option("types", "multichoice", ["Q4_K_M"], QUANT_TYPES,
                    "Quantization types. The K types fall back per tensor when a row does not divide "
                    "their block size; the effective types are recorded."),
             Option("imatrix", "choice", "auto", ("auto", "always", "never"),
                    "auto: compute an importance matrix only for types llama.cpp refuses without one."),
             Option("calibration", "str", "shipped", help="Calibration text for the importance matrix: "
                    "'shipped' or the path of an uploaded UTF-8 text file."),
             Option("allow_requantize", "bool", False,
                    "Quantizing an already quantized model compounds the error; allow it explicitly.")),
    disk_factor=1.0, memory_factor=1.5)

LLAMACPP = register(Backend(
    name="llamacpp", title="llama.cpp / GGUF", runtime="llama.cpp CPU", packages=PACKAGES,
    conversions=(DEQUANTIZE, CONVERT_HF, QUANTIZE, IMATRIX)))


def precision_class(qtype: str) -> str:
    q = qtype.upper()
    if q in FLOAT_TYPES:
        return "float"
    for bits, cls in (("8", "8bit"), ("6", "6bit"), ("5", "5bit"), ("4", "4bit"), ("3", "3bit"),
                      ("2", "2bit"), ("1", "2bit")):
        if q.startswith(("Q" + bits, "IQ" + bits)):
            return cls
    return "4bit"
