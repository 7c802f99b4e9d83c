"""Result fingerprint ids across the change that took the llama.cpp build out of the results of
other runtimes: charts and Compare recompute each stored result's id from its fingerprint, so an
old catalog's results group with new ones exactly as they should."""

from __future__ import annotations

from types import SimpleNamespace

from backends import registry
from bench.charts import comparability, rows_from_results
from bench.compare import unlike_reasons
from bench.fingerprint import fingerprint, fingerprint_id

BUILD = "0.3.36-zen4-a19d5a01"


def _result(variant_id: str, fp: dict, stored_id: str = "f-stored") -> SimpleNamespace:
    return SimpleNamespace(id=f"r-{variant_id}", variant_id=variant_id, metrics={}, protocol_id="p1", flags=[],
                           fingerprint=fp, fingerprint_id=stored_id)


def _old_style(fp: dict) -> dict:
    """A fingerprint as stored before: every result, of any runtime, carried the llama.cpp build."""
    return fp | {"llama_cpp_build": BUILD}


def test_an_old_catalogs_results_group_with_new_ones() -> None:
    new = {fmt: fingerprint(2, f"{fmt} CPU", runner_fields=registry.fingerprint_fields(fmt))
           for fmt in ("hf", "gguf", "onnx", "openvino")}
    assert "llama_cpp_build" in new["gguf"] and not any("llama_cpp_build" in new[f] for f in ("hf", "onnx", "openvino"))
    old = {fmt: _old_style(fp) for fmt, fp in new.items()}
    ids = {fingerprint_id(fp) for fp in (*new.values(), *old.values())}
    assert len(ids) == 1, "an old result of some runtime was split from the new ones"
    # The charts' check, baseline old and new, variants old and new: nothing is flagged.
    for base in (old["hf"], new["hf"]):
        rows = rows_from_results([_result("base", base), *(_result(f"{k}-old", fp) for k, fp in old.items()),
                                  *(_result(f"{k}-new", fp) for k, fp in new.items())], {}, "base")
        odd, warnings = comparability(rows)
        assert not odd and not warnings
        for fp in (*old.values(), *new.values()):
            assert unlike_reasons(_result("v", fp), _result("base", base)) == []


def test_what_still_splits_results_still_does() -> None:
    fp = fingerprint(2, "llama.cpp CPU", runner_fields=registry.fingerprint_fields("gguf"))
    assert fingerprint_id(fp) != fingerprint_id(fp | {"threads": 4})
    assert fingerprint_id(fp) != fingerprint_id(fp | {"target": "QNN HTP simulator"})
    assert fingerprint_id(fp) != fingerprint_id(fp | {"runtime_options": {"knob": "other"}})
    # An old result without the key keeps its id: the key is never read.
    assert fingerprint_id(_old_style(fp)) == fingerprint_id({k: v for k, v in fp.items() if k != "llama_cpp_build"})
