"""The Hugging Face folder format, declared as data. It has no conversions of its own: other
toolkits convert to and from it, and its runners are the PyTorch reference."""

from __future__ import annotations

from backends.hf import encoder_classifier_runner, import_check, reference_runner
from backends.registry import Format, ImportCheck, Toolkit, register_toolkit

RUN_SNIPPET = ("from transformers import AutoModelForCausalLM, AutoTokenizer\n"
               "tok = AutoTokenizer.from_pretrained(\".\")\n"
               "model = AutoModelForCausalLM.from_pretrained(\".\")\n"
               "ids = tok(\"The capital of France is\", return_tensors=\"pt\")\n"
               "print(tok.decode(model.generate(**ids, max_new_tokens=32)[0]))\n")

HF = Format(
    name="hf", title="Hugging Face (safetensors)", runtime="PyTorch", main_suffix=None,
    hub_library="transformers",
    runtime_imports=("transformers", "torch"), runtime_versions=reference_runner.runtime_versions,
    open_runner=reference_runner.load, open_encoder_classifier=encoder_classifier_runner.load,
    run_snippets={"": RUN_SNIPPET},
    import_check=ImportCheck(recognise=import_check.recognise, check=import_check.check,
                             describe=import_check.describe, check_snapshot=import_check.check_snapshot),
    import_as="a folder with config.json and safetensors",
    upload_suffixes=("safetensors", "json", "txt", "model", "jinja", "md"),
    hub_patterns=("*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.md"))

TOOLKIT = register_toolkit(Toolkit(
    name="hf", title="Hugging Face transformers", runtime="PyTorch CPU", packages=("torch", "transformers"),
    distributions=("transformers", "torch"), formats=(HF,),
    libraries=(("torch", "PyTorch"), ("transformers", "transformers"), ("safetensors", "safetensors"))))
