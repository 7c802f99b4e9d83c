"""Compare: gates, Pareto frontiers and "best that passes" on hand-made figures with a known
answer; saved comparisons (stable result ids, newer results, owner-only delete); the exports
(CSV round trip, JSON, offline HTML in Chromium, PNG size); and the page through AppTest."""

from __future__ import annotations

import csv
import io
import json
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from backends.registry import Gate
from bench import compare
from bench.compare import Point

# --------------------------------------------------------------------------- pure: a known answer


def pt(label: str, speedup: float | None, quality: float | None, memory: float | None = 0.6,
       size_mb: float | None = 100.0, unlike: list[str] | None = None, base: bool = False) -> Point:
    return Point(result_id=f"r-{label}", variant_id=f"v-{label}", source_id="s", label=label, format="f",
                 toolkit="t", size_mb=size_mb, memory_mb=None, speed=speedup, quality=quality,
                 headline={"speedup": speedup, "quality_retention": quality, "memory_reduction": memory,
                           "size_reduction": None},
                 is_baseline=base, unlike=unlike or [])


GATES = compare.gates_from({"quality_retention": 0.95, "speedup": 2.0, "memory_reduction": 0.5})


def test_gates_are_the_conversions_gate_objects() -> None:
    assert all(isinstance(g, Gate) for g in GATES)
    assert [g.metric for g in GATES] == ["quality_retention", "speedup", "memory_reduction"]


def test_pareto_front_with_ties_and_missing_figures() -> None:
    a, b, c = pt("a", 1.0, 1.0), pt("b", 3.0, 0.90), pt("c", 2.0, 0.95)
    dominated = pt("d", 1.5, 0.90)             # c beats it on both axes
    tie = pt("c2", 2.0, 0.95)                  # identical to c: neither dominates, both on the front
    missing = pt("m", None, 0.99)              # no speed: left out, whatever its quality
    front = compare.pareto_front([a, b, c, dominated, tie, missing], lambda p: p.speed,
                                 lambda p: p.headline["quality_retention"])
    assert [p.label for p in front] == ["a", "c", "c2", "b"]
    # size against quality: smaller is better on x
    s1, s2, s3 = pt("s1", 1, 0.9, size_mb=50), pt("s2", 1, 0.99, size_mb=200), pt("s3", 1, 0.9, size_mb=80)
    front = compare.pareto_front([s1, s2, s3], lambda p: p.size_mb, lambda p: p.headline["quality_retention"],
                                 x_higher=False)
    assert [p.label for p in front] == ["s1", "s2"]


def test_gates_best_and_nearest_misses() -> None:
    base = pt("base", 1.0, 1.0, memory=0.0, base=True)
    fast = pt("fast", 4.0, 0.96, memory=0.7, size_mb=60)    # passes
    good = pt("good", 2.5, 0.99, memory=0.55, size_mb=80)   # passes
    slow = pt("slow", 1.9, 0.99, memory=0.6)                # misses speed by 0.1 of 2
    bad = pt("bad", 5.0, 0.50, memory=0.8)                  # misses quality by far
    blank = pt("blank", None, 0.99, memory=0.6)             # no speed figure: a full miss
    verdicts = compare.judge([base, fast, good, slow, bad, blank], GATES)
    assert "base" not in {v.point.label for v in verdicts}
    passed = {v.point.label: v.passes_all for v in verdicts}
    assert passed == {"fast": True, "good": True, "slow": False, "bad": False, "blank": False}
    # equal weights: fast = (1 + 0.96/0.99 + 1)/3, good = (2.5/4 + 1 + 0.55/0.7)/3
    ranked = compare.scores(verdicts, compare.DEFAULT_WEIGHTS)
    assert [v.point.label for v, _ in ranked] == ["fast", "good"]
    assert ranked[0][1] == pytest.approx((1 + 0.96 / 0.99 + 1) / 3)
    # weight quality only: good leads
    ranked = compare.scores(verdicts, {"speedup": 0, "quality_retention": 1, "memory_reduction": 0})
    assert ranked[0][0].point.label == "good"
    misses = compare.nearest_misses(verdicts)
    assert [v.point.label for v in misses] == ["slow", "bad", "blank"]
    assert misses[0].failed_gates() == ["speedup"] and misses[0].shortfall == pytest.approx(0.05)


