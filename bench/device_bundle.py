"""Device-run bundles: what a teammate needs to run this catalog's benchmark protocol on another
machine (a Mac, a Snapdragon laptop) with only the variant's runtime package installed.

A bundle is a zip holding manifest.json (the protocol and its parameters, each variant's files
with their sha256, the workload), run_bundle.py (bench/run_bundle.py: the standard library only),
one runner script per format (declared by its toolkit) and, unless only hashes are asked for, the
variants' files. The workload of a text-generation model: prompt ids and the evaluation text as
token ids of the source's tokenizer, so quality is scored on the same ids as here (runners:
Format.bundle_runner). Of an encoder or classifier: the protocol's held-out inputs as arrays in
inputs.npz (tokenized here; the latency batch is their first rows), whose outputs come back raw
and are scored at import against the reference run here (Format.encoder_classifier_bundle_runner).
`python run_bundle.py` writes result.json; bench.device_import reads it back.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from backends.registry import get_format, main_file, offline_environment
from bench.baseline import reference_variant
from bench.protocol import CausalLMProtocol, protocol_for
from catalog import sources, variants
from catalog.errors import InvalidInputError
from catalog.records import Variant
from workloads.encoder_classifier_inputs import CLASSIFIER_TASK, ENCODER_CLASSIFIER_TASKS

log = logging.getLogger(__name__)

BUNDLE_KIND = "model-catalog device bundle"
BUNDLE_VERSION = 1
INPUTS = "inputs.npz"
OUTPUT_BATCH = 16  # held-out inputs run in batches of this size, as the catalog's quality runs do
DRIVER = Path(__file__).with_name("run_bundle.py")


class _Log:
    """What the eval-id tokenizer logs to when no job runs it."""

    @staticmethod
    def log(message: str) -> None:
        log.info(message)


def _reference(variant: Variant) -> Variant:
    reference = reference_variant(variant.source_id)
    if reference is None:
        raise InvalidInputError(f"{variant.label}'s model has no Hugging Face (safetensors) form to make the "
                                "workload with; convert it to one first.")
    return reference


def _eval_ids(variant: Variant) -> list[int]:
    from bench.jobs.causal_lm import _eval_ids as job_eval_ids

    return job_eval_ids(_Log(), variant.source_id, _reference(variant))  # type: ignore[arg-type]


def runner_script(fmt_name: str, task: str | None) -> Path | None:
    """The standalone runner a format's toolkit declares for the task's protocol."""
    fmt = get_format(fmt_name)
    return fmt.encoder_classifier_bundle_runner if task in ENCODER_CLASSIFIER_TASKS else fmt.bundle_runner


def bundleable(family: list[Variant]) -> list[str]:
    """The ids of a model's variants a device bundle can hold (available, with a runner declared
    for the model's task)."""
    if not family:
        return []
    task = sources.get_source(family[0].source_id).task
    return [v.id for v in family if v.state == "available" and runner_script(v.format, task) is not None]


def _checked(variant_ids: list[str]) -> tuple[list[Variant], str | None]:
    """The variants and their model's task, or one sentence on why they cannot be bundled."""
    if not variant_ids:
        raise InvalidInputError("Name at least one variant to bundle.")
    found = [variants.get_variant(v) for v in dict.fromkeys(variant_ids)]
    if len({v.source_id for v in found}) > 1:
        raise InvalidInputError("A bundle holds variants of one model, so they share one workload; make one "
                                "bundle per model.")
    task = sources.get_source(found[0].source_id).task
    for v in found:
        if v.state != "available":
            raise InvalidInputError(f"Variant {v.id} is {v.state}; only an available variant can be bundled.")
        if runner_script(v.format, task) is None:
            raise InvalidInputError(f"No device runner is declared for {get_format(v.format).title} "
                                    f"{task or 'text-generation'} variants yet ({v.label}); bundle a variant of "
                                    "another format.")
    return found, task


def _entry(v: Variant) -> dict[str, Any]:
    fmt = get_format(v.format)
    main = main_file(v)
    folder = variants.variant_path(v)
    return {"id": v.id, "label": v.label, "format": v.format, "runtime": fmt.runtime,
            "runner": f"runners/{v.format}.py", "main": main.relative_to(folder).as_posix() if main != folder else ".",
            "files": [{"relpath": f.relpath, "sha256": f.sha256, "size": f.size_bytes} for f in v.files],
            "made_for": {k: v.metadata[k] for k in fmt.bundle_facts if v.metadata.get(k) is not None}}


