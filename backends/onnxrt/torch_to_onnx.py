"""Export of encoders and image classifiers to ONNX, with dynamic batch (and sequence) axes.

Models come only from a Hugging Face folder's config + safetensors (transformers' AutoModel,
remote code off) or from this repository's code (the digits CNN): never from a pickle. The
TorchScript exporter is used because it needs no extra package and keeps Linear layers on 3-D
inputs as MatMul, which the INT4 weight-only quantizer needs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from backends.hf.folder import copy_companions
from catalog.errors import InvalidInputError
from workloads.digits_cnn import is_digits_cnn, load_module
from workloads.encoder_classifier_inputs import CLASSIFIER_TASK, ENCODER_INPUTS, ENCODER_TASK

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
EXPORT_TASKS = (ENCODER_TASK, CLASSIFIER_TASK)
MASKED_SCORE = -10_000.0


def export_task(folder: Path) -> str:
    """The task an HF folder exports as, or a sentence saying why it cannot be exported here."""
    if is_digits_cnn(folder):
        return CLASSIFIER_TASK
    config = json.loads((folder / "config.json").read_text())
    archs = config.get("architectures") or []
    if archs and archs[0].endswith(("ForCausalLM", "ForConditionalGeneration")):
        raise InvalidInputError("This is a text-generation model; export it with 'Hugging Face → ONNX Runtime "
                                "GenAI (model builder)' instead.")
    if config.get("model_type") not in ("bert", "roberta", "distilbert", "xlm-roberta", "mpnet", "electra"):
        raise InvalidInputError(f"Exporting {config.get('model_type') or 'this model type'} to ONNX is not "
                                "supported here; BERT-family encoders and the digits CNN are.")
    if not (folder / "tokenizer.json").is_file():
        raise InvalidInputError("This encoder has no tokenizer.json; add the fast tokenizer file and import it "
                                "again.")
    return ENCODER_TASK


def to_onnx(folder: Path, out: Path, opset: int) -> dict[str, Any]:
    """Write out/model.onnx (+ companions); returns the task and the axes made dynamic."""
    import torch

    task = export_task(folder)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if task == CLASSIFIER_TASK:
        module = load_module(folder)
        args: tuple[Any, ...] = (torch.zeros(2, 1, 8, 8),)
        names, outputs = ["pixel_values"], ["logits"]
        axes = {"pixel_values": {0: "batch"}, "logits": {0: "batch"}}
    else:
        from transformers import AutoModel

        config = json.loads((folder / "config.json").read_text())
        model = AutoModel.from_pretrained(folder, use_safetensors=True, trust_remote_code=False,
                                          local_files_only=True, dtype=torch.float32,
                                          attn_implementation="eager").eval()
        names = list(ENCODER_INPUTS if config.get("type_vocab_size", 0) else ENCODER_INPUTS[:2])
        module = _hidden_states(model, names)
        args = tuple(torch.ones(2, 16, dtype=torch.long) for _ in names)
        outputs = ["last_hidden_state"]
        axes = {n: {0: "batch", 1: "sequence"} for n in [*names, *outputs]}
    with torch.no_grad():
        torch.onnx.export(module, args, str(out / MODEL_FILE), input_names=names, output_names=outputs,
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    copy_companions(folder, out)
    return {"task": task, "dynamic_axes": {k: list(v.values()) for k, v in axes.items()}, "opset_version": opset}


def _hidden_states(model: Any, names: list[str]) -> Any:
    """The encoder called with positional inputs, returning last_hidden_state only."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            kwargs = dict(zip(names, inputs, strict=True))
            # transformers' mask builders cannot be traced; an additive 4-D mask is used as given. It
            # is -10,000 (as BERT's own code had it), not float32's minimum: calibrated quantizers
            # histogram every activation, and an astronomically wide range leaves them no resolution.
            mask = kwargs["attention_mask"][:, None, None, :].to(torch.float32)
            kwargs["attention_mask"] = (1.0 - mask) * MASKED_SCORE
            return self.model(**kwargs).last_hidden_state

    return HiddenStates()