def test_a_tie_in_score_goes_to_the_smaller_variant() -> None:
    big, small = pt("big", 3.0, 0.97, size_mb=90), pt("small", 3.0, 0.97, size_mb=40)
    ranked = compare.scores(compare.judge([big, small], GATES), compare.DEFAULT_WEIGHTS)
    assert [v.point.label for v, _ in ranked] == ["small", "big"]


def test_headline_against_the_baseline() -> None:
    llm = compare.measures_for("text-generation")
    h = compare.headline({"decode_tps_p50": 60, "memory_rise_mb": 100, "size_mb": 80, "perplexity": 21},
                         {"decode_tps_p50": 20, "memory_rise_mb": 400, "size_mb": 540, "perplexity": 20}, llm)
    assert h["speedup"] == pytest.approx(3.0) and h["memory_reduction"] == pytest.approx(0.75)
    assert h["size_reduction"] == pytest.approx(1 - 80 / 540) and h["quality_retention"] == pytest.approx(20 / 21)
    clf = compare.measures_for("image-classification")
    h = compare.headline({"throughput_per_s": 10, "accuracy": 0.9}, {"throughput_per_s": 5, "accuracy": 0.95}, clf)
    assert h["speedup"] == 2 and h["quality_retention"] == pytest.approx(0.9 / 0.95) and h["memory_reduction"] is None
    enc = compare.measures_for("feature-extraction")
    assert compare.headline({"cosine_mean": 0.99}, {}, enc)["quality_retention"] == pytest.approx(0.99)
    failed = compare.headline({"perplexity": 21}, {"perplexity": 20}, llm, quality_failed=True)
    assert failed["quality_retention"] is None


def test_unlike_results_are_named() -> None:
    fp = {"cpu": "x", "cpu_flags_sha": "a", "cores": 2, "threads": 2, "memory_gb": 8, "target": "llama.cpp CPU"}

    def res(**kw):
        return SimpleNamespace(**{"protocol_id": "p1", "fingerprint": fp, "fingerprint_id": "", "flags": [], **kw})

    base = res()
    assert compare.unlike_reasons(res(), base) == []
    assert compare.unlike_reasons(res(protocol_id="p2"), base) == ["another protocol"]
    assert compare.unlike_reasons(res(fingerprint={**fp, "cores": 64}), base) == ["another machine or runtime setting"]
    sim = compare.unlike_reasons(res(fingerprint={**fp, "target": "QNN HTP simulator"}), base)
    assert any("simulated" in r for r in sim)
    assert compare.unlike_reasons(res(flags=["imported"]), base) == ["imported from another machine"]


# --------------------------------------------------------------------------- saved, exported, shown

HANDMADE = "handmade"  # a profile no page lists: these figures never mix with the session's real runs
PAGE = Path(__file__).resolve().parent.parent / "pages" / "compare.py"


@pytest.fixture
def made(chain):
    """Hand-made results for four real variants of the demo (the figures are the test's, not a
    benchmark's: the benchmark runs are tested in test_bench.py and the browser test)."""
    from bench.fingerprint import fingerprint, fingerprint_id
    from catalog import db, results

    fp = fingerprint(2, "transformers CPU")
    figures = {chain["hf"].id: (20.0, 540.0, 600.0, 20.0), chain["f16"].id: (25.0, 270.0, 300.0, 20.01),
               chain["quants"]["Q8_0"].id: (60.0, 145.0, 200.0, 20.1),
               chain["quants"]["Q4_K_M"].id: (80.0, 105.0, 150.0, 21.5)}
    ids = {}
    with db.connect() as conn:
        for vid, (tps, size, mem, ppl) in figures.items():
            ids[vid] = results.add_result(
                conn, variant_id=vid, source_id=chain["source"].id, job_id=None, protocol_id="p-handmade",
                profile=HANDMADE, runtime="hand-made", fingerprint_id=fingerprint_id(fp), fingerprint=fp,
                metrics={"decode_tps_p50": tps, "size_mb": size, "memory_rise_mb": mem, "perplexity": ppl},
                raw={}, toolkit_versions={"test": "1"}, flags=[])
    return ids


