"""Variants: every concrete set of model files, the source's own and each derived one."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog import config, db
from catalog.errors import ConflictError, NotFoundError
from catalog.files import remove_tree
from catalog.identity import content_hash
from catalog.records import ACTIVE_JOB_STATES, Variant, VariantFile

log = logging.getLogger(__name__)


@dataclass
class NewVariant:
    """A variant about to be recorded; its files already sit in `variant_dir(...)`."""

    id: str
    source_id: str
    parent_id: str | None
    format: str
    precision: str | None
    backend: str
    conversion: str
    options: dict[str, Any] = field(default_factory=dict)
    toolkit_versions: dict[str, str] = field(default_factory=dict)
    job_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    intermediate: bool = False
    files: list[tuple[str, int, str]] = field(default_factory=list)  # relpath, size, sha256


def variant_dir(source_id: str, variant_id: str) -> Path:
    return config.artifacts_dir() / source_id / variant_id


def insert_variant(conn: db.Database, new: NewVariant) -> None:
    """Record a variant. One made again after it was deleted (or lost its files) takes its old
    row's place under the same id, so the lineage and results that name it still hold."""
    size = sum(f[1] for f in new.files)
    conn.execute("DELETE FROM variant_files WHERE variant_id IN "
                 "(SELECT id FROM variants WHERE id = ? AND state <> 'available')", [new.id])
    conn.execute("DELETE FROM variants WHERE id = ? AND state <> 'available'", [new.id])
    conn.execute(
        """INSERT INTO variants (id, source_id, parent_id, format, precision, backend, conversion,
           options, toolkit_versions, state, created_at, job_id, size_bytes, metadata, intermediate)
           VALUES (?,?,?,?,?,?,?,?,?,'available',?,?,?,?,?)""",
        [new.id, new.source_id, new.parent_id, new.format, new.precision, new.backend,
         new.conversion, json.dumps(new.options, sort_keys=True),
         json.dumps(new.toolkit_versions, sort_keys=True), datetime.now(UTC), new.job_id, size,
         json.dumps(new.metadata, default=str), new.intermediate],
    )
    conn.executemany(
        "INSERT INTO variant_files VALUES (?,?,?,?)", [(new.id, *f) for f in new.files]
    )


def find_variant(variant_id: str) -> Variant | None:
    with db.connect(write=False) as conn:
        row = conn.one("SELECT * FROM variants WHERE id = ?", [variant_id])
        if not row:
            return None
        variant = Variant.from_row(row)
        variant.files = _files(conn, variant_id)
    return variant


def variants_by_id(variant_ids: list[str]) -> dict[str, Variant]:
    """Many variants in one query (without their file lists), by id; unknown ids are left out."""
    if not variant_ids:
        return {}
    with db.connect(write=False) as conn:
        rows = conn.query("SELECT * FROM variants WHERE list_contains(?, id)", [list(dict.fromkeys(variant_ids))])
    return {r["id"]: Variant.from_row(r) for r in rows}


def _files(conn: db.Database, variant_id: str) -> list[VariantFile]:
    return [VariantFile(**f) for f in conn.query(
        "SELECT relpath, size_bytes, sha256 FROM variant_files WHERE variant_id = ? ORDER BY relpath",
        [variant_id])]


def stored_by_content(files: list[tuple[str, int, str]]) -> Variant | None:
    """find_by_content in a read-only connection of its own (outside any lock: ask again inside)."""
    with db.connect(write=False) as conn:
        return find_by_content(conn, files)


def find_by_content(conn: db.Database, files: list[tuple[str, int, str]]) -> Variant | None:
    """The stored variant holding exactly these files (relpath, size, sha256), counted as a
    source's content hash counts them (one file by its bytes alone, whatever its name): an
    available one first, then a source's own files, then the oldest. Deleted ones count too,
    so that importing their bytes again restores them."""
    if not files:
        return None
    wanted = content_hash([(rel, sha) for rel, _, sha in files])
    rows = conn.query(
        "SELECT * FROM variants WHERE id IN (SELECT variant_id FROM variant_files WHERE sha256 = ?) "
        "ORDER BY state = 'available' DESC, parent_id IS NULL DESC, created_at", [files[0][2]])
    for row in rows:
        stored = _files(conn, row["id"])
        if len(stored) == len(files) and content_hash([(f.relpath, f.sha256) for f in stored]) == wanted:
            variant = Variant.from_row(row)
            variant.files = stored
            return variant
    return None


