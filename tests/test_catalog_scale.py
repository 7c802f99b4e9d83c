"""Reads that pages repeat at scale: the catalog's version key (what ui.cached keys on), the
Storage page's figures summed in SQL, and the Jobs list's dependencies read for its rows only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from catalog import config, db, identity, jobs, sources, storage, variants
from catalog.sources import SourceMeta
from catalog.variants import NewVariant


def _add_source(n: int, sizes: list[int], intermediate: int | None = None) -> str:
    """A source whose variants hold files of these sizes (the one at `intermediate` an intermediate)."""
    content = str(n) * 64
    sid = identity.source_id(content)
    with db.connect() as conn:
        parent = None
        for i, size in enumerate(sizes):
            vid = identity.variant_id(parent, "test", f"step{i}", {"n": n, "i": i}, {})
            if parent is None:
                sources.insert_source(conn, sid, SourceMeta(name=f"model {n}", origin_kind="upload"), content,
                                      vid)
            variants.insert_variant(conn, NewVariant(
                id=vid, source_id=sid, parent_id=parent, format="gguf", precision=f"P{i}", backend="test",
                conversion=f"step{i}", intermediate=i == intermediate, files=[(f"m{i}.gguf", size, "0" * 64)]))
            parent = vid
    return sid


def test_version_moves_on_every_committed_write_only(root: Path) -> None:
    sid = _add_source(1, [10])
    before = db.version()
    sources.get_source(sid)
    sources.list_sources()
    with db.connect():  # a write transaction that changes nothing
        pass
    assert db.version() == before
    sources.update_source(sid, notes="changed")
    changed = db.version()
    assert changed != before
    # Another process's write (a job, the CLI) moves it too.
    code = ("import sys; from catalog import config, sources; config.set_data_root(sys.argv[1]); "
            f"sources.update_source({sid!r}, notes='again')")
    subprocess.run([sys.executable, "-c", code, str(config.data_root())], check=True,
                   cwd=Path(__file__).resolve().parents[1])
    assert db.version() not in (before, changed)


def test_disk_use_sums_the_rest_in_sql_as_the_page_did(root: Path) -> None:
    for n in range(5):
        _add_source(n, [100 * (n + 1), 10 * (n + 1)], intermediate=1)
    per_source = storage.disk_by_source()
    use = storage.disk_use(top=3)
    assert [r["id"] for r in use.rows[:3]] == [r["id"] for r in per_source[:3]]
    assert use.others == 2
    assert use.rows[3]["name"] == "2 others"
    assert use.rows[3]["bytes"] == sum(r["bytes"] for r in per_source[3:])
    assert use.rows[3]["intermediate_bytes"] == sum(r["intermediate_bytes"] for r in per_source[3:])
    assert use.total_bytes == sum(r["bytes"] for r in per_source)
    assert storage.disk_use(top=10).others == 0 and len(storage.disk_use(top=10).rows) == 5
    assert storage.intermediates_summary() == (5, sum(10 * (n + 1) for n in range(5)))
    assert [r["size_bytes"] for r in storage.intermediates(limit=2)] == [50, 40]


def test_job_list_reads_the_dependencies_of_its_rows(root: Path) -> None:
    first = jobs.submit("convert", {"x": 1}, title="first").job
    second = jobs.submit("convert", {"x": 2}, title="second", depends_on=[first.id]).job
    listed = {j.id: j for j in jobs.list_jobs()}
    assert listed[second.id].depends_on == [first.id]
    assert listed[first.id].depends_on == []
    assert [j.id for j in jobs.list_jobs(limit=1)] == [second.id]