def spec_of(chain, made):
    from bench.compare_view import CompareSpec

    base = made[chain["hf"].id]
    return CompareSpec(result_ids=[r for r in made.values() if r != base], baseline_result_id=base)


def test_view_gates_and_best(chain, made) -> None:
    from bench.compare_export import best_sentence
    from bench.compare_view import build_view

    view = build_view(spec_of(chain, made))
    rows = {r["variant"]: r for r in view.headline_rows()}
    q8 = rows["gguf Q8_0"]
    assert q8["speed-up ×"] == 3.0 and q8["memory reduction %"] == pytest.approx(66.7)
    assert q8["quality retention %"] == pytest.approx(99.5) and q8["gate: quality_retention"] == "pass"
    assert rows["gguf Q4_K_M"]["gate: quality_retention"] == "fail"   # 20/21.5 = 93%
    assert rows[chain["f16"].label]["gate: speedup"] == "fail"
    assert [v.point.label for v, _ in view.best] == ["gguf Q8_0"]
    assert best_sentence(view).startswith("gguf Q8_0 passes every gate")
    assert [p.label for p in view.speed_frontier] == [chain["hf"].label, chain["f16"].label, "gguf Q8_0",
                                                       "gguf Q4_K_M"]
    tighter = spec_of(chain, made)
    tighter.gates["quality_retention"] = 0.999
    view = build_view(tighter)
    assert not view.best and "No variant passes every gate" in best_sentence(view)
    assert "quality retention 99.5% (needs ≥ 99.9%)" in best_sentence(view)


def test_saved_comparison_keeps_its_results(chain, made) -> None:
    from catalog import comparisons, results
    from catalog.errors import ConflictError, InvalidInputError
    from tests.helpers.chain import newer_copy

    spec = spec_of(chain, made).to_dict()
    with pytest.raises(InvalidInputError):
        comparisons.save_comparison("  ", spec, "ana")
    saved = comparisons.save_comparison("Demo: what to ship", spec, "ana")
    assert comparisons.get_comparison(saved.id).result_ids == spec["result_ids"]
    assert [c.id for c in comparisons.list_comparisons("what to SHIP")] == [saved.id]
    shown = results.results_by_id(saved.result_ids)
    assert results.newer_results(shown) == {}
    old = results.results_by_id([made[chain["quants"]["Q8_0"].id]])[0]
    newer = newer_copy(old.id)
    assert results.newer_results(shown) == {old.variant_id: newer}
    assert comparisons.get_comparison(saved.id).result_ids == spec["result_ids"]  # unchanged until asked
    with pytest.raises(ConflictError, match="Only ana"):
        comparisons.update_results(saved.id, [newer], "ben")
    with pytest.raises(ConflictError, match="Only ana"):
        comparisons.delete_comparison(saved.id, "ben")
    comparisons.delete_comparison(saved.id, "ana")
    assert comparisons.list_comparisons("what to ship") == []


def test_csv_round_trips_and_json_has_provenance(chain, made) -> None:
    from bench.compare_export import flat_row, provenance_rows, to_csv, to_json
    from bench.compare_view import build_view

    view = build_view(spec_of(chain, made))
    parsed = list(csv.DictReader(io.StringIO(to_csv(view))))
    expected = [{k: "" if v is None else str(v) for k, v in flat_row(row).items()} for row in provenance_rows(view)]
    assert parsed == expected and len(parsed) == 4
    assert parsed[0]["runtime_versions.test"] == "1" and parsed[0]["protocol_id"] == "p-handmade"
    # the conversion's own toolkit versions and parent are columns, not JSON inside a cell
    q8 = next(r for r in parsed if r["variant_id"] == chain["quants"]["Q8_0"].id)
    assert chain["quants"]["Q8_0"].toolkit_versions, "the chain records the llama.cpp version"
    assert q8["parent_variant_id"] == chain["quants"]["Q8_0"].parent_id
    assert {f"conversion_versions.{k}" for k in chain["quants"]["Q8_0"].toolkit_versions} <= set(q8)
    assert not any(cell.startswith("{") for row in parsed for cell in row.values())
    data = json.loads(to_json(view, "x"))
    assert data["best"][0]["result_id"] == made[chain["quants"]["Q8_0"].id]
    assert {"fingerprint", "recipe", "protocol_id", "parent_variant_id"} <= set(data["rows"][0])
    assert data["rows"][0]["runtime_versions"] == {"test": "1"}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.browser
