"""Saved comparisons: a name, who saved it, and what it showed (result ids, baseline, gates,
weights, chart choices), so its link opens the same charts for anyone, whatever ran since."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from catalog import db
from catalog.errors import ConflictError, InvalidInputError, NotFoundError
from catalog.identity import digest

NAME_MAX = 120


@dataclass
class Comparison:
    id: str
    name: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    spec: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Comparison:
        return cls(**{**row, "spec": json.loads(row["spec"])})

    @property
    def result_ids(self) -> list[str]:
        """The results compared against the baseline (the baseline is not among them)."""
        return list(self.spec.get("result_ids", []))

    @property
    def shown_ids(self) -> list[str]:
        """Every result its page shows, the baseline first: the rows of its headline table."""
        baseline = self.spec.get("baseline_result_id")
        return list(dict.fromkeys([*([baseline] if baseline else []), *self.result_ids]))


def comparison_link(comparison_id: str) -> str:
    """The app's path that opens a saved comparison (the page, its exports and the CLI name it)."""
    return f"/compare?c={comparison_id}"


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise InvalidInputError("Give the comparison a name, so the team can find it in the list.")
    if len(name) > NAME_MAX:
        raise InvalidInputError(f"That name is {len(name)} characters; keep it to {NAME_MAX}.")
    return name


def _check_results(conn: db.Database, result_ids: list[str], baseline: str | None = None) -> None:
    """Refuse result ids (and a baseline) the catalog does not hold: a comparison saved with them
    would open as an empty or broken page for everyone."""
    if not isinstance(result_ids, list) or not all(isinstance(r, str) for r in result_ids):
        raise InvalidInputError("A comparison's results are a list of result ids (r-...); pick them on the Compare "
                                "page.")
    wanted = list(dict.fromkeys([*result_ids, *([baseline] if baseline else [])]))
    held = {r["id"] for r in conn.query("SELECT id FROM benchmark_results WHERE list_contains(?, id)", [wanted])}
    missing = [r for r in wanted if r not in held]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InvalidInputError(f"There is no benchmark result {missing[0]}{more} in the catalog, so the comparison "
                                "was not saved; pick the results again on the Compare page.")


class SameNameError(ConflictError):
    """A comparison of that name exists: the Compare page asks before saving another (an Enter
    in the Name field and then a click on Save made two, with two links)."""

    def __init__(self, existing: Comparison) -> None:
        super().__init__(f"There is already a comparison named “{existing.name}”, saved by {existing.created_by}; "
                         "give this one another name, or confirm to keep both.")
        self.existing = existing


def _same_name(conn: db.Database, name: str) -> Comparison | None:
    row = conn.one("SELECT * FROM comparisons WHERE lower(name) = lower(?) ORDER BY updated_at DESC LIMIT 1",
                   [name])
    return Comparison.from_row(row) if row else None


def save_comparison(name: str, spec: dict[str, Any], created_by: str, same_name_ok: bool = False) -> Comparison:
    """Store a new comparison; spec must name the result ids it shows, and the catalog hold them.
    A name already used (case aside) is refused with SameNameError unless same_name_ok."""
    name = _clean_name(name)
    if not spec.get("result_ids"):
        raise InvalidInputError("There is nothing to save: pick at least one result to compare.")
    now = datetime.now(UTC)
    cid = "c-" + digest(name, created_by, now.isoformat(), length=12)
    with db.connect() as conn:
        if not same_name_ok and (existing := _same_name(conn, name)) is not None:
            raise SameNameError(existing)
        _check_results(conn, spec["result_ids"], spec.get("baseline_result_id") or None)
        conn.execute("INSERT INTO comparisons VALUES (?,?,?,?,?,?)",
                     [cid, name, created_by, now, now, json.dumps(spec, sort_keys=True)])
    return get_comparison(cid)


def get_comparison(comparison_id: str) -> Comparison:
    with db.connect(write=False) as conn:
        row = conn.one("SELECT * FROM comparisons WHERE id = ?", [comparison_id])
    if row is None:
        raise NotFoundError(f"No saved comparison {comparison_id}: it was deleted, or the link is incomplete.")
    return Comparison.from_row(row)


def list_comparisons(search: str = "", limit: int = 200) -> list[Comparison]:
    """Newest first; search matches the name or who saved it, case-insensitively."""
    with db.connect(write=False) as conn:
        rows = conn.query("""SELECT * FROM comparisons WHERE ? = '' OR name ILIKE ? OR created_by ILIKE ?
                             ORDER BY updated_at DESC LIMIT ?""",
                          [search, f"%{search}%", f"%{search}%", limit])
    return [Comparison.from_row(r) for r in rows]


def _owned(conn: db.Database, comparison_id: str, actor: str, action: str) -> None:
    row = conn.one("SELECT created_by FROM comparisons WHERE id = ?", [comparison_id])
    if row is None:
        raise NotFoundError(f"No saved comparison {comparison_id}: it was deleted, or the link is incomplete.")
    if row["created_by"] != actor:
        raise ConflictError(f"Only {row['created_by']}, who saved this comparison, can {action} it; "
                            "save your own copy instead.")


def update_results(comparison_id: str, result_ids: list[str], actor: str) -> Comparison:
    """Point a saved comparison at newer results (its author only)."""
    with db.connect() as conn:
        _owned(conn, comparison_id, actor, "update")
        if not result_ids:
            raise InvalidInputError("A comparison needs at least one result; delete it instead.")
        _check_results(conn, result_ids)
        spec = json.loads(conn.scalar("SELECT spec FROM comparisons WHERE id = ?", [comparison_id]))
        spec["result_ids"] = result_ids
        conn.execute("UPDATE comparisons SET spec = ?, updated_at = ? WHERE id = ?",
                     [json.dumps(spec, sort_keys=True), datetime.now(UTC), comparison_id])
    return get_comparison(comparison_id)


def delete_comparison(comparison_id: str, actor: str) -> None:
    with db.connect() as conn:
        _owned(conn, comparison_id, actor, "delete")
        conn.execute("DELETE FROM comparisons WHERE id = ?", [comparison_id])
