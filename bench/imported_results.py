"""Results measured elsewhere, imported: a device run's result.json (bench.device_import) or an
upstream tool's report (bench.upstream_reports). Everything is checked before anything is stored;
the service action stores the result and its audit row in one transaction."""

from __future__ import annotations

import json
from pathlib import PurePath

from bench.device_import import DEVICE_RESULT_KIND, from_device_result
from bench.upstream_reports import ImportedResult, from_report
from catalog import db, results
from catalog.errors import InvalidInputError

MAX_BYTES = 20 * 2**20  # a result or report is a few kilobytes; a device result with its raw output, < 1 MB


def read_imported(file_name: str, data: bytes, variant_id: str | None = None) -> list[ImportedResult]:
    """The file as imported results (a device run may hold several variants), checked; one
    sentence (InvalidInputError) if any part cannot be imported."""
    name = PurePath(file_name).name or "the file"
    if len(data) > MAX_BYTES:
        raise InvalidInputError(f"{name} is {len(data) / 2**20:.1f} MB; a benchmark result or report to import "
                                f"is at most {MAX_BYTES // 2**20} MB.")
    if not data.strip():
        raise InvalidInputError(f"{name} is empty.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{name} is not UTF-8 text; a result or report to import is JSON, CSV or "
                                "markdown text.") from None
    parsed = _json_object(text)
    if parsed is not None and parsed.get("kind") == DEVICE_RESULT_KIND:
        if variant_id:
            raise InvalidInputError("A device-run result names its own variants; import it without --variant.")
        return from_device_result(parsed)
    return [from_report(text, name, variant_id)]


def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def store(found: ImportedResult, imported_by: str) -> str:
    """Write one result (inside the caller's transaction, when there is one); returns its id."""
    raw = found.raw | {"imported_by": imported_by}
    with db.connect() as conn:
        return results.add_result(
            conn, variant_id=found.variant.id, source_id=found.variant.source_id, job_id=None,
            protocol_id=found.protocol_id, profile=found.profile, runtime=found.runtime,
            fingerprint_id=_fingerprint_id(found), fingerprint=found.fingerprint, metrics=found.metrics, raw=raw,
            toolkit_versions=found.toolkit_versions, flags=found.flags)


def _fingerprint_id(found: ImportedResult) -> str:
    from bench.fingerprint import fingerprint_id

    return fingerprint_id(found.fingerprint)
