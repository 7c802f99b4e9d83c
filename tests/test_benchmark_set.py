"""The set a benchmark request measures: the Benchmarks page and `cli.py bench run` submit the
same one, the source's baseline first while it has no result on the profile."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import cli
from backends.importers import ImportRequest, import_now
from bench.jobs.common import BASELINE_ADDED, benchmark_set
from catalog import db, identity, jobs, variants
from catalog.records import Variant
from catalog.results import add_result
from catalog.variants import NewVariant
from tests.helpers.models import tiny_hf_folder

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def family(root: Path, tmp_path: Path) -> tuple[Variant, Variant]:
    """A tiny model's own safetensors form (the baseline) and a second form of the same weights,
    recorded as a conversion records what it made."""
    src = import_now(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "tiny"))))
    reference = variants.get_variant(src.root_variant_id)
    vid = identity.variant_id(reference.id, "test", "copy", {"precision": "F16"}, {"tool": "1.0"})
    shutil.copytree(variants.variant_path(reference), variants.variant_dir(src.id, vid))
    with db.connect() as conn:
        variants.insert_variant(conn, NewVariant(
            id=vid, source_id=src.id, parent_id=reference.id, format=reference.format, precision="F16",
            backend="test", conversion="copy", files=[(f.relpath, f.size_bytes, f.sha256) for f in reference.files]))
    return reference, variants.get_variant(vid)


def _record_result(variant: Variant, profile: str) -> None:
    with db.connect() as conn:
        add_result(conn, variant_id=variant.id, source_id=variant.source_id, job_id=None, protocol_id="p-test",
                   profile=profile, runtime="test", fingerprint_id="f-test", fingerprint={}, metrics={}, raw={},
                   toolkit_versions={}, flags=[])


def test_the_baseline_is_measured_first_until_it_has_a_result_on_the_profile(family) -> None:
    reference, copy = family
    assert benchmark_set([copy.id], "quick") == [reference.id, copy.id]
    assert benchmark_set([reference.id], "quick") == [reference.id]
    assert benchmark_set([copy.id, reference.id], "quick") == [copy.id, reference.id]  # asked for: as asked
    _record_result(reference, "quick")
    assert benchmark_set([copy.id], "quick") == [copy.id]
    assert benchmark_set([copy.id], "full") == [reference.id, copy.id]


def test_the_page_and_the_cli_submit_the_same_variants(family, capsys: pytest.CaptureFixture[str]) -> None:
    reference, copy = family
    at = AppTest.from_file(str(REPO / "pages" / "benchmarks.py"), default_timeout=60)
    at.query_params["source"] = copy.source_id
    at.session_state["bm_run_open"] = True  # the Run form is drawn only while its expander is open
    at.run()
    at.multiselect(key="bm_run_pick").select(copy.id).run()
    at.button(key="bm_run").click().run()
    assert not at.exception
    assert BASELINE_ADDED in [c.value for c in at.caption]
    page_jobs = [j for j in jobs.list_jobs() if j.kind == "benchmark"]
    assert sorted(j.input_variant_id for j in page_jobs) == sorted([reference.id, copy.id])

    assert cli.main(["bench", "run", copy.id, "--queue", "--json"]) == cli.EXIT_OK
    cli_jobs = [jobs.get_job(job_id) for job_id in json.loads(capsys.readouterr().out)]
    assert [j.input_variant_id for j in cli_jobs] == [reference.id, copy.id]