def _header(found: list[Variant], protocol: Any, include_files: bool, made_by: str) -> dict[str, Any]:
    return {"kind": BUNDLE_KIND, "bundle_version": BUNDLE_VERSION, "made_at": datetime.now(UTC).isoformat(),
            "made_by": made_by, "source_id": found[0].source_id, "files_included": include_files,
            # set by the driver before any runtime loads: off the network, telemetry off (onnxruntime
            # records events under the user's cache on import unless told not to)
            "environment": offline_environment(),
            "protocol": asdict(protocol) | {"id": protocol.id}}


def manifest(found: list[Variant], protocol: CausalLMProtocol, include_files: bool, made_by: str) -> dict[str, Any]:
    ids = _eval_ids(found[0])
    windows = protocol.windows(len(ids))
    scored = max((e for _, e in windows), default=0)
    return _header(found, protocol, include_files, made_by) | {
        "workload": {"prompt_ids": ids[: protocol.prompt_tokens], "eval_ids": ids[:scored], "windows": windows,
                     "gen_prompts": list(protocol.gen_prompts)},
        "variants": [_entry(v) for v in found]}


def tensor_manifest(found: list[Variant], task: str, profile: str, include_files: bool,
                    made_by: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The manifest of an encoder/classifier bundle, and its held-out inputs. Each variant runs the
    protocol its format's runners run (a simulator's fewer repetitions), named in its entry; the
    inputs are the most any of them scores, and each takes its own protocol's first rows."""
    from bench.jobs.encoder_classifier import held_out_feeds, protocol_of

    protocols = {v.id: protocol_of(v.format, task, profile) for v in found}
    widest = max(protocols.values(), key=lambda p: (p.eval_samples == 0, p.eval_samples, p.batch_size))
    feeds = held_out_feeds(widest, _reference(found[0]))
    data = _header(found, protocol_for(profile, task), include_files, made_by) | {
        "workload": {"inputs": INPUTS, "output_batch": OUTPUT_BATCH,
                     "pooling": "none" if task == CLASSIFIER_TASK else "mean",
                     "samples": len(next(iter(feeds.values())))},
        "variants": [_entry(v) | {"protocol": asdict(protocols[v.id]) | {"id": protocols[v.id].id}} for v in found]}
    return data, feeds


def write_bundle(variant_ids: list[str], out: Path, profile: str = "quick", include_files: bool = True,
                 made_by: str = "") -> dict[str, Any]:
    """Write the bundle zip; returns its manifest. Nothing is left at out if it fails."""
    found, task = _checked(variant_ids)
    feeds: dict[str, np.ndarray] = {}
    if task in ENCODER_CLASSIFIER_TASKS:
        data, feeds = tensor_manifest(found, task, profile, include_files, made_by)
    else:
        protocol = protocol_for(profile, "text-generation")
        assert isinstance(protocol, CausalLMProtocol)
        data = manifest(found, protocol, include_files, made_by)
    partial = out.with_name(out.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps(data, indent=1))
            zf.write(DRIVER, "run_bundle.py")
            if feeds:
                buffer = io.BytesIO()
                np.savez(buffer, **feeds)
                zf.writestr(INPUTS, buffer.getvalue())
            for v in found:
                runner = runner_script(v.format, task)
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
    notes = "".join(f"{note}\n" for note in dict.fromkeys(get_format(v["format"]).bundle_note for v in data["variants"])
                    if note)
    where = ("" if data["files_included"] else
             "The variants' files are not included: give the folder holding them with --models DIR.\n")
    return (f"Device-run bundle of {', '.join(v['label'] for v in data['variants'])} "
            f"(protocol {data['protocol']['id']}, {data['protocol']['profile']} profile).\n\n"
            f"Needs Python 3.10+ and the runtime package of each variant ({', '.join(runtimes)}); nothing else.\n"
            "The runtimes run offline with their telemetry off (the variables in manifest.json's environment).\n"
            f"{notes}{where}\n  unzip bundle.zip -d bundle && cd bundle && python run_bundle.py\n\n"
            "It checks every file's sha256, runs the protocol and writes result.json (the raw output and this "
            "machine's description). Import that file into the catalog: `cli.py bench import result.json` or the "
            "upload on the Benchmarks page.\n")