def files_present(variant: Variant) -> bool:
    """Every recorded file is on disk with its recorded size (a cheap check: no hashing)."""
    folder = variant_path(variant)
    try:
        return all((folder / f.relpath).stat().st_size == f.size_bytes for f in variant.files)
    except OSError:
        return False


def mark_restored(conn: db.Database, variant_id: str) -> None:
    """Its files are back in place (the same bytes, imported again)."""
    conn.execute("UPDATE variants SET state = 'available', deleted_at = NULL WHERE id = ?", [variant_id])


def get_variant(variant_id: str) -> Variant:
    variant = find_variant(variant_id)
    if variant is None:
        raise NotFoundError(f"No variant has the id {variant_id!r}; it may never have been made.")
    return variant


def variant_path(variant: Variant) -> Path:
    return variant_dir(variant.source_id, variant.id)


def variants_of_source(source_id: str, include_deleted: bool = True) -> list[Variant]:
    with db.connect(write=False) as conn:
        rows = conn.query(
            "SELECT * FROM variants WHERE source_id = ? "
            + ("" if include_deleted else "AND state <> 'deleted' ")
            + "ORDER BY created_at",
            [source_id],
        )
    return [Variant.from_row(r) for r in rows]


def variant_counts(source_ids: list[str]) -> dict[str, int]:
    if not source_ids:
        return {}
    with db.connect(write=False) as conn:
        rows = conn.query(
            "SELECT source_id, count(*) n FROM variants WHERE state <> 'deleted' "
            "AND source_id IN (SELECT unnest(?)) GROUP BY source_id", [source_ids])
    return {r["source_id"]: int(r["n"]) for r in rows}


def ancestors(variant_id: str) -> list[Variant]:
    """Parent, grandparent, ... up to the source's own files (nearest first)."""
    with db.connect(write=False) as conn:
        rows = conn.query(
            # Lineage never leaves a source: recursing over its own variants keeps this fast.
            """WITH RECURSIVE fam AS (SELECT * FROM variants WHERE source_id =
                       (SELECT source_id FROM variants WHERE id = ?)),
               up(id, parent_id, depth) AS (
                   SELECT id, parent_id, 0 FROM fam WHERE id = ?
                   UNION ALL
                   SELECT f.id, f.parent_id, up.depth + 1 FROM fam f JOIN up ON f.id = up.parent_id
               ) SELECT f.* FROM up JOIN fam f USING (id) WHERE up.depth > 0 ORDER BY up.depth""",
            [variant_id, variant_id],
        )
    return [Variant.from_row(r) for r in rows]


def descendants(variant_id: str) -> list[Variant]:
    """Children, grandchildren, ... of a variant, at any depth (nearest first)."""
    with db.connect(write=False) as conn:
        rows = conn.query(
            """WITH RECURSIVE fam AS (SELECT * FROM variants WHERE source_id =
                       (SELECT source_id FROM variants WHERE id = ?)),
               down(id, depth) AS (
                   SELECT id, 0 FROM fam WHERE id = ?
                   UNION ALL
                   SELECT f.id, down.depth + 1 FROM fam f JOIN down ON f.parent_id = down.id
               ) SELECT f.* FROM down JOIN fam f USING (id) WHERE down.depth > 0
               ORDER BY down.depth, f.created_at""",
            [variant_id, variant_id],
        )
    return [Variant.from_row(r) for r in rows]


def jobs_using(conn: db.Database, variant_id: str) -> list[str]:
    """Active jobs that read or make this variant."""
    rows = conn.query(
        f"""SELECT id FROM jobs WHERE state IN {ACTIVE_JOB_STATES}
            AND (input_variant_id = ? OR target_variant_id = ?)""",
        [variant_id, variant_id],
    )
    return [r["id"] for r in rows]


