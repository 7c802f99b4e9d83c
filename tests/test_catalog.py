"""The catalog itself: migrations, identity, lineage, delete with tombstones, names."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from catalog import config, db, identity, migrations, sources, variants
from catalog.errors import ConflictError, InvalidInputError
from catalog.sources import SourceMeta
from catalog.variants import NewVariant


def _add_chain(depth: int) -> list[str]:
    """A source with a chain of `depth` derived variants; returns the variant ids, root first."""
    ids = []
    with db.connect() as conn:
        sid = identity.source_id("c" * 64)
        parent = None
        for i in range(depth + 1):
            vid = identity.variant_id(parent, "test", f"step{i}", {"i": i}, {"tool": "1.0"})
            if parent is None:
                sources.insert_source(conn, sid, SourceMeta(name="chain", origin_kind="upload"), "c" * 64, vid)
            variants.insert_variant(conn, NewVariant(id=vid, source_id=sid, parent_id=parent, format="gguf",
                                                     precision=f"P{i}", backend="test", conversion=f"step{i}"))
            ids.append(vid)
            parent = vid
    return ids


def test_first_migration_only_catalog_is_upgraded_in_place(root: Path) -> None:
    con = duckdb.connect(str(config.db_path()))
    legacy = db.Database(con)
    assert migrations.migrate(legacy, upto="0001_initial") == ["0001_initial"]
    con.execute("INSERT INTO sources (id, name, origin_kind, added_at, content_hash) "
                "VALUES ('s-old', 'legacy model', 'upload', now(), 'abc')")
    con.execute("INSERT INTO variants (id, source_id, format, backend, conversion, state, created_at) "
                "VALUES ('v-old', 's-old', 'gguf', 'import', 'upload', 'available', now())")
    con.close()
    db.reset_migration_cache()

    assert sources.get_source("s-old").name == "legacy model"  # opening upgrades it
    with db.connect(write=False) as conn:
        names = [r["name"] for r in conn.query("SELECT name FROM schema_migrations ORDER BY name")]
        assert names == [name for name, _ in migrations.MIGRATIONS]
        assert conn.scalar("SELECT intermediate FROM variants WHERE id = 'v-old'") is False
        assert conn.scalar("SELECT count(*) FROM benchmark_results") == 0
        assert migrations.migrate(conn) == []  # applying twice is a no-op


def test_variant_identity_depends_on_parent_recipe_and_versions() -> None:
    base = identity.variant_id("v-1", "llamacpp", "quantize", {"type": "Q4_K_M"}, {"llama.cpp": "0.3.36"})
    assert base == identity.variant_id("v-1", "llamacpp", "quantize", {"type": "Q4_K_M"}, {"llama.cpp": "0.3.36"})
    assert base != identity.variant_id("v-2", "llamacpp", "quantize", {"type": "Q4_K_M"}, {"llama.cpp": "0.3.36"})
    assert base != identity.variant_id("v-1", "llamacpp", "quantize", {"type": "Q8_0"}, {"llama.cpp": "0.3.36"})
    assert base != identity.variant_id("v-1", "llamacpp", "quantize", {"type": "Q4_K_M"}, {"llama.cpp": "0.3.37"})


def test_lineage_of_any_depth_both_ways(root: Path) -> None:
    ids = _add_chain(5)
    assert [v.id for v in variants.ancestors(ids[-1])] == list(reversed(ids[:-1]))
    assert [v.id for v in variants.descendants(ids[0])] == ids[1:]
    assert variants.descendants(ids[-1]) == []


def test_delete_keeps_a_tombstone_and_lineage(root: Path) -> None:
    ids = _add_chain(2)
    folder = variants.variant_dir(identity.source_id("c" * 64), ids[1])
    folder.mkdir(parents=True)
    (folder / "model.gguf").write_bytes(b"GGUF")
    deleted = variants.delete_variant(ids[1])
    assert deleted.state == "deleted" and deleted.deleted_at is not None
    assert not folder.exists()
    assert [v.id for v in variants.ancestors(ids[2])] == [ids[1], ids[0]]  # still renders
    assert variants.get_variant(ids[1]).state == "deleted"


def test_a_deleted_variant_made_again_takes_its_tombstones_place(root: Path) -> None:
    ids = _add_chain(2)
    variants.delete_variant(ids[1])
    with db.connect() as conn:  # what a conversion job's publish records for the same recipe
        variants.insert_variant(conn, NewVariant(id=ids[1], source_id=identity.source_id("c" * 64),
                                                 parent_id=ids[0], format="gguf", precision="P1", backend="test",
                                                 conversion="step1", files=[("model.gguf", 4, "ab" * 32)]))
    again = variants.get_variant(ids[1])
    assert again.state == "available" and again.deleted_at is None
    assert [f.relpath for f in again.files] == ["model.gguf"]
    assert [v.id for v in variants.ancestors(ids[2])] == [ids[1], ids[0]]


def test_delete_is_refused_while_a_job_uses_the_variant(root: Path) -> None:
    from catalog import jobs

    ids = _add_chain(1)
    jobs.submit("convert", {"x": 1}, title="uses it", input_variant_id=ids[1])
    with pytest.raises(ConflictError, match="using this variant"):
        variants.delete_variant(ids[1])
    assert variants.get_variant(ids[1]).state == "available"


def test_missing_files_are_flagged(root: Path) -> None:
    ids = _add_chain(0)
    with db.connect() as conn:
        conn.execute("INSERT INTO variant_files VALUES (?, 'model.gguf', 4, 'x')", [ids[0]])
    assert variants.check_files(variants.get_variant(ids[0])) == "files_missing"


@pytest.mark.parametrize("name", ["../etc", "a/b", "<script>alert(1)</script>", "x'; DROP TABLE sources; --", ""])
def test_bad_names_are_refused_with_a_sentence(root: Path, name: str) -> None:
    with pytest.raises(InvalidInputError, match="not allowed"):
        sources.update_source("s-any", name=name)


def test_search_treats_sql_as_text(root: Path) -> None:
    _add_chain(0)
    rows, total = sources.list_sources(search="'; DROP TABLE sources; --")
    assert rows == [] and total == 0
    assert sources.count_sources() == 1


def test_data_root_moves_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.ROOT_ENV, str(tmp_path / "elsewhere"))
    db.reset_migration_cache()
    assert sources.count_sources() == 0
    assert config.db_path() == tmp_path / "elsewhere" / "catalog.duckdb"
    assert config.artifacts_dir().parent == tmp_path / "elsewhere"
    assert config.jobs_dir().parent == tmp_path / "elsewhere"
