"""Sharing a comparison (issue 25): what its list, saves, deletes and exports say. Cheap: pure
functions and a tiny imported model's hand-made results, never a conversion or a benchmark."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from catalog.access import Actor
from catalog.comparisons import Comparison
from catalog.errors import PermissionDeniedError
from catalog.results import BUSY_FLAG, UNSTEADY_FLAG
from service import actions


def test_the_saved_list_counts_the_baseline_among_the_results() -> None:
    now = datetime.now(UTC)
    saved = Comparison("c-1", "demo", "ed", now, now,
                       {"baseline_result_id": "r-base", "result_ids": [f"r-{i}" for i in range(7)]})
    assert len(saved.result_ids) == 7
    assert saved.shown_ids[0] == "r-base" and len(saved.shown_ids) == 8  # the page's 8 rows, not "7 results"


# --------------------------------------------------------------------------- a tiny model's hand-made results

PAGE = Path(__file__).resolve().parent.parent / "pages" / "compare.py"
ANA, BEN, ADA = Actor("ana", "editor"), Actor("ben", "editor"), Actor("ada", "admin")


def _result(conn, variant, tps: float, ppl: float, flags: list[str] | None = None, cv: float = 0.01) -> str:
    from bench.fingerprint import fingerprint, fingerprint_id
    from catalog import results

    fp = fingerprint(2, "transformers CPU")
    return results.add_result(
        conn, variant_id=variant.id, source_id=variant.source_id, job_id=None, protocol_id="p-handmade",
        profile="handmade", runtime="hand-made", fingerprint_id=fingerprint_id(fp), fingerprint=fp,
        metrics={"decode_tps_p50": tps, "size_mb": 10.0, "memory_rise_mb": 20.0, "perplexity": ppl,
                 "decode_tps_cv": cv, "repetitions_kept": 3}, raw={}, toolkit_versions={"test": "1"},
        flags=flags or [])


@pytest.fixture
def tiny_results(root: Path, tmp_path: Path) -> dict[str, str]:
    """A tiny imported model and three hand-made results of its one variant: a baseline, a
    candidate, and a candidate measured on a busy machine."""
    from backends.importers import ImportRequest, submit_import
    from catalog import db, sources, variants
    from tests.helpers.models import tiny_hf_folder
    from worker.runner import run_to_completion

    job = submit_import(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "tiny")))).job
    assert job is not None and run_to_completion(job.id).state == "succeeded"
    [source], _ = sources.list_sources()
    variant = variants.get_variant(source.root_variant_id)
    with db.connect() as conn:
        return {"base": _result(conn, variant, 10.0, 20.0), "fast": _result(conn, variant, 25.0, 20.2),
                "busy": _result(conn, variant, 30.0, 20.1, flags=[BUSY_FLAG, UNSTEADY_FLAG], cv=1.04)}


def _spec(made: dict[str, str]) -> dict:
    return {"result_ids": [made["fast"], made["busy"]], "baseline_result_id": made["base"]}


def test_a_same_name_save_asks_and_only_the_author_or_an_admin_deletes(tiny_results, root: Path) -> None:
    from catalog import audit, comparisons
    from catalog.comparisons import SameNameError

    first = actions.save_comparison(ANA, "Team pick", _spec(tiny_results))
    with pytest.raises(SameNameError, match="already a comparison named “Team pick”, saved by ana"):
        actions.save_comparison(BEN, " team  PICK ", _spec(tiny_results))
    second = actions.save_comparison(BEN, "Team pick", _spec(tiny_results), same_name_ok=True)
    assert {c.id for c in comparisons.list_comparisons()} == {first.id, second.id}
    with pytest.raises(PermissionDeniedError, match="Only ana, who saved “Team pick”, or an admin can delete it"):
        actions.delete_comparison(BEN, first.id)
    refusal = audit.entries()[0]
    assert (refusal.actor, refusal.action, refusal.object_id) == ("ben", "refused", first.id)
    actions.delete_comparison(ADA, first.id)  # an admin may delete anyone's
    actions.delete_comparison(BEN, second.id)  # and an author their own
    assert comparisons.list_comparisons() == []


def test_the_gates_stay_as_chosen_while_their_expander_is_closed(tiny_results, root: Path) -> None:
    """The gates' expander is drawn only while open, and its inputs forget their values while not
    drawn: the choice must still decide the view, and be there when it opens again."""
    opened = actions.save_comparison(ANA, "Opened", _spec(tiny_results))
    key = f"cmp_{opened.id}"
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.query_params["c"] = opened.id
    at.run()
    assert not at.exception and not [n for n in at.number_input if n.key == f"{key}_gq"]  # closed: not drawn

    def gates_shown() -> str:
        return next(c.value for c in at.caption if "Gates:" in c.value)

    assert "Quality retention ≥ 95%" in gates_shown()
    at.session_state[f"{key}_tune_open"] = True  # as a click on its header sets it
    at.run()
    at.number_input(key=f"{key}_gq").set_value(50.0).run()
    assert "Quality retention ≥ 50%" in gates_shown()
    at.session_state[f"{key}_tune_open"] = False
    at.run()
    assert not at.exception and not [n for n in at.number_input if n.key == f"{key}_gq"]
    assert "Quality retention ≥ 50%" in gates_shown()
    at.session_state[f"{key}_tune_open"] = True
    at.run()
    assert at.number_input(key=f"{key}_gq").value == 50.0


def test_enter_then_click_saves_once_and_delete_asks_first(tiny_results, root: Path) -> None:
    """Issue 25: Enter in the Name field saved, and the button then saved a second copy with the
    same name and another link; the list's Delete removed a shared comparison at once."""
    from catalog import comparisons

    opened = actions.save_comparison(ANA, "Opened", _spec(tiny_results))
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.query_params["c"] = opened.id
    at.run()
    assert not at.exception
    at.text_input(key="cmp_name").input("Team pick")
    save = next(b for b in at.button if b.label == "Save comparison")
    save.click().run()  # the Enter
    assert [c.name for c in comparisons.list_comparisons()] == ["Team pick", "Opened"]
    made = comparisons.list_comparisons()[0]
    assert at.query_params["c"] == made.id and any(made.id in s.value for s in at.success)
    next(b for b in at.button if b.label == "Save comparison").click().run()  # then the click
    assert len(comparisons.list_comparisons()) == 2  # not saved again: asked
    assert any("already a comparison named “Team pick”" in w.value for w in at.warning)
    at.button(key="cmp_save_same").click().run()  # the user confirms keeping both
    assert [c.name for c in comparisons.list_comparisons()] == ["Team pick", "Team pick", "Opened"]
    assert not [b for b in at.button if b.key == f"cmp_del_{opened.id}"]  # the list is drawn only when open
    at.session_state["cmp_saved_open"] = True  # as a click on "Saved comparisons" sets it
    at.run()
    at.button(key=f"cmp_del_{opened.id}").click().run()
    assert opened.id in {c.id for c in comparisons.list_comparisons()}  # asked, not deleted
    assert any("Its link stops working" in w.value for w in at.warning)
    at.button(key=f"cmp_del_yes_{opened.id}").click().run()
    assert opened.id not in {c.id for c in comparisons.list_comparisons()}


