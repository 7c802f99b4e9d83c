"""ONNX Runtime conversions, declared as data (no toolkit import).

The model builder of onnxruntime-genai accepts more precisions than run on this CPU, so the
precision option offers only an allow-list that was built AND generated here (tests/test_onnxrt.py
builds the allow-list's default in CI); any other precision is refused in pre-flight as "not
verified here", with what was seen when it was tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backends.registry import Backend, Conversion, Option, register
from catalog.errors import InvalidInputError

# Precision -> (precision label of the variant, least top-1 agreement with the parent in the
# smoke test). int4 is the builder's default RTN, block 32, int8 activations ("accuracy level 4");
# on SmolLM2-135M it measured 0.67 agreement and perplexity 26.6 against 20.0 for FP32.
VERIFIED_PRECISIONS: dict[str, tuple[str, float]] = {"int4": ("INT4", 0.6), "fp32": ("F32", 0.97)}

# What happened when the rest were tried on this CPU (onnxruntime-genai 0.14.1, 2026-11-25).
UNVERIFIED_PRECISIONS: dict[str, str] = {
    "fp16": "it builds, but the CPU decoder fails on the second token with a Cast buffer shape mismatch",
    "bf16": "it builds, but the CPU runtime has no bf16 Where kernel for its attention mask",
    "int8": "the model builder offers no int8 precision",
}


# Execution providers other than the CPU's: what each would need (none is on this machine).
UNVERIFIED_PROVIDERS: dict[str, str] = {
    "cuda": "it needs an NVIDIA GPU and onnxruntime-gpu, and this machine has neither",
    "dml": "DirectML runs on Windows only",
    "qnn": "the QNN provider runs on Snapdragon devices (or the HTP simulator through onnxruntime-qnn)",
    "webgpu": "it needs a GPU and a WebGPU build of ONNX Runtime",
}


@dataclass(frozen=True)
class VerifiedChoice(Option):
    """A choice whose values outside the allow-list are refused as "not verified here"."""

    unverified: tuple[tuple[str, str], ...] = ()   # value -> what was seen when it was tried

    def normalize(self, value: Any) -> Any:
        if value in (None, ""):
            return super().normalize(value)
        value = str(value).strip().lower()
        if value not in self.choices:
            why = dict(self.unverified).get(value, "it has not been tried")
            raise InvalidInputError(f"The {self.name.replace('_', ' ')} {value} is not verified here on the CPU: "
                                    f"{why}; choose one of {', '.join(self.choices)}.")
        return super().normalize(value)


PACKAGES = ("onnxruntime_genai", "onnxruntime", "onnx", "onnx_ir", "torch", "transformers")

GENAI_BUILD = Conversion(
    backend="onnxrt", name="genai_build", title="Hugging Face → ONNX Runtime GenAI (model builder)",
    input_formats=("hf",), output_format="onnx-genai", module="backends.onnxrt", packages=PACKAGES,
    help="onnxruntime-genai's model builder: a folder with model.onnx, its external weights, "
         "genai_config.json and the tokenizer, for the CPU execution provider.",
    options=(VerifiedChoice("precision", "choice", "int4", tuple(VERIFIED_PRECISIONS),
                            "int4: MatMul weights in 4-bit blocks of 32 (RTN), about a third of the FP32 size; "
                            "fp32 keeps the source's predictions. Only precisions verified on this CPU are "
                            "offered.", unverified=tuple(UNVERIFIED_PRECISIONS.items())),
             VerifiedChoice("execution_provider", "choice", "cpu", ("cpu",),
                            "The execution provider the model is built for; only the CPU is verified here.",
                            unverified=tuple(UNVERIFIED_PROVIDERS.items()))),
    # Output is at most the FP32 input's size, plus the builder's temporary files.
    disk_factor=2.0, memory_factor=4.0)

TENSOR_PACKAGES = ("onnxruntime", "onnx", "numpy")
TENSOR_MODULE = "backends.onnxrt_tensor"
CALIBRATION_HELP = ("'shipped' (the Python documentation lines for encoders, the digits training images for "
                    "classifiers) or an uploaded file: UTF-8 text, one sentence per line, or a NumPy .npy array of "
                    "images shaped like the model's input.")

EXPORT = Conversion(
    backend="onnxrt", name="export", title="Hugging Face → ONNX (encoder or image classifier)",
    input_formats=("hf",), output_format="onnx", module=TENSOR_MODULE,
    packages=("torch", "transformers", "onnx", "onnxruntime"),
    help="torch.onnx export of a BERT-family encoder (last hidden state; batch and sequence axes dynamic) or the "
         "digits CNN (logits; batch axis dynamic), checked with the ONNX checker. Text-generation models use the "
         "model builder instead.",
    options=(Option("opset", "int", 17, help="ONNX opset of the exported graph.", minimum=14, maximum=20),),
    disk_factor=1.5, memory_factor=4.0)

def onnx_to_onnx(name: str, title: str, help: str, options: tuple[Option, ...], memory_factor: float = 3.0,
                 disk_factor: float = 1.5) -> Conversion:
    """An onnxruntime.quantization step: an ONNX encoder or classifier in, the same graph quantized out."""
    return Conversion(backend="onnxrt", name=name, title=title, input_formats=("onnx",), output_format="onnx",
                      module=TENSOR_MODULE, packages=TENSOR_PACKAGES, help=help, options=options,
                      disk_factor=disk_factor, memory_factor=memory_factor)


QUANTIZE_DYNAMIC = onnx_to_onnx(
    "quantize_dynamic", "ONNX → dynamic INT8 (onnxruntime.quantization)",
    help="Weights of MatMul/Gemm/Gather stored as int8; activations quantized at run time, so no calibration "
         "data is needed. Convolutions stay float.",
    options=(Option("per_channel", "bool", False, help="One scale per output channel instead of per tensor."),))

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
    memory_factor=6.0)

QUANTIZE_INT4 = onnx_to_onnx(
    "quantize_int4", "ONNX → INT4 weight-only, MatMulNBits (onnxruntime.quantization)",
    help="MatMul weights in 4-bit blocks (MatMulNBits); activations stay float. RTN rounds each block to the nearest "
         "level; HQQ (half-quadratic) optimises scale and zero point per block. Other ops are unchanged.",
    options=(Option("algorithm", "choice", "RTN", ("RTN", "HQQ"), "Block quantization algorithm."),
             Option("block_size", "choice", "32", ("16", "32", "64", "128"), "Weights per 4-bit block."),
             Option("symmetric", "bool", True, help="Symmetric blocks (no zero point). HQQ always uses zero "
                                                   "points, so it needs this off.")))

CONVERT_FP16 = onnx_to_onnx(
    "convert_fp16", "ONNX → FP16 weights (onnxruntime float16 converter)",
    help="Float tensors stored and computed as float16; inputs and outputs stay float32. Halves the size; on CPUs "
         "without float16 arithmetic ONNX Runtime converts back at run time, so it is rarely faster here.",
    options=(), disk_factor=1.0)

ONNXRT = register(Backend(
    name="onnxrt", title="ONNX Runtime", runtime="ONNX Runtime CPU", packages=PACKAGES,
    conversions=(GENAI_BUILD, EXPORT, QUANTIZE_DYNAMIC, QUANTIZE_STATIC, QUANTIZE_INT4, CONVERT_FP16)))