def delete_variant(variant_id: str) -> Variant:
    """Remove a variant's files, keeping its row as a tombstone so lineage still renders."""
    with db.connect() as conn:
        variant = get_variant(variant_id)
        if variant.state == "deleted":
            return variant
        busy = jobs_using(conn, variant_id)
        if busy:
            raise ConflictError(
                f"Job {busy[0]} is using this variant; cancel it or wait for it to finish, then delete."
            )
        conn.execute(
            "UPDATE variants SET state = 'deleted', deleted_at = ? WHERE id = ?",
            [datetime.now(UTC), variant_id],
        )
        # Files go last: if the update failed the variant is still whole.
        remove_tree(variant_path(variant))
        remove_tree(config.smoke_cache_dir(variant_id))
    log.info("deleted variant %s", variant_id)
    return get_variant(variant_id)


def files_state(variant: Variant) -> str:
    """The state a variant's files on disk call for: a deleted one stays deleted; else available
    when every recorded file (variant.files, loaded) is there, files_missing when one is not.
    Reads the disk only."""
    if variant.state == "deleted":
        return variant.state
    folder = variant_path(variant)
    present = all((folder / f.relpath).is_file() for f in variant.files)
    return "available" if present else "files_missing"


def _record_states(changed: list[tuple[Variant, str]]) -> None:
    """Write states that changed; a row whose state moved meanwhile (another process deleted or
    restored it) keeps the newer one."""
    if not changed:
        return
    with db.connect() as conn:
        conn.executemany("UPDATE variants SET state = ? WHERE id = ? AND state = ?",
                         [(state, v.id, v.state) for v, state in changed])


def check_files(variant: Variant) -> str:
    """Mark a variant whose files vanished from disk as files_missing (and back)."""
    state = files_state(variant)
    if state != variant.state:
        _record_states([(variant, state)])
    return state


def checked_family(family: list[Variant]) -> list[Variant]:
    """The variants (as variants_of_source lists them) with their files loaded and each state
    checked against the disk. Only states that changed are written, in one transaction: a page
    that shows a family whose files are as recorded writes nothing, however often it reruns."""
    if not family:
        return family
    with db.connect(write=False) as conn:
        rows = conn.query("SELECT variant_id, relpath, size_bytes, sha256 FROM variant_files "
                          "WHERE variant_id IN (SELECT unnest(?)) ORDER BY relpath", [[v.id for v in family]])
    files: dict[str, list[VariantFile]] = {}
    for row in rows:
        files.setdefault(row.pop("variant_id"), []).append(VariantFile(**row))
    changed = []
    for variant in family:
        variant.files = files.get(variant.id, [])
        state = files_state(variant)
        if state != variant.state:
            changed.append((variant, state))
    _record_states(changed)
    for variant, state in changed:
        variant.state = state
    return family


def variants_with_file_named(name: str) -> list[Variant]:
    """The variants holding a file of this name (at any depth of their folder), with their files:
    what an imported benchmark report that names only the file it ran is matched against."""
    with db.connect(write=False) as conn:
        ids = [r["variant_id"] for r in conn.query(
            "SELECT DISTINCT variant_id FROM variant_files WHERE relpath = ? OR relpath LIKE ?", [name, f"%/{name}"])]
    return [get_variant(v) for v in ids]


def distinct_labels(found: dict[str, Variant]) -> dict[str, str]:
    """Each variant's short label (format and precision), told apart where two share one (two
    toolkits' INT4 of one format): by the toolkit and conversion that made them, then by id.
    Charts and tables key on these, so two variants never merge into one."""
    seen: dict[str, int] = {}
    for v in found.values():
        seen[v.label] = seen.get(v.label, 0) + 1
    out = {vid: v.label if seen[v.label] == 1 else f"{v.label} ({v.backend} {v.conversion})"
           for vid, v in found.items()}
    repeated = {label for label in out.values() if list(out.values()).count(label) > 1}
    return {vid: f"{label} · {vid}" if label in repeated else label for vid, label in out.items()}