def test_the_cli_lists_shows_and_exports_a_comparison_as_the_page_does(tiny_results, root: Path,
                                                                        tmp_path: Path) -> None:
    import csv
    import io
    import json
    import subprocess
    import sys

    from bench.compare_export import file_stem, to_csv
    from bench.compare_view import CompareSpec, build_view
    from catalog import config

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "cli.py", "--data-root", str(root), "comparisons", *args],
                              cwd=config.PROJECT_DIR, capture_output=True, text=True, timeout=120, check=False)

    saved = actions.save_comparison(ANA, "Team pick: Q4 / Q8?", _spec(tiny_results))
    listed = cli("list")
    assert listed.returncode == 0 and saved.id in listed.stdout and "Team pick: Q4 / Q8?" in listed.stdout
    assert "3 results" in listed.stdout
    shown = cli("show", saved.id)
    assert shown.returncode == 0, shown.stderr
    assert f"link: /compare?c={saved.id}" in shown.stdout and "Gates: Quality retention ≥ 95%" in shown.stdout
    assert "(baseline)" in shown.stdout
    out = tmp_path / "out"
    exported = cli("export", saved.id, str(out), "--format", "csv", "json", "html")
    assert exported.returncode == 0, exported.stderr
    stem = file_stem(saved.name)
    assert stem == "Team_pick_Q4_Q8" and sorted(p.name for p in out.iterdir()) == [
        f"{stem}.csv", f"{stem}.html", f"{stem}.json"]
    page_csv = to_csv(build_view(CompareSpec.from_dict(saved.spec)))  # what the page's button downloads
    assert list(csv.DictReader(io.StringIO((out / f"{stem}.csv").read_text()))) == \
        list(csv.DictReader(io.StringIO(page_csv)))
    assert json.loads((out / f"{stem}.json").read_text())["name"] == saved.name
    assert cli("show", "c-nope").returncode == 3


