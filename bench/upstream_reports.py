"""Reports of the runtimes' own benchmark tools, imported as results of the machine they name.

Which tools are read, and how, is declared by each format (backends.registry.ReportReader); this
module tries them in turn, matches the report to a variant (the user's choice, else the file it
ran: by its hash where that file is on this server, else by its name) and turns it into an
imported result: another protocol ("imported:<tool>"), flagged imported, its fingerprint the
machine the report states. Nothing is stored here (bench.imported_results stores).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from backends.registry import Format, ReportReader, get_format, report_readers
from catalog import config, sources, variants
from catalog.errors import InvalidInputError
from catalog.files import sha256_file
from catalog.records import Variant
from catalog.results import IMPORTED_FLAG

log = logging.getLogger(__name__)

REPORT_FLAG = "upstream_report"
REPORT_PROFILE = "imported"


@dataclass
class ImportedResult:
    """What bench.imported_results stores: catalog.results.add_result's fields."""

    variant: Variant
    protocol_id: str
    profile: str
    runtime: str
    fingerprint: dict[str, Any]
    metrics: dict[str, Any]
    raw: dict[str, Any]
    toolkit_versions: dict[str, str]
    flags: list[str] = field(default_factory=list)

    @property
    def machine(self) -> str:
        return str(self.fingerprint.get("machine", ""))


def tools_read() -> str:
    """The tools whose reports import, in words."""
    return ", ".join(f"{r.tool} ({f.title})" for f, r in report_readers()) or "none"


def read_report(text: str) -> tuple[Format, ReportReader, dict[str, Any]]:
    for fmt, reader in report_readers():
        report = reader.read(text)
        if report is not None:
            return fmt, reader, report
    raise InvalidInputError("This file is neither a device-run result nor a report this catalog reads "
                            f"(it reads {tools_read()}).")


def _variants_with_file(name: str, fmt: str) -> list[Variant]:
    return [v for v in variants.variants_with_file_named(name) if v.format == fmt and v.state != "deleted"]


def _by_hash(path: str, candidates: list[Variant]) -> list[Variant]:
    """Those candidates holding the report's file by its bytes, where that file is a regular file
    this server may read (the data root or the import roots); else the candidates unchanged."""
    if not path:
        return candidates
    real = Path(path).expanduser()
    roots = [config.data_root().resolve(), *config.load_settings().allowed_paths]
    try:
        real = real.resolve()
        readable = real.is_file() and any(real == r or r in real.parents for r in roots)
    except OSError:
        readable = False
    if not readable:
        return candidates
    digest = sha256_file(real)
    return [v for v in candidates if any(f.sha256 == digest for f in v.files)]


def match_variant(fmt: Format, report: dict[str, Any], variant_id: str | None) -> Variant:
    tool = report["tool"]
    if variant_id:
        variant = variants.get_variant(variant_id)
        if variant.format != fmt.name:
            raise InvalidInputError(f"{tool} reports are read for {fmt.title} variants; {variant_id} is "
                                    f"{get_format(variant.format).title}.")
        return variant
    name = PurePath(report["model"].get("filename") or "").name
    if not name:
        raise InvalidInputError(f"This {tool} report does not name the model file it ran; name the variant "
                                "with --variant (or pick it on the Benchmarks page).")
    found = _by_hash(report["model"].get("path", ""), _variants_with_file(name, fmt.name))
    if len(found) != 1:
        which = "no variant" if not found else f"{len(found)} variants"
        raise InvalidInputError(f"This {tool} report ran {name}, which matches {which} of the catalog; name the "
                                "variant with --variant (or pick it on the Benchmarks page).")
    return variants.get_variant(found[0].id)


def machine_label(machine: dict[str, Any]) -> str:
    cpu = machine.get("cpu")
    parts = [cpu if cpu and cpu != "not stated" else "CPU not stated", machine.get("gpu"),
             machine.get("device") or machine.get("backends")]
    return " · ".join(str(p) for p in parts if p)


def from_report(text: str, file_name: str, variant_id: str | None = None) -> ImportedResult:
    """The report as an imported result of the variant it measured; one sentence if it cannot be."""
    fmt, reader, report = read_report(text)
    variant = match_variant(fmt, report, variant_id)
    why = reader.mismatch(report, variant, sources.get_source(variant.source_id))
    if why:
        raise InvalidInputError(why)
    machine = report["machine"]
    label = machine_label(machine)
    fp = {"cpu": machine.get("cpu", "not stated"), "cpu_flags_sha": "", "cores": None,
          "threads": machine.get("threads"), "memory_gb": None, "os": "not stated",
          "target": f"{reader.tool} {machine.get('device') or machine.get('backends') or ''}".strip(),
          "machine": label, "reported": machine}
    metrics = dict(report["metrics"])
    if variant.size_bytes:
        metrics.setdefault("size_mb", variant.size_bytes / 2**20)
    return ImportedResult(
        variant=variant, protocol_id=f"imported:{reader.tool}", profile=REPORT_PROFILE,
        runtime=f"{reader.tool} ({label})", fingerprint=fp, metrics=metrics,
        raw={"report": report, "file_name": PurePath(file_name).name},
        toolkit_versions={reader.tool: report["version"]},
        flags=[IMPORTED_FLAG, REPORT_FLAG])
