"""Benchmark results: stored with protocol, fingerprint and raw output; read back for charts."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from catalog import db
from catalog.identity import digest

# A result whose model gave NaN or infinite outputs: its quality is failed, never measured.
NONFINITE_FLAG = "nonfinite_outputs"
# Speed measured while other work loaded the machine, or whose repetitions varied by more than
# the protocol allows (bench.jobs): its quality stands, its speed is to be rerun.
BUSY_FLAG = "machine_loaded"
UNSTEADY_FLAG = "unsteady"


@dataclass
class BenchmarkResult:
    id: str
    variant_id: str
    source_id: str
    job_id: str | None
    protocol_id: str
    profile: str
    runtime: str
    fingerprint_id: str
    fingerprint: dict[str, Any]
    metrics: dict[str, Any]
    raw: dict[str, Any]
    toolkit_versions: dict[str, str]
    flags: list[str]
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BenchmarkResult:
        data = dict(row)
        for key, default in (("fingerprint", {}), ("metrics", {}), ("raw", {}), ("toolkit_versions", {}),
                             ("flags", [])):
            data[key] = json.loads(row.get(key) or "null") or default
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


def add_result(conn: db.Database, *, variant_id: str, source_id: str, job_id: str | None, protocol_id: str,
               profile: str, runtime: str, fingerprint_id: str, fingerprint: dict, metrics: dict, raw: dict,
               toolkit_versions: dict, flags: list[str]) -> str:
    rid = "r-" + digest(variant_id, job_id, datetime.now(UTC).isoformat(), length=16)
    conn.execute(
        "INSERT INTO benchmark_results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [rid, variant_id, source_id, job_id, protocol_id, profile, runtime, fingerprint_id,
         json.dumps(fingerprint), json.dumps(metrics), json.dumps(raw, default=str),
         json.dumps(toolkit_versions), json.dumps(flags), datetime.now(UTC)])
    return rid


# Results imported from other machines (a device run, an upstream tool's report) are kept apart
# per machine: a teammate's run never hides this machine's newest result of the same variant.
IMPORTED_FLAG = "imported"
_MACHINE = f"CASE WHEN flags LIKE '%\"{IMPORTED_FLAG}\"%' THEN fingerprint_id END"


def latest_results(source_id: str, profile: str | None = None, with_raw: bool = False) -> list[BenchmarkResult]:
    """The newest result per variant (and profile) of one source; an imported one per machine."""
    where, params = ["source_id = ?"], [source_id]
    if profile:
        where.append("profile = ?")
        params.append(profile)
    cols = "*" if with_raw else "* EXCLUDE (raw), NULL AS raw"
    with db.connect(write=False) as conn:
        rows = conn.query(
            f"""SELECT {cols} FROM benchmark_results WHERE {' AND '.join(where)}
                QUALIFY row_number() OVER (PARTITION BY variant_id, profile, {_MACHINE} ORDER BY created_at DESC) = 1
                ORDER BY created_at""", params)
    return [BenchmarkResult.from_row(r) for r in rows]


def results_by_id(result_ids: list[str]) -> list[BenchmarkResult]:
    """These results, in the order asked, with their raw output; ids no longer stored are skipped."""
    if not result_ids:
        return []
    with db.connect(write=False) as conn:
        rows = conn.query("SELECT * FROM benchmark_results WHERE list_contains(?, id)", [result_ids])
    by_id = {r["id"]: BenchmarkResult.from_row(r) for r in rows}
    return [by_id[i] for i in result_ids if i in by_id]


def newer_results(shown: list[BenchmarkResult]) -> dict[str, str]:
    """variant id -> the newest result id of the same variant and profile, where it is newer than
    the one shown (a saved comparison offers to update to those)."""
    if not shown:
        return {}
    with db.connect(write=False) as conn:
        rows = conn.query(
            f"""SELECT variant_id, profile, {_MACHINE} AS machine, id, created_at FROM benchmark_results
               WHERE list_contains(?, variant_id)
               QUALIFY row_number() OVER (PARTITION BY variant_id, profile, {_MACHINE} ORDER BY created_at DESC) = 1""",
            [sorted({r.variant_id for r in shown})])
    newest = {(r["variant_id"], r["profile"], r["machine"]): r for r in rows}
    out = {}
    for r in shown:
        machine = r.fingerprint_id if IMPORTED_FLAG in r.flags else None
        latest = newest.get((r.variant_id, r.profile, machine))
        if latest and latest["id"] != r.id and latest["created_at"] > r.created_at:
            out[r.variant_id] = latest["id"]
    return out


def sources_with_results(task_sources: list[str], profile: str) -> list[str]:
    """Those of these sources that have results of the profile."""
    if not task_sources:
        return []
    with db.connect(write=False) as conn:
        rows = conn.query("SELECT DISTINCT source_id FROM benchmark_results WHERE profile = ? "
                          "AND list_contains(?, source_id)", [profile, task_sources])
    return [r["source_id"] for r in rows]


def results_for_variant(variant_id: str) -> list[BenchmarkResult]:
    with db.connect(write=False) as conn:
        rows = conn.query("SELECT * FROM benchmark_results WHERE variant_id = ? ORDER BY created_at DESC",
                          [variant_id])
    return [BenchmarkResult.from_row(r) for r in rows]


def as_text(results: list[BenchmarkResult], fmt: str) -> str:
    """CSV (one row per result, metrics flattened) or JSON (everything)."""
    if fmt == "json":
        return json.dumps([asdict(r) for r in results], indent=2, default=str)
    keys = sorted({k for r in results for k in r.metrics})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["result_id", "variant_id", "profile", "protocol_id", "runtime", "fingerprint_id", "flags",
                     "created_at", *keys])
    for r in results:
        writer.writerow([r.id, r.variant_id, r.profile, r.protocol_id, r.runtime, r.fingerprint_id,
                         ";".join(r.flags), r.created_at, *[r.metrics.get(k, "") for k in keys]])
    return buf.getvalue()