# --------------------------------------------------------------------------- the baseline in words, speed caveats

def test_a_speed_caveat_says_why_and_over_how_many_runs() -> None:
    from catalog.speed_caveats import caveat_of, caveats_sentence, verdict_caveat

    def result(flags: list[str], **metrics: float) -> SimpleNamespace:
        return SimpleNamespace(flags=flags, metrics=metrics)

    both = caveat_of(result([BUSY_FLAG, UNSTEADY_FLAG], decode_tps_cv=1.04, repetitions_kept=3))
    assert both.words() == "busy machine; varied 104% between 3 repetitions"
    assert caveat_of(result([BUSY_FLAG], repetitions_kept=5)).words() == "busy machine; 5 repetitions"
    clean = caveat_of(result([], decode_tps_cv=0.01, repetitions_kept=3))
    assert not clean.flagged and clean.words() == "" and clean.repetitions == 3
    assert caveats_sentence([("gguf Q8_0", clean)]) == "" and verdict_caveat([("gguf Q8_0", clean)]) == ""
    assert caveats_sentence([("gguf Q8_0", both)]).startswith(
        "Speed to treat with care: gguf Q8_0 (busy machine; varied 104% between 3 repetitions).")


def test_the_baseline_is_named_with_what_it_was_made_from(monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.baseline as baseline

    def variant(vid: str, label: str, parent: str | None, backend: str, conversion: str) -> SimpleNamespace:
        return SimpleNamespace(id=vid, label=label, parent_id=parent, backend=backend, conversion=conversion)

    root = variant("v-root", "gguf Q4_1", None, "import", "demo")
    hf = variant("v-hf", "hf F32", "v-root", "llamacpp", "dequantize")
    monkeypatch.setattr(baseline, "find_variant", lambda vid: {"v-hf": hf, "v-root": root}.get(vid))
    monkeypatch.setattr(baseline, "ancestors", lambda vid: [root] if vid == "v-hf" else [])
    assert baseline.lineage_words("v-hf") == ("hf F32, dequantized from gguf Q4_1 (as imported)", ["v-root"])
    assert baseline.lineage_words("v-root") == ("gguf Q4_1 (as imported)", [])
    assert baseline.lineage_words("v-gone") == ("variant v-gone (no longer stored)", [])


def test_the_compare_page_and_its_html_carry_the_baseline_and_the_speed_caveats(
        tiny_results, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25: the page, its verdict and its HTML dropped the Benchmarks page's busy-machine and
    spread flags, and the HTML named the baseline as "result r-..."; a candidate the baseline was
    made from was ranked without a word."""
    import bench.compare_view
    from bench.compare_export import best_sentence, to_csv, to_html, to_json
    from bench.compare_view import CompareSpec, build_view

    words = "hf F32, dequantized from gguf Q4_1 (as imported)"
    variant_id = build_view(CompareSpec.from_dict(_spec(tiny_results))).baseline.variant_id
    monkeypatch.setattr(bench.compare_view, "lineage_words", lambda vid: (words, [variant_id]))
    spec = {**_spec(tiny_results), "gates": {"quality_retention": 0.95, "speedup": 2.0, "memory_reduction": 0.0}}
    view = build_view(CompareSpec.from_dict(spec))
    rows = {r["result_id"]: r for r in view.headline_rows()}
    assert rows[tiny_results["busy"]]["speed caveat"] == "busy machine; varied 104% between 3 repetitions"
    assert rows[tiny_results["fast"]]["speed caveat"] == "" and rows[tiny_results["fast"]]["speed repetitions"] == 3
    assert rows[tiny_results["fast"]]["variant"].endswith("(the baseline's origin)")  # here: the same variant
    verdict = best_sentence(view)
    assert "It is what the baseline was made from (hf F32, dequantized from gguf Q4_1" in verdict
    assert "This verdict rests on flagged speed" in verdict
    page = to_html(view, "Team pick")
    assert f"Baseline: {words}; result {tiny_results['base']}." in page
    assert "Speed to treat with care: hf F32 (busy machine; varied 104% between 3 repetitions)" in page
    assert "speed caveat" in to_csv(view).splitlines()[0]
    assert json.loads(to_json(view))["baseline"] == words

    saved = actions.save_comparison(ANA, "Team pick", spec)
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.query_params["c"] = saved.id
    at.run()
    assert not at.exception
    assert any(f"Baseline: {words}" in m.value.replace("\\", "") for m in at.markdown)  # markdown-escaped
    assert any("Speed to treat with care" in w.value for w in at.warning)
    assert any("rests on flagged speed" in m.value for m in [*at.success, *at.warning])
    assert any(c.value.endswith(f"/compare?c={saved.id}") for c in at.code)  # a block with a copy button
    headings = json.loads(at.dataframe[0].proto.columns)
    assert headings["gate: quality_retention"]["label"] == "gate: quality retention"  # not snake_case
    assert headings["speed repetitions"]["label"] == "speed runs"


def test_the_link_to_share_is_the_full_url_and_says_when_only_this_machine_can_open_it() -> None:
    from ui.share_link import full_link, local_only_note

    page = "http://models.team.lan:8501/compare?source=s-1"
    assert full_link("/compare?c=c-1", page) == "http://models.team.lan:8501/compare?c=c-1"
    assert full_link("/compare?c=c-1", None) == "/compare?c=c-1"
    assert local_only_note(page, "localhost").startswith("This app serves this machine only")
    assert local_only_note(page, "0.0.0.0") == "" and local_only_note(page, "10.0.0.5") == ""  # every interface
    assert "each colleague's own machine" in local_only_note("http://localhost:8501/compare", "")


# --------------------------------------------------------------------------- exports say what they show

def test_the_model_card_carries_the_speed_caveat(tiny_results) -> None:
    """The card's benchmark table showed a busy machine's decode speed as if it were clean."""
    from catalog import results
    from catalog.model_card import benchmark_table

    [busy] = results.results_by_id([tiny_results["busy"]])
    table = benchmark_table(results.results_for_variant(busy.variant_id))  # the newest: the busy one
    assert "| Speed caveat | busy machine; varied 104% between 3 repetitions |" in table


def test_exported_charts_carry_name_date_baseline_and_gates(tiny_results) -> None:
    """A pasted PNG said nothing of what it compared, and the metrics grid was squeezed into
    560 px with its panel titles over the tick labels above."""
    from bench.compare_export import PNG_TOP_MARGIN, baseline_sentence, export_figures, png_size_of
    from bench.compare_view import CompareSpec, build_view

    view = build_view(CompareSpec.from_dict(_spec(tiny_results)))
    figures = export_figures(view, "Team pick", when=datetime(2026, 12, 6, tzinfo=UTC))
    assert set(figures) == set(view.figures())
    for fig in figures.values():
        title = fig.layout.title.text
        assert "Team pick" in title and "2026-12-06" in title and "<br>Gates: Quality retention ≥" in title
        assert baseline_sentence(view) in title
    assert view.figures()["metrics"].layout.title.text is None  # the page's own figure is untouched
    grid = figures["metrics"]
    assert png_size_of(grid) == (1000, int(grid.layout.height) + PNG_TOP_MARGIN)


@pytest.mark.browser
def test_an_exported_png_is_as_tall_as_its_grid(tiny_results) -> None:
    from bench.compare_export import export_figures, png_size_of, to_png
    from bench.compare_view import CompareSpec, build_view
    from tests.test_compare import png_size

    grid = export_figures(build_view(CompareSpec.from_dict(_spec(tiny_results))), "Team pick")["metrics"]
    assert png_size(to_png(grid)) == png_size_of(grid)
