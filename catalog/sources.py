"""Source models: the checkpoints a team starts from, with their origin and metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from catalog import db
from catalog.errors import NotFoundError
from catalog.files import validate_name
from catalog.records import Source

SORTS = {
    "newest": "added_at DESC",
    "oldest": "added_at ASC",
    "name": "lower(name) ASC",
    "parameters": "param_count DESC NULLS LAST",
}


@dataclass
class SourceMeta:
    """What an importer learnt about a model; stored on its source row."""

    name: str
    origin_kind: str
    origin_ref: str | None = None
    origin_revision: str | None = None
    architecture: str | None = None
    task: str | None = None
    param_count: int | None = None
    context_length: int | None = None
    license: str | None = None
    tags: tuple[str, ...] = ()
    notes: str = ""
    added_by: str | None = None


def insert_source(conn: db.Database, source_id: str, meta: SourceMeta, content_hash: str,
                  root_variant_id: str) -> None:
    conn.execute(
        """INSERT INTO sources (id, name, origin_kind, origin_ref, origin_revision, architecture,
           task, param_count, context_length, license, tags, notes, added_by, added_at,
           content_hash, root_variant_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
        [source_id, validate_name(meta.name), meta.origin_kind, meta.origin_ref,
         meta.origin_revision, meta.architecture, meta.task, meta.param_count,
         meta.context_length, meta.license, json.dumps(sorted(set(meta.tags))), meta.notes,
         meta.added_by, datetime.now(UTC), content_hash, root_variant_id],
    )


def merge_into_source(conn: db.Database, source_id: str, tags: list[str] | tuple[str, ...],
                      notes: str) -> list[str]:
    """Add a later import's tags and notes to the source its bytes turned out to be (rather than
    dropping them); returns what was added, as sentences for the job's log."""
    row = conn.one("SELECT tags, notes FROM sources WHERE id = ?", [source_id])
    if row is None:
        raise NotFoundError(f"No source model has the id {source_id!r}; it may have been removed.")
    had = json.loads(row["tags"] or "[]")
    added = sorted({validate_name(t) for t in tags} - set(had))
    old_notes = row["notes"] or ""
    new_notes = notes.strip() if notes.strip() and notes.strip() not in old_notes else ""
    if added or new_notes:
        merged_notes = f"{old_notes.rstrip()}\n\n{new_notes}".strip() if new_notes else old_notes
        conn.execute("UPDATE sources SET tags = ?, notes = ? WHERE id = ?",
                     [json.dumps(sorted(set(had) | set(added))), merged_notes, source_id])
    return ([f"added the tags {', '.join(added)} to {source_id}"] if added else []) + (
        [f"added the notes to {source_id}"] if new_notes else [])


def get_source(source_id: str) -> Source:
    with db.connect(write=False) as conn:
        row = conn.one("SELECT * FROM sources WHERE id = ?", [source_id])
    if not row:
        raise NotFoundError(f"No source model has the id {source_id!r}; it may have been removed.")
    return Source.from_row(row)


def list_sources(
    search: str = "",
    architecture: str | None = None,
    task: str | None = None,
    tag: str | None = None,
    sort: str = "newest",
    limit: int = 200,
    offset: int = 0,
) -> tuple[list[Source], int]:
    """A page of sources matching the filters, and how many match in all."""
    where, params = ["TRUE"], []
    if search:
        where.append("(name ILIKE ? OR origin_ref ILIKE ? OR notes ILIKE ?)")
        params += [f"%{search}%"] * 3
    if architecture:
        where.append("architecture = ?")
        params.append(architecture)
    if task:
        where.append("task = ?")
        params.append(task)
    if tag:
        where.append("list_contains(CAST(json_extract_string(tags, '$[*]') AS VARCHAR[]), ?)")
        params.append(tag)
    clause = " AND ".join(where)
    order = SORTS.get(sort, SORTS["newest"])
    with db.connect(write=False) as conn:
        total = conn.scalar(f"SELECT count(*) FROM sources WHERE {clause}", params)
        rows = conn.query(
            f"SELECT * FROM sources WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
            params + [limit, offset],
        )
    return [Source.from_row(r) for r in rows], int(total or 0)


def facets() -> dict[str, list[str]]:
    """Distinct architectures, tasks and tags, for the Catalog page's filters."""
    with db.connect(write=False) as conn:
        archs = [r["a"] for r in conn.query(
            "SELECT DISTINCT architecture a FROM sources WHERE architecture IS NOT NULL ORDER BY 1")]
        tasks = [r["t"] for r in conn.query(
            "SELECT DISTINCT task t FROM sources WHERE task IS NOT NULL ORDER BY 1")]
        tags = [r["t"] for r in conn.query(
            "SELECT DISTINCT unnest(CAST(json_extract_string(tags, '$[*]') AS VARCHAR[])) t "
            "FROM sources ORDER BY 1")]
    return {"architecture": archs, "task": tasks, "tag": tags}


def update_source(source_id: str, *, notes: str | None = None, tags: list[str] | None = None,
                  name: str | None = None) -> Source:
    sets: list[str] = []
    params: list[Any] = []
    if notes is not None:
        sets.append("notes = ?")
        params.append(notes)
    if tags is not None:
        clean = sorted({validate_name(t) for t in tags if t.strip()})
        sets.append("tags = ?")
        params.append(json.dumps(clean))
    if name is not None:
        sets.append("name = ?")
        params.append(validate_name(name))
    if sets:
        with db.connect() as conn:
            get_source(source_id)
            conn.execute(f"UPDATE sources SET {', '.join(sets)} WHERE id = ?", params + [source_id])
    return get_source(source_id)


def merge_tags(current: list[str], shown: list[str], wanted: list[str]) -> list[str]:
    """A form's tag edit applied to tags others may have changed since the form was drawn: what
    the user removed goes, what they added comes, everything else stays as it is now."""
    removed, added = set(shown) - set(wanted), set(wanted) - set(shown)
    return sorted((set(current) - removed) | added)


def edit_source(source_id: str, *, shown_notes: str, notes: str, shown_tags: list[str],
                tags: list[str]) -> Source:
    """Save a Notes & tags form drawn with (shown_notes, shown_tags) without losing what another
    user or an import saved meanwhile: only the user's own changes are applied, in one locked
    transaction. Notes are written only if the user edited them."""
    def clean(values: list[str]) -> list[str]:
        return sorted({validate_name(t.strip()) for t in values if t.strip()})

    with db.connect():  # nested calls below reuse this connection: read and write under one lock
        current = get_source(source_id)
        return update_source(source_id, notes=notes if notes != shown_notes else None,
                             tags=merge_tags(current.tags, clean(shown_tags), clean(tags)))


def count_sources() -> int:
    with db.connect(write=False) as conn:
        return int(conn.scalar("SELECT count(*) FROM sources") or 0)
