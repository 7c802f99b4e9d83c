"""Device-run bundles: what a teammate needs to run this catalog's benchmark protocol on another
machine (a Mac, a Snapdragon laptop) with only the variant's runtime package installed.

A bundle is a zip holding manifest.json (the protocol and its parameters, each variant's files
with their sha256, the workload: prompt ids and the evaluation text as token ids of the source's
tokenizer, so quality is scored on the same ids as here), run_bundle.py (bench/run_bundle.py: the
standard library only), one runner script per format (declared by its toolkit:
Format.bundle_runner) and, unless only hashes are asked for, the variants' files.
`python run_bundle.py` writes result.json; bench.device_import reads it back.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backends.registry import get_format, main_file
from bench.baseline import reference_variant
from bench.protocol import CausalLMProtocol, protocol_for
from catalog import sources, variants
from catalog.errors import InvalidInputError
from catalog.records import Variant

log = logging.getLogger(__name__)

BUNDLE_KIND = "model-catalog device bundle"
BUNDLE_VERSION = 1
DRIVER = Path(__file__).with_name("run_bundle.py")


class _Log:
    """What the eval-id tokenizer logs to when no job runs it."""

    @staticmethod
    def log(message: str) -> None:
        log.info(message)


def _eval_ids(variant: Variant) -> list[int]:
    from bench.jobs.causal_lm import _eval_ids as job_eval_ids

    reference = reference_variant(variant.source_id)
    if reference is None:
        raise InvalidInputError(f"{variant.label}'s model has no Hugging Face (safetensors) form to tokenize the "
                                "evaluation text with; convert it with 'GGUF → Hugging Face safetensors' first.")
    return job_eval_ids(_Log(), variant.source_id, reference)  # type: ignore[arg-type]


def _checked(variant_ids: list[str]) -> list[Variant]:
    if not variant_ids:
        raise InvalidInputError("Name at least one variant to bundle.")
    found = [variants.get_variant(v) for v in dict.fromkeys(variant_ids)]
    for v in found:
        if v.state != "available":
            raise InvalidInputError(f"Variant {v.id} is {v.state}; only an available variant can be bundled.")
        fmt = get_format(v.format)
        if fmt.bundle_runner is None:
            raise InvalidInputError(f"No device runner is declared for {fmt.title} variants yet ({v.label}); "
                                    "bundle a variant of another format.")
        if sources.get_source(v.source_id).task not in (None, "text-generation"):
            raise InvalidInputError(f"{v.label} is not a text-generation model; device bundles run the "
                                    "text-generation protocol only so far.")
    if len({v.source_id for v in found}) > 1:
        raise InvalidInputError("A bundle holds variants of one model, so they share one workload; make one "
                                "bundle per model.")
    return found


def manifest(found: list[Variant], protocol: CausalLMProtocol, include_files: bool, made_by: str) -> dict[str, Any]:
    ids = _eval_ids(found[0])
    windows = protocol.windows(len(ids))
    scored = max((e for _, e in windows), default=0)
    entries = []
    for v in found:
        fmt = get_format(v.format)
        main = main_file(v)
        folder = variants.variant_path(v)
        entries.append({
            "id": v.id, "label": v.label, "format": v.format, "runtime": fmt.runtime,
            "runner": f"runners/{v.format}.py",
            "main": main.relative_to(folder).as_posix() if main != folder else ".",
            "files": [{"relpath": f.relpath, "sha256": f.sha256, "size": f.size_bytes} for f in v.files],
        })
    return {
        "kind": BUNDLE_KIND, "bundle_version": BUNDLE_VERSION, "made_at": datetime.now(UTC).isoformat(),
        "made_by": made_by, "source_id": found[0].source_id, "files_included": include_files,
        "protocol": asdict(protocol) | {"id": protocol.id},
        "workload": {"prompt_ids": ids[: protocol.prompt_tokens], "eval_ids": ids[:scored], "windows": windows,
                     "gen_prompts": list(protocol.gen_prompts)},
        "variants": entries,
    }


def write_bundle(variant_ids: list[str], out: Path, profile: str = "quick", include_files: bool = True,
                 made_by: str = "") -> dict[str, Any]:
    """Write the bundle zip; returns its manifest. Nothing is left at out if it fails."""
    found = _checked(variant_ids)
    protocol = protocol_for(profile, "text-generation")
    assert isinstance(protocol, CausalLMProtocol)
    data = manifest(found, protocol, include_files, made_by)
    partial = out.with_name(out.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps(data, indent=1))
            zf.write(DRIVER, "run_bundle.py")
            for v in found:
                runner = get_format(v.format).bundle_runner
                assert runner is not None
                zf.write(runner, f"runners/{v.format}.py")
                if include_files:
                    folder = variants.variant_path(v)
                    for f in v.files:  # model weights barely compress: stored as they are
                        zf.write(folder / f.relpath, f"files/{v.id}/{f.relpath}", compress_type=zipfile.ZIP_STORED)
            zf.writestr("README.txt", _readme(data))
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return data


def _readme(data: dict[str, Any]) -> str:
    runtimes = sorted({v["runtime"] for v in data["variants"]})
    where = ("" if data["files_included"] else
             "The variants' files are not included: give the folder holding them with --models DIR.\n")
    return (f"Device-run bundle of {', '.join(v['label'] for v in data['variants'])} "
            f"(protocol {data['protocol']['id']}, {data['protocol']['profile']} profile).\n\n"
            f"Needs Python 3.10+ and the runtime package of each variant ({', '.join(runtimes)}); nothing else.\n"
            f"{where}\n  unzip bundle.zip -d bundle && cd bundle && python run_bundle.py\n\n"
            "It checks every file's sha256, runs the protocol and writes result.json (the raw output and this "
            "machine's description). Import that file into the catalog: `cli.py bench import result.json` or the "
            "upload on the Benchmarks page.\n")
