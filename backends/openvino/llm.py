"""Hugging Face LLMs to OpenVINO IR: optimum-intel's exporter for float weights, its
OVModelForCausalLM with an NNCF weight-quantization config for the compressed ones, then the
tokenizer and detokenizer IRs OpenVINO GenAI needs (optimum's save_pretrained writes none).

Data-aware methods (AWQ, scale estimation, GPTQ, LoRA correction) get their calibration text
through the Python API as a list of lines: `optimum-cli --dataset` takes only Hub dataset names,
which fails offline.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from backends.openvino.runtime_runner import TOKENIZER_IRS
from backends.openvino.weights import MODES

log = logging.getLogger(__name__)

TASK = "text-generation-with-past"


@lru_cache(maxsize=1)
def exportable_model_types() -> frozenset[str]:
    """Model types optimum-intel's OpenVINO exporter registers for text generation, read from its
    source (importing it would load torch in the app)."""
    import importlib.util

    spec = importlib.util.find_spec("optimum")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    source = Path(next(iter(spec.submodule_search_locations))) / "exporters" / "openvino" / "model_configs.py"
    if not source.is_file():
        return frozenset()
    text = source.read_text(errors="replace")
    found = set()
    for match in re.finditer(r'register_in_tasks_manager\(\s*"([\w-]+)"([^)]*)\)', text):
        if "text-generation" in match.group(2):
            found.add(match.group(1))
    return frozenset(found)


def hidden_sizes(config: dict[str, Any]) -> list[int]:
    """The widths NNCF groups weights along (the inputs of the linear layers)."""
    sizes = [config.get("hidden_size"), config.get("intermediate_size")]
    return [int(s) for s in sizes if isinstance(s, int) and s > 0]


def quantization_config(options: dict[str, Any], folder: Path, calibration: list[str] | None) -> Any:
    from optimum.intel import OVWeightQuantizationConfig

    dtype, bits, sym, _ = MODES[options["mode"]]
    four_bit = bits == 4
    kwargs: dict[str, Any] = {"dtype": dtype, "sym": sym}
    if four_bit:
        kwargs |= {"group_size": int(options["group_size"]), "ratio": options["ratio"],
                   "all_layers": options["all_layers"] or None, "backup_precision": options["backup_precision"],
                   "group_size_fallback": options["group_size_fallback"]}
    else:
        kwargs |= {"group_size": -1, "ratio": 1.0}
    if calibration:
        kwargs |= {"dataset": calibration, "tokenizer": str(folder), "num_samples": options["samples"],
                   "scale_estimation": options["scale_estimation"] or None, "gptq": options["gptq"] or None,
                   "lora_correction": options["lora_correction"] or None}
        if options["awq"]:
            kwargs["quant_method"] = "awq"
    return OVWeightQuantizationConfig(**kwargs)


def export_float(folder: Path, out: Path, dtype: str, trust_remote_code: bool) -> None:
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig

    main_export(str(folder), str(out), task=TASK, ov_config=OVConfig(dtype=dtype), trust_remote_code=trust_remote_code)


def export_compressed(folder: Path, out: Path, config: Any, trust_remote_code: bool) -> None:
    from optimum.intel import OVModelForCausalLM
    from transformers import AutoTokenizer

    model = OVModelForCausalLM.from_pretrained(folder, export=True, quantization_config=config, compile=False,
                                               trust_remote_code=trust_remote_code)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code).save_pretrained(out)


def write_tokenizer_irs(out: Path) -> None:
    import openvino as ov
    import openvino_tokenizers
    from transformers import AutoTokenizer

    tokenizer, detokenizer = openvino_tokenizers.convert_tokenizer(AutoTokenizer.from_pretrained(out),
                                                                   with_detokenizer=True)
    ov.save_model(tokenizer, out / TOKENIZER_IRS[0])
    ov.save_model(detokenizer, out / TOKENIZER_IRS[1])


def compression_table(out: Path) -> dict[str, Any]:
    """What NNCF recorded in the IR's runtime info: the mode, ratio and group size applied."""
    import openvino as ov

    info = ov.Core().read_model(out / "openvino_model.xml").get_rt_info()
    try:
        params = info["nncf"]["weight_compression"]
        return {k: str(params[k].value) for k in params if k in RECORDED}
    except (KeyError, TypeError, AttributeError):
        return {}


# The parameters of NNCF's record shown with a variant (its advanced defaults stay in the IR).
RECORDED = ("mode", "ratio", "group_size", "all_layers", "awq", "scale_estimation", "gptq", "lora_correction",
            "backup_mode", "sensitivity_metric", "subset_size")


def read_config(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "config.json").read_text())
