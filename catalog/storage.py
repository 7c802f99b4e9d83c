"""Disk use per source, and cleanup of intermediates and orphaned files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from catalog import config, db, uploads
from catalog.files import folder_size, remove_tree
from catalog.records import ACTIVE_JOB_STATES

log = logging.getLogger(__name__)


@dataclass
class Orphan:
    path: Path
    size_bytes: int
    reason: str


def disk_by_source() -> list[dict]:
    with db.connect(write=False) as conn:
        return conn.query(
            """SELECT s.id, s.name, count(v.id) FILTER (WHERE v.state = 'available') AS variants,
                      coalesce(sum(v.size_bytes) FILTER (WHERE v.state = 'available'), 0) AS bytes,
                      coalesce(sum(v.size_bytes) FILTER (WHERE v.state = 'available' AND v.intermediate), 0)
                        AS intermediate_bytes
               FROM sources s LEFT JOIN variants v ON v.source_id = s.id
               GROUP BY s.id, s.name ORDER BY bytes DESC""")


@dataclass
class DiskUse:
    """What the Storage page draws: the `top` sources by bytes, the rest summed in one row."""

    rows: list[dict]
    total_bytes: int
    others: int  # sources summed into the last row (0: none)


def disk_use(top: int) -> DiskUse:
    """disk_by_source's figures summed in SQL: the biggest `top` sources, then one row for the
    rest, and the catalog's total (no row per source reaches Python)."""
    with db.connect(write=False) as conn:
        rows = conn.query(
            """WITH per AS (
                   SELECT source_id, sum(size_bytes) AS bytes,
                          coalesce(sum(size_bytes) FILTER (WHERE intermediate), 0) AS intermediate_bytes
                   FROM variants WHERE state = 'available' GROUP BY source_id),
               ranked AS (SELECT *, row_number() OVER (ORDER BY bytes DESC, source_id) AS n FROM per)
               SELECT r.source_id AS id, s.name, r.bytes, r.intermediate_bytes, FALSE AS rest, 0 AS others
               FROM ranked r JOIN sources s ON s.id = r.source_id WHERE r.n <= ?
               UNION ALL
               SELECT NULL, NULL, coalesce(sum(bytes), 0), coalesce(sum(intermediate_bytes), 0), TRUE, count(*)
               FROM ranked WHERE n > ?
               ORDER BY rest, bytes DESC""", [top, top])
    summed = rows.pop() if rows and rows[-1]["rest"] else None
    others = int(summed["others"]) if summed else 0
    if summed and others:
        rows.append({"id": None, "name": f"{others} others", "bytes": int(summed["bytes"]),
                     "intermediate_bytes": int(summed["intermediate_bytes"])})
    return DiskUse(rows, sum(int(r["bytes"]) for r in rows), others)


def intermediates(limit: int | None = None) -> list[dict]:
    """Available intermediates, biggest first (the first `limit` of them, when given)."""
    with db.connect(write=False) as conn:
        return conn.query("SELECT id, source_id, format, precision, size_bytes FROM variants "
                          "WHERE intermediate AND state = 'available' ORDER BY size_bytes DESC, id"
                          + (" LIMIT ?" if limit is not None else ""), [limit] if limit is not None else None)


def intermediates_summary() -> tuple[int, int]:
    """How many available intermediates there are, and their bytes."""
    with db.connect(write=False) as conn:
        row = conn.one("SELECT count(*) AS n, coalesce(sum(size_bytes), 0) AS bytes FROM variants "
                       "WHERE intermediate AND state = 'available'")
    return (int(row["n"]), int(row["bytes"])) if row else (0, 0)


def find_orphans() -> list[Orphan]:
    """Files in the data root that no catalog row accounts for."""
    with db.connect(write=False) as conn:
        known = {(r["source_id"], r["id"]) for r in conn.query(
            "SELECT source_id, id FROM variants WHERE state <> 'deleted'")}
        active = {r["id"] for r in conn.query(
            f"SELECT id FROM jobs WHERE state IN {ACTIVE_JOB_STATES}")}
    orphans: list[Orphan] = []
    for source_dir in config.artifacts_dir().iterdir():
        for vdir in source_dir.iterdir() if source_dir.is_dir() else []:
            if (source_dir.name, vdir.name) not in known:
                orphans.append(Orphan(vdir, folder_size(vdir), "no variant row"))
    for jdir in config.jobs_dir().iterdir():
        work = jdir / "work"
        if work.exists() and jdir.name not in active:
            orphans.append(Orphan(work, folder_size(work), "work folder of a finished job"))
    for upload in _uploads():
        orphans.append(Orphan(upload, folder_size(upload), "upload never imported"))
    smoke = config.smoke_cache_root()
    kept_ids = {vid for _, vid in known}
    for cached in smoke.iterdir() if smoke.exists() else []:
        if cached.name not in kept_ids:
            orphans.append(Orphan(cached, folder_size(cached), "smoke-test predictions of a deleted variant"))
    exports = config.data_root() / "exports"
    for item in exports.iterdir() if exports.exists() else []:
        orphans.append(Orphan(item, folder_size(item), "exported zip"))
    return orphans


def clean_orphans() -> int:
    freed = 0
    for orphan in find_orphans():
        remove_tree(orphan.path)
        freed += orphan.size_bytes
    log.info("cleaned %d bytes of orphans", freed)
    return freed


def _uploads() -> list[Path]:
    """Each staged upload and saved calibration file, inside its owner's folder (or at the top,
    where catalogs before per-user folders put them)."""
    found: list[Path] = []
    for item in config.uploads_dir().iterdir():
        owned = item.is_dir() and item.name.startswith(uploads.OWNER_PREFIX)
        found.extend(item.iterdir() if owned else [item])
    return found