def test_png_and_offline_html(chain, made, tmp_path) -> None:
    from bench.compare_export import to_html, to_png
    from bench.compare_view import build_view
    from tests.browser import chromium_page

    view = build_view(spec_of(chain, made))
    assert png_size(to_png(view.figures()["quality-vs-speed"], (800, 500))) == (800, 500)
    page_file = tmp_path / "comparison.html"
    page_file.write_text(to_html(view, "Demo <b>comparison</b>", "/compare?c=x"))
    with chromium_page() as page:  # fails the test if the page asks anything of the network
        page.context.set_offline(True)
        page.goto(page_file.as_uri())
        page.locator(".js-plotly-plot .main-svg").first.wait_for()
        assert page.locator(".js-plotly-plot").count() == 3
        assert page.evaluate("typeof window.Plotly") == "object"
        assert page.title() == "Demo <b>comparison</b>"  # escaped, shown as typed
        assert "gguf Q8_0 passes every gate" in page.inner_text("body")


def _saved_page(comparison_id: str, bars_open: bool = True):
    """The page on a saved comparison's link, its Every metric expander opened as a click does."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.query_params["c"] = comparison_id
    at.session_state["cmp_bars_open"] = bars_open
    return at.run()


def _charts(at) -> list[str]:
    return [json.dumps(json.loads(el.proto.spec)["data"], sort_keys=True) for el in at.get("plotly_chart")]


def test_page_opens_a_saved_link_identically(chain, made) -> None:
    from catalog import comparisons, results
    from tests.helpers.chain import newer_copy

    saved = comparisons.save_comparison("page link", spec_of(chain, made).to_dict(), "ana")
    first = _saved_page(saved.id)
    assert not first.exception, first.exception
    text = " ".join(m.value for m in first.markdown) + " ".join(s.value for s in first.success)
    assert "page link" in " ".join(h.value for h in first.subheader) and "gguf Q8_0 passes every gate" in text
    again = _saved_page(saved.id)
    assert _charts(again) == _charts(first) and len(_charts(first)) == 3
    closed = _saved_page(saved.id, bars_open=False)  # the Every metric chart is drawn once opened
    assert _charts(closed) == _charts(first)[:2]
    # a later result of one variant: the page says so, the charts stay as saved
    old = results.results_by_id([made[chain["quants"]["Q4_K_M"].id]])[0]
    newer_copy(old.id, metrics={**old.metrics, "decode_tps_p50": 1.0})
    later = _saved_page(saved.id)
    assert any("Newer results exist for gguf Q4_K_M" in i.value for i in later.info)
    assert _charts(later) == _charts(first)


NASTY = "Ship <script>alert(1)</script><img src=x onerror=alert(2)> [docs](javascript:alert(3))"


def test_a_hostile_name_is_shown_as_typed(chain, made) -> None:
    """A comparison's name is user text: escaped for markdown, so no tag or link is formed."""
    from catalog import comparisons
    from ui.fmt import escape_md

    saved = comparisons.save_comparison(NASTY, spec_of(chain, made).to_dict(), "ana")
    at = _saved_page(saved.id)
    assert not at.exception
    [heading] = [h.value for h in at.subheader if "Ship" in h.value]
    assert heading == escape_md(NASTY) and "\\<script\\>" in heading and "](javascript" not in heading
