"""The audit log: one row per change (who, when, what, which object), written by the service
layer inside the same transaction as the change, so neither exists without the other."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from catalog import db


@dataclass
class AuditEntry:
    happened_at: datetime
    actor: str
    action: str
    object_id: str | None
    detail: dict[str, Any]


def record(conn: db.Database, actor: str, action: str, object_id: str | None,
           detail: dict[str, Any] | None = None) -> None:
    conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?)",
                 [datetime.now(UTC), actor, action, object_id, json.dumps(detail or {}, default=str, sort_keys=True)])


def entries(actor: str = "", action: str = "", search: str = "", limit: int = 1000) -> list[AuditEntry]:
    """Newest first, filtered by actor, action and a text found in the object id or detail."""
    with db.connect(write=False) as conn:
        rows = conn.query(
            """SELECT * FROM audit_log WHERE (? = '' OR actor = ?) AND (? = '' OR action = ?)
               AND (? = '' OR object_id ILIKE ? OR detail ILIKE ?) ORDER BY happened_at DESC LIMIT ?""",
            [actor, actor, action, action, search, f"%{search}%", f"%{search}%", limit])
    return [AuditEntry(**{**r, "detail": json.loads(r["detail"] or "{}")}) for r in rows]


def actions_and_actors() -> tuple[list[str], list[str]]:
    with db.connect(write=False) as conn:
        actions = [r["action"] for r in conn.query("SELECT DISTINCT action FROM audit_log ORDER BY 1")]
        actors = [r["actor"] for r in conn.query("SELECT DISTINCT actor FROM audit_log ORDER BY 1")]
    return actions, actors


def as_csv(found: list[AuditEntry]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["happened_at", "actor", "action", "object_id", "detail"])
    for e in found:
        writer.writerow([e.happened_at.isoformat(), e.actor, e.action, e.object_id or "",
                         json.dumps(e.detail, sort_keys=True)])
    return buf.getvalue()
