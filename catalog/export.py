"""Getting a variant out: a folder or zip with its files, a manifest and a run snippet."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import asdict
from pathlib import Path

from catalog import config
from catalog.errors import ConflictError, ReadOnlyRootError
from catalog.files import remove_tree, sha256_file
from catalog.sources import get_source
from catalog.variants import ancestors, get_variant, variant_path

RUN_SNIPPETS = {
    "gguf": ("from llama_cpp import Llama\n"
             "llm = Llama(model_path=\"{main}\", n_ctx=2048, n_threads=4)\n"
             "print(llm(\"The capital of France is\", max_tokens=32)[\"choices\"][0][\"text\"])\n"
             "# or: llama-cli -m {main} -p \"The capital of France is\" -n 32\n"),
    "hf": ("from transformers import AutoModelForCausalLM, AutoTokenizer\n"
           "tok = AutoTokenizer.from_pretrained(\".\")\n"
           "model = AutoModelForCausalLM.from_pretrained(\".\")\n"
           "ids = tok(\"The capital of France is\", return_tensors=\"pt\")\n"
           "print(tok.decode(model.generate(**ids, max_new_tokens=32)[0]))\n"),
    "onnx-genai": ("import onnxruntime_genai as og\n"
                   "model = og.Model(\".\")\n"
                   "tok = og.Tokenizer(model)\n"
                   "params = og.GeneratorParams(model)\n"
                   "params.set_search_options(max_length=64)\n"
                   "gen = og.Generator(model, params)\n"
                   "gen.append_tokens(tok.encode(\"The capital of France is\"))\n"
                   "while not gen.is_done():\n"
                   "    gen.generate_next_token()\n"
                   "print(tok.decode(gen.get_sequence(0)))\n"),
    "onnx": ("import onnxruntime as ort\n"
             "session = ort.InferenceSession(\"{main}\", providers=[\"CPUExecutionProvider\"])\n"
             "print([i.name for i in session.get_inputs()])\n"),
    # ONNX encoders and classifiers, by their source's task
    "onnx:feature-extraction": (
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
    "onnx:image-classification": (
        "import numpy as np, onnxruntime as ort\n"
        "session = ort.InferenceSession(\"{main}\", providers=[\"CPUExecutionProvider\"])\n"
        "images = np.zeros((1, 1, 8, 8), dtype=np.float32)  # pixel values / 16, shape (batch, 1, 8, 8)\n"
        "print(\"predicted class:\", session.run(None, {{\"pixel_values\": images}})[0].argmax(-1))\n"),
}


def manifest(variant_id: str) -> dict:
    variant = get_variant(variant_id)
    source = get_source(variant.source_id)
    return {
        "variant": {k: v for k, v in asdict(variant).items() if k not in ("files",)},
        "source": {"id": source.id, "name": source.name, "origin": source.origin_ref,
                   "revision": source.origin_revision, "license": source.license},
        "lineage": [{"id": a.id, "format": a.format, "precision": a.precision,
                     "backend": a.backend, "conversion": a.conversion} for a in ancestors(variant_id)],
        "files": [asdict(f) for f in variant.files],
    }


def export_variant(variant_id: str, dest: Path, as_zip: bool = False) -> Path:
    """Write the variant's files, manifest.json and RUN.md under dest; return the folder or zip."""
    variant = get_variant(variant_id)
    if variant.state != "available":
        raise ConflictError(f"Variant {variant_id} is {variant.state.replace('_', ' ')}; only an "
                            "available variant can be exported.")
    source_dir = variant_path(variant)
    source = get_source(variant.source_id)
    name = f"{source.name}-{variant.precision or variant.format}-{variant.id}".replace(" ", "_")
    folder = dest / name
    tmp = dest / f".{name}.partial"
    remove_tree(tmp)
    tmp.mkdir(parents=True)
    try:
        for f in variant.files:
            target = tmp / f.relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_dir / f.relpath, target)
            if sha256_file(target) != f.sha256:
                raise ConflictError(f"{f.relpath} no longer matches its recorded sha256; the stored "
                                    "copy is damaged, re-create the variant.")
        main = next((f.relpath for f in variant.files if f.relpath.endswith((".gguf", ".onnx"))), ".")
        snippet = RUN_SNIPPETS.get(f"{variant.format}:{source.task}", RUN_SNIPPETS.get(variant.format, "")).format(
            main=main)
        (tmp / "manifest.json").write_text(json.dumps(manifest(variant_id), indent=2, default=str))
        (tmp / "RUN.md").write_text(f"# {name}\n\nRun it:\n\n```python\n{snippet}```\n")
        if as_zip:
            zpath = dest / f"{name}.zip"
            with zipfile.ZipFile(zpath.with_suffix(".zip.partial"), "w", zipfile.ZIP_DEFLATED) as zf:
                for path in sorted(tmp.rglob("*")):
                    if path.is_file():
                        zf.write(path, f"{name}/{path.relative_to(tmp)}")
            zpath.with_suffix(".zip.partial").replace(zpath)
            return zpath
        remove_tree(folder)
        tmp.rename(folder)
        return folder
    finally:
        remove_tree(tmp)
        (dest / f"{name}.zip.partial").unlink(missing_ok=True)


def export_to_downloads(variant_id: str) -> Path:
    """A zip under the data root's exports folder, for the browser's download button."""
    from catalog import db

    if db.read_only_root():
        raise ReadOnlyRootError(db.read_only_sentence())
    dest = config.data_root() / "exports"
    dest.mkdir(exist_ok=True)
    return export_variant(variant_id, dest, as_zip=True)
