"""Getting a variant out: a folder or zip with its files, a manifest and a run snippet.

The texts that come from the variant's toolkit (the run snippet, the Hub library of its card) are
handed in by backends/export.py, which asks the registry: the catalog names no toolkit."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import asdict
from pathlib import Path

from catalog import config
from catalog.errors import ConflictError, ReadOnlyRootError
from catalog.files import remove_tree, sha256_file
from catalog.model_card import model_card
from catalog.records import Variant
from catalog.sources import get_source
from catalog.variants import ancestors, get_variant, variant_path

MANIFEST = "manifest.json"
# Written by the export beside the variant's own files; a variant's own README.md is kept as
# README.original.md, since the export's README.md is the generated model card.
GENERATED = ("README.md", "RUN.md")
ORIGINAL_CARD = "README.original.md"


def _exported_as(relpath: str) -> str:
    return ORIGINAL_CARD if relpath == "README.md" else relpath


def manifest(variant_id: str) -> dict:
    """What an export of the variant holds: `files` are the variant's own files under the names
    the export gives them (sha256 and size as stored); `generated` lists the files the export
    writes (their hashes are added by write_export)."""
    variant = get_variant(variant_id)
    source = get_source(variant.source_id)
    return {
        "variant": {k: v for k, v in asdict(variant).items() if k not in ("files",)},
        "source": {"id": source.id, "name": source.name, "origin": source.origin_ref,
                   "revision": source.origin_revision, "license": source.license},
        "lineage": [{"id": a.id, "format": a.format, "precision": a.precision,
                     "backend": a.backend, "conversion": a.conversion} for a in ancestors(variant_id)],
        "files": [{**asdict(f), "relpath": _exported_as(f.relpath)} for f in variant.files],
        "generated": [],
    }


def verify_export(folder: Path) -> None:
    """Check an exported folder against its manifest: every listed file present with its size and
    sha256, and no file the manifest does not list. Raises ConflictError with the first mismatch."""
    data = json.loads((folder / MANIFEST).read_text())
    listed = {f["relpath"]: f for f in [*data["files"], *data.get("generated", [])]}
    for relpath, entry in listed.items():
        path = folder / relpath
        if not path.is_file():
            raise ConflictError(f"The export lacks {relpath}, which its manifest lists; export the variant again.")
        if path.stat().st_size != entry["size_bytes"] or sha256_file(path) != entry["sha256"]:
            raise ConflictError(f"{relpath} in the export does not match its manifest; export the variant again.")
    extra = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                   if p.is_file() and p.name != MANIFEST and str(p.relative_to(folder)) not in listed)
    if extra:
        raise ConflictError(f"The export holds files its manifest does not list ({', '.join(extra[:3])}); "
                            "export the variant again.")


def export_name(source_name: str, variant: Variant) -> str:
    """The folder or zip name of an export: source, format, precision and id, so an OpenVINO INT4
    and a GenAI INT4 of one source are told apart by name ("SmolLM2-openvino-INT4-v-...")."""
    parts = [source_name, variant.format]
    if variant.precision and variant.precision.lower() != variant.format.lower():
        parts.append(variant.precision)
    return "-".join([*parts, variant.id]).replace(" ", "_")


def write_export(variant_id: str, dest: Path, run_snippet: str, hub_library: str | None,
                 as_zip: bool = False, unused: list[str] | None = None) -> Path:
    """Write the variant's files, manifest.json, README.md (its model card, hub_library in its
    metadata; `unused`: the recipe's options no step read) and RUN.md (run_snippet, from its
    format's toolkit) under dest; return the folder or zip."""
    variant = get_variant(variant_id)
    if variant.state != "available":
        raise ConflictError(f"Variant {variant_id} is {variant.state.replace('_', ' ')}; only an "
                            "available variant can be exported.")
    source_dir = variant_path(variant)
    source = get_source(variant.source_id)
    name = export_name(source.name, variant)
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
        if (tmp / "README.md").exists():  # the source's own card: kept beside the variant's
            (tmp / "README.md").rename(tmp / ORIGINAL_CARD)
        (tmp / "RUN.md").write_text(f"# {name}\n\nRun it:\n\n```python\n{run_snippet}```\n")
        (tmp / "README.md").write_text(model_card(variant, source, ancestors(variant_id),
                                                  hub_library, unused or []))
        listing = manifest(variant_id)
        listing["generated"] = [{"relpath": g, "size_bytes": (tmp / g).stat().st_size,
                                 "sha256": sha256_file(tmp / g)} for g in GENERATED]
        (tmp / MANIFEST).write_text(json.dumps(listing, indent=2, default=str))
        verify_export(tmp)  # what leaves the catalog agrees with its own manifest
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


def downloads_dir() -> Path:
    """The data root's exports folder, where zips for the browser's download button are made."""
    from catalog import db

    if db.read_only_root():
        raise ReadOnlyRootError(db.read_only_sentence())
    dest = config.data_root() / "exports"
    dest.mkdir(exist_ok=True)
    return dest
