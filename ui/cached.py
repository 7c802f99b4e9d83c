"""Catalog reads that many page loads repeat, cached in the app server until the catalog changes.

Each is keyed on catalog.db.version(), which moves whenever any process (the app, a job, the
CLI) commits a change: a cached answer is never older than the last write. Only reads whose
answer is the same for every user are cached here (the facets, the source lists, storage
figures); anything a role decides is read afresh.
"""

from __future__ import annotations

import streamlit as st

from catalog import audit, db, sources, storage, variants
from catalog.records import Source

ENTRIES = 64  # per function: a few filters and pages of the lists


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _facets(version: str) -> dict[str, list[str]]:
    return sources.facets()


def facets() -> dict[str, list[str]]:
    return _facets(db.version())


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _count_sources(version: str) -> int:
    return sources.count_sources()


def count_sources() -> int:
    return _count_sources(db.version())


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _list_sources(version: str, search: str, architecture: str | None, task: str | None, tag: str | None,
                  sort: str, limit: int, offset: int) -> tuple[list[Source], int]:
    return sources.list_sources(search=search, architecture=architecture, task=task, tag=tag, sort=sort,
                                limit=limit, offset=offset)


def list_sources(search: str = "", architecture: str | None = None, task: str | None = None, tag: str | None = None,
                 sort: str = "newest", limit: int = 200, offset: int = 0) -> tuple[list[Source], int]:
    return _list_sources(db.version(), search, architecture, task, tag, sort, limit, offset)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _variant_counts(version: str, source_ids: tuple[str, ...]) -> dict[str, int]:
    return variants.variant_counts(list(source_ids))


def variant_counts(source_ids: list[str]) -> dict[str, int]:
    return _variant_counts(db.version(), tuple(source_ids))


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _disk_use(version: str, top: int) -> storage.DiskUse:
    return storage.disk_use(top)


def disk_use(top: int) -> storage.DiskUse:
    return _disk_use(db.version(), top)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _intermediates(version: str, limit: int) -> tuple[list[dict], tuple[int, int]]:
    return storage.intermediates(limit), storage.intermediates_summary()


def intermediates(limit: int) -> tuple[list[dict], tuple[int, int]]:
    """The first `limit` intermediates, and (how many there are, their bytes)."""
    return _intermediates(db.version(), limit)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _audit_choices(version: str) -> tuple[list[str], list[str]]:
    return audit.actions_and_actors()


def audit_choices() -> tuple[list[str], list[str]]:
    return _audit_choices(db.version())
