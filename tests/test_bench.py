"""Real quick benchmarks of the demo model's reference form, F16 and Q4_K_M, and their charts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.charts import ChartRow, comparability, comparison_figure
from catalog import results

pytestmark = pytest.mark.slow
SANE = {"size_mb": (1, 2000), "load_s": (0, 60), "ttft_s": (0, 30), "decode_tps_p50": (0.5, 10_000),
        "prefill_tps_p50": (1, 100_000), "peak_rss_mb": (50, 20_000), "memory_rise_mb": (1, 20_000),
        "perplexity": (1, 1000), "top1_agreement": (0, 1), "kl_mean": (0, 5), "max_abs_error": (0, 1),
        "quality_retention": (0, 1.5), "token_latency_ms_p50": (0, 10_000),
        "llamacpp_perplexity": (1, 1000), "decode_tps_cv": (0, 2), "repetitions_kept": (1, 100)}


@pytest.fixture(scope="module")
def measured(chain_data, shared_root: Path):
    """The chain's quick results of the reference, F16 and Q4_K_M (real benchmark jobs, run once per
    test run by the chain fixture, tests/conftest.py)."""
    from catalog import config, db

    mp = pytest.MonkeyPatch()
    mp.setenv(config.ROOT_ENV, str(shared_root))
    db.reset_migration_cache()
    ids = {"reference": chain_data["hf"].id, "f16": chain_data["f16"].id, "q4": chain_data["quants"]["Q4_K_M"].id}
    latest = {r.variant_id: r for r in results.latest_results(chain_data["source"].id, "quick", with_raw=True)}
    yield {name: latest[vid] for name, vid in ids.items()}
    mp.undo()


def test_every_metric_is_present_and_sane(measured) -> None:
    for name, result in measured.items():
        for key, (low, high) in SANE.items():
            assert key in result.metrics, (name, key)
            assert low <= result.metrics[key] <= high, (name, key, result.metrics[key])
        assert result.raw["speed"]["runs"] and len(result.raw["generations"]) == 4
        assert result.fingerprint["threads"] == 2 and result.fingerprint["cpu"]
        assert result.protocol_id.startswith("p-") and result.profile == "quick"


def test_the_reference_agrees_with_itself(measured) -> None:
    ref = measured["reference"].metrics
    assert ref["top1_agreement"] == 1.0 and ref["kl_mean"] < 1e-6 and ref["quality_retention"] == pytest.approx(1.0)
    assert measured["reference"].runtime == "transformers FP32 CPU"


def test_f16_perplexity_matches_the_reference(measured) -> None:
    f16, ref = measured["f16"].metrics, measured["reference"].metrics
    assert f16["perplexity"] == pytest.approx(ref["perplexity"], rel=0.02)
    assert f16["top1_agreement"] > 0.95



def test_the_compatible_perplexity_uses_each_variants_own_tokenizer(measured) -> None:
    """llama.cpp's tokenizer splits this text into other ids than transformers' does (it differs
    at "\n\n"), so the compatible perplexity is compared within a runtime, never across: quantizing
    costs under it as under the cross-runtime one."""
    f16, q4, ref = (measured[k].metrics for k in ("f16", "q4", "reference"))
    assert q4["llamacpp_perplexity"] > f16["llamacpp_perplexity"]
    assert f16["llamacpp_ppl_scored"] == ref["llamacpp_ppl_scored"] == 255  # quick: one 512-token chunk


def test_a_lossless_variant_has_almost_no_kl_divergence(measured) -> None:
    """F16 of an F32 model whose weights came from Q4_1 is lossless up to rounding: KL must be tiny
    (a KL of 7 beside top-1 agreement 1.000 and equal perplexity was a bug)."""
    assert measured["f16"].metrics["kl_mean"] < 1e-3
    assert measured["reference"].metrics["kl_mean"] < 1e-6


def test_q4_k_m_costs_quality_and_saves_memory(measured) -> None:
    q4, f16 = measured["q4"].metrics, measured["f16"].metrics
    assert q4["perplexity"] > f16["perplexity"]
    assert q4["memory_rise_mb"] < f16["memory_rise_mb"]
    assert q4["size_mb"] < f16["size_mb"]


def test_chart_marks_the_baseline_and_flags_another_fingerprint(measured) -> None:
    rows = [ChartRow("source", "v-a", measured["reference"].metrics, "p-1", "f-1", is_baseline=True),
            ChartRow("Q4_K_M", "v-b", measured["q4"].metrics, "p-1", "f-1"),
            ChartRow("Q8_0 elsewhere", "v-c", measured["q4"].metrics, "p-1", "f-2"),
            ChartRow("other protocol", "v-d", measured["q4"].metrics, "p-2", "f-1")]
    odd, warnings = comparability(rows)
    assert odd == {"v-c", "v-d"}
    assert any("another machine" in w for w in warnings) and any("another protocol" in w for w in warnings)
    fig, _ = comparison_figure(rows)
    decode = next(t for t in fig.data if t.name == "decode_tps_p50")
    assert list(decode.marker.color) == ["#7f7f7f", "#1f77b4", "#d62728", "#d62728"]
    assert "⚠" in decode.x[2] and "(baseline)" in decode.x[0]


def test_export_csv_and_json(measured) -> None:
    text = results.as_text(list(measured.values()), "csv")
    header = text.splitlines()[0].split(",")
    assert {"perplexity", "decode_tps_p50", "fingerprint_id", "protocol_id"} <= set(header)
    assert len(text.splitlines()) == 4
    assert '"generations"' in results.as_text(list(measured.values()), "json")


def test_benchmarks_page_shows_chart_and_generations(measured, chain) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "benchmarks.py"),
                           default_timeout=60)
    at.query_params["source"] = chain["source"].id
    at.run()
    assert not at.exception
    assert at.get("plotly_chart"), "the comparison chart is drawn"
    gens = at.dataframe[0].value
    assert "Paris" in " ".join(gens.iloc[0].astype(str))
    assert at.query_params["variants"]  # the selection is in the URL, so the view can be shared


def test_busy_runs_share_one_warning() -> None:
    rows = [ChartRow("source", "v-a", {"size_mb": 1.0}, "p-1", "f-1", flags=["machine_loaded"], is_baseline=True),
            ChartRow("Q8_0", "v-b", {"size_mb": 0.5}, "p-1", "f-1", flags=["machine_loaded"]),
            ChartRow("Q4_K_M", "v-c", {"size_mb": 0.3}, "p-1", "f-1")]
    odd, warnings = comparability(rows)
    assert odd == set()
    assert warnings == ["Measured while the machine was busy: source, Q8_0; rerun them for trustworthy speed "
                        "(quality is unaffected)."]


def test_ratio_axes_near_one_are_zoomed() -> None:
    from bench.charts import zoomed_range

    low, high = zoomed_range("accuracy", [0.9889, 0.9866, 0.9889])
    assert 0.98 < low < 0.9866 and 1.0 <= high < 1.01
    assert zoomed_range("accuracy", [0.3, 0.99]) is None  # a collapse stays visible from zero
    assert zoomed_range("latency_ms_p50", [0.11, 0.12]) is None
    rows = [ChartRow("source", "v-a", {"accuracy": 0.99}, "p-1", "f-1", is_baseline=True),
            ChartRow("int8", "v-b", {"accuracy": 0.98}, "p-1", "f-1")]
    fig, _ = comparison_figure(rows, [("accuracy", "Accuracy", None)])
    assert fig.layout.yaxis.range[0] > 0.9


def test_the_reference_logits_are_computed_once_per_source(measured, chain) -> None:
    """The chain's three benchmarks share one source: the reference's logits on the scored windows
    were kept with the reference variant, and every result holds the same reference perplexity.
    (A kept file cut short is computed again: test_registry.)"""
    from catalog import config

    kept = [p.stat().st_size for p in config.smoke_cache_dir(chain["hf"].id).glob("*.npz")]
    assert max(kept) > 90 * 2**20  # 512 positions of a 49,152-token vocabulary, float32
    assert len({r.metrics["reference_perplexity"] for r in measured.values()}) == 1
