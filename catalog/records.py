"""Typed records the catalog API returns. Pages and the CLI see these, never rows or SQL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

VARIANT_STATES = ("available", "files_missing", "deleted")
JOB_STATES = ("queued", "waiting", "running", "succeeded", "failed", "crashed", "cancelled", "interrupted")
ACTIVE_JOB_STATES = ("queued", "waiting", "running")
# failed: the job reported an error; crashed: its process or a tool it ran died from a signal;
# cancelled: a user stopped it; interrupted: its process vanished with the app or the machine.
ENDED_BADLY_STATES = ("failed", "crashed", "cancelled", "interrupted")
JOB_STATE_LABELS = {
    "queued": "queued",
    "waiting": "waiting on parent job",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "crashed": "crashed",
    "cancelled": "cancelled",
    "interrupted": "interrupted",
}


def _json(value: str | None, default: Any) -> Any:
    return json.loads(value) if value else default


@dataclass
class Source:
    id: str
    name: str
    origin_kind: str
    origin_ref: str | None
    origin_revision: str | None
    architecture: str | None
    task: str | None
    param_count: int | None
    context_length: int | None
    license: str | None
    tags: list[str]
    notes: str
    added_by: str | None
    added_at: datetime
    content_hash: str
    root_variant_id: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Source:
        data = dict(row)
        data["tags"] = _json(row.get("tags"), [])
        data["notes"] = row.get("notes") or ""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass
class VariantFile:
    relpath: str
    size_bytes: int
    sha256: str


@dataclass
class Variant:
    id: str
    source_id: str
    parent_id: str | None
    format: str
    precision: str | None
    backend: str
    conversion: str
    options: dict[str, Any]
    toolkit_versions: dict[str, str]
    state: str
    created_at: datetime
    job_id: str | None
    size_bytes: int
    metadata: dict[str, Any]
    deleted_at: datetime | None
    intermediate: bool = False
    files: list[VariantFile] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Variant:
        data = dict(row)
        for key in ("options", "toolkit_versions", "metadata"):
            data[key] = _json(row.get(key), {})
        data["intermediate"] = bool(row.get("intermediate"))
        data["size_bytes"] = row.get("size_bytes") or 0
        names = [k for k in cls.__dataclass_fields__ if k != "files"]
        return cls(**{k: data.get(k) for k in names})

    @property
    def label(self) -> str:
        """A short human name: format and precision, e.g. 'gguf Q4_K_M'."""
        return f"{self.format} {self.precision or ''}".strip()


@dataclass
class Job:
    id: str
    kind: str
    state: str
    recipe: dict[str, Any]
    title: str | None
    source_id: str | None
    input_variant_id: str | None
    target_variant_id: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    pid: int | None
    pid_started: float | None
    runner: str | None
    error: str | None
    result: dict[str, Any]
    submitted_by: str | None
    attempt: int
    depends_on: list[str] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        data = dict(row)
        data["recipe"] = _json(row.get("recipe"), {})
        data["result"] = _json(row.get("result"), {})
        names = [k for k in cls.__dataclass_fields__ if k != "depends_on"]
        return cls(**{k: data.get(k) for k in names})

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES

    @property
    def state_label(self) -> str:
        return JOB_STATE_LABELS.get(self.state, self.state)

    @property
    def crash(self) -> dict[str, Any] | None:
        """What the parent saw when the job's process or tool died from a signal (state crashed)."""
        return self.result.get("crash") if self.state == "crashed" else None
