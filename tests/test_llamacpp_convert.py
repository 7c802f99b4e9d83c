"""Real llama.cpp conversions of the demo model (no mocks): dequantize, HF -> F16, quantize with
effective types, requantize, batch and resubmit; an IQ type with an importance matrix on a tiny Llama."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import convert_job, registry
from backends.export import export_variant
from backends.importers import ImportRequest, import_now, submit_import
from backends.llamacpp.quant_types import IQ_TYPES, QUANT_TYPES
from backends.preflight import errors, generic_checks
from backends.registry import get_conversion
from catalog import config, db, sources, variants
from tests.helpers.chain import convert
from tests.helpers.models import tiny_hf_folder
from worker.runner import run_to_completion

pytestmark = pytest.mark.slow


def test_declared_quant_types_exist_in_the_installed_llama_cpp(llama_tools: Path) -> None:
    from backends.llamacpp import tools as llamacpp_tools

    offered = llamacpp_tools.quantize_types()
    assert set(QUANT_TYPES) <= set(offered), set(QUANT_TYPES) - set(offered)
    assert llamacpp_tools.types_requiring_imatrix() <= set(IQ_TYPES) | {"Q2_K_S"}
    assert "LlamaForCausalLM" in llamacpp_tools.supported_converter_architectures()


def test_dequantized_form_predicts_like_its_gguf(chain) -> None:
    hf = chain["hf"]
    assert hf.format == "hf" and hf.precision == "F32" and hf.parent_id == chain["root"].id
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {f.relpath for f in hf.files}
    smoke = hf.metadata["smoke"]
    # The equivalence check: Q4_1 GGUF and its FP32 form give the same next-token predictions.
    # llama.cpp multiplies Q4_1 weights with 8-bit activations, transformers in FP32: near-ties flip.
    assert smoke["top1_agreement"] >= 0.95, smoke
    assert "Paris" in smoke["generations"][0]["variant"]


def test_hf_to_f16_keeps_the_greedy_continuation(chain) -> None:
    f16 = chain["f16"]  # not found by precision: OpenVINO's fp16 export of the demo is F16 too
    assert f16.format == "gguf" and f16.intermediate and f16.parent_id == chain["hf"].id
    first = f16.metadata["smoke"]["generations"][0]
    assert first["variant"] == first["parent"]
    assert f16.metadata["smoke"]["top1_agreement"] >= 0.97


def test_q4_k_m_records_its_effective_types(chain) -> None:
    q4 = chain["quants"]["Q4_K_M"]
    hist = q4.metadata["effective_types"]
    assert max(hist, key=lambda t: hist[t]["share"]) == "Q5_0"  # hidden 576 is not a multiple of 256
    assert {"Q4_K", "Q6_K", "Q8_0"} <= set(hist)
    assert abs(sum(v["share"] for v in hist.values()) - 1.0) < 1e-6
    assert q4.metadata["smoke"]["top1_agreement"] >= 0.6
    assert len(q4.metadata["smoke"]["generations"]) == 4


def test_iq_type_uses_an_importance_matrix_variant(chain, tmp_path: Path) -> None:
    """On a tiny Llama with the demo's tokenizer (the demo's matrix and IQ2_XXS took 80 s): the
    plan makes the F16, then the matrix from the shipped text, then the IQ type from both."""
    from tests.helpers.chain import import_tiny_llama

    tiny = import_tiny_llama(chain["hf"], config.data_root(), tmp_path / "tiny")
    steps, problems = convert_job.plan("llamacpp.quantize", tiny.id, {"types": ["IQ2_XXS"]})
    assert [s.conversion.name for s in steps] == ["convert_hf", "imatrix", "quantize"] and not errors(problems)
    [iq] = [v for v in convert("llamacpp.quantize", tiny.id, types=["IQ2_XXS"]) if v.format == "gguf"
            and v.precision == "IQ2_XXS"]
    matrix = variants.get_variant(iq.metadata["imatrix"])
    assert matrix.format == "imatrix" and len(matrix.metadata["calibration_sha256"]) == 16
    assert iq.options["input:imatrix"] == matrix.id and matrix.parent_id == steps[0].target_variant_id
    # width 64 is no multiple of 256: llama.cpp falls back for every such tensor, and says which types it used
    assert sum(t["share"] for t in iq.metadata["effective_types"].values()) == pytest.approx(1.0)


def test_gguf_carries_provenance(chain) -> None:
    from backends.llamacpp.gguf_meta import open_reader

    q8 = chain["quants"]["Q8_0"]
    reader = open_reader(registry.main_file(q8))
    field = reader.get_field("modelcatalog.variant")
    assert bytes(field.parts[-1]).decode() == q8.id


def test_exported_gguf_is_named_after_its_source(chain, tmp_path: Path) -> None:
    from backends.llamacpp.gguf_meta import open_reader

    folder = export_variant(chain["quants"]["Q8_0"].id, tmp_path)
    reader = open_reader(next(folder.glob("*.gguf")))
    names = {key: reader.get_field(f"general.{key}").contents() for key in ("name", "basename", "finetune",
                                                                              "size_label")}
    assert names == {"name": chain["source"].name, "basename": "SmolLM2", "finetune": "Instruct",
                     "size_label": "135M"}


def test_an_exported_variant_imported_again_is_that_variant(chain, tmp_path: Path) -> None:
    q8 = chain["quants"]["Q8_0"]
    gguf_file = next(export_variant(q8.id, tmp_path).glob("*.gguf"))
    before = sources.count_sources()
    done = run_to_completion(submit_import(ImportRequest(kind="path", path=str(gguf_file))).job.id)
    assert done.state == "succeeded", done.error
    assert done.result["variant_id"] == q8.id and done.result["existing"]
    assert sources.count_sources() == before


def test_a_gguf_made_by_another_catalog_keeps_its_origin(chain, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    q8 = chain["quants"]["Q8_0"]
    gguf_file = next(export_variant(q8.id, tmp_path / "out").glob("*.gguf"))
    monkeypatch.setenv(config.ROOT_ENV, str(tmp_path / "other-team"))
    db.reset_migration_cache()
    config.data_root()
    config.save_settings(config.Settings(allowed_roots=[str(tmp_path)]))
    source = import_now(ImportRequest(kind="path", path=str(gguf_file)))
    origin = variants.get_variant(source.root_variant_id).metadata["provenance"]
    assert origin["modelcatalog.variant"] == q8.id and origin["modelcatalog.parent"] == q8.parent_id
    assert origin["modelcatalog.recipe"].startswith("llamacpp.quantize")
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "model.py"), default_timeout=60)
    at.query_params["id"] = source.id
    at.run()
    assert not at.exception
    [info] = [i.value for i in at.info if q8.id in i.value]
    assert "not stored in this catalog" in info


def test_identical_batch_resubmit_returns_the_existing_variants(chain) -> None:
    steps, problems = convert_job.plan("llamacpp.quantize", chain["hf"].id, {"types": ["Q4_K_M", "Q8_0"]})
    assert [s.conversion.name for s in steps] == ["convert_hf", "quantize", "quantize"]
    assert all(s.existing is not None for s in steps)
    subs = convert_job.submit("llamacpp.quantize", chain["hf"].id, {"types": ["Q4_K_M"]})
    assert subs[-1].variant is not None and subs[-1].variant.id == chain["quants"]["Q4_K_M"].id


def test_requantize_needs_an_explicit_option(chain) -> None:
    root = chain["root"]
    _, problems = convert_job.plan("llamacpp.quantize", root.id, {"types": ["Q8_0"]})
    assert any("already quantized (Q4_1)" in p.message for p in problems if p.level == "error")
    # the error names the checkbox as the Convert form labels it (issue 25: it said allow_requantize)
    assert any("“allow requantize”" in p.message for p in problems if p.level == "error")
    _, problems = convert_job.plan("llamacpp.quantize", root.id, {"types": ["Q8_0"], "allow_requantize": True})
    assert any("compounds" in p.message for p in problems if p.level == "warning")
    [q8] = convert("llamacpp.quantize", root.id, types=["Q8_0"], allow_requantize=True)
    assert q8.parent_id == root.id and q8.metadata["smoke"]["top1_agreement"] >= 0.85


# ------------------------------------------------------------------------------ bad input


def test_iq_type_without_matrix_is_refused(chain) -> None:
    _, problems = convert_job.plan("llamacpp.quantize", chain["hf"].id, {"types": ["IQ2_XXS"], "imatrix": "never"})
    assert any("needs an importance matrix" in p.message for p in problems)


def test_calibration_file_that_is_not_text(chain, tmp_path: Path) -> None:
    binary = tmp_path / "calib.txt"
    binary.write_bytes(bytes(range(256)) * 100)
    _, problems = convert_job.plan("llamacpp.quantize", chain["hf"].id,
                                   {"types": ["IQ2_XXS"], "calibration": str(binary)})
    assert any("not UTF-8 text" in p.message for p in problems)


def test_architecture_the_converter_does_not_support(chain, tmp_path: Path) -> None:
    from backends.importers import ImportRequest, import_now

    folder = tiny_hf_folder(tmp_path / "alien", arch="AlienForCausalLM")
    src = import_now(ImportRequest(kind="path", path=str(folder)))
    _, problems = convert_job.plan("llamacpp.convert_hf", src.root_variant_id, {"outtype": "f16"})
    assert [p.message for p in problems] == [
        "llama.cpp's converter does not support the architecture AlienForCausalLM; it cannot become a GGUF."]


def test_disk_full_is_refused_before_any_job(chain) -> None:
    conv = get_conversion("llamacpp.quantize")
    problems = generic_checks(conv, chain["hf"], free_disk=10 * 2**20)
    assert any("free space on the Storage page" in p.message for p in problems)


def test_truncated_gguf_input_fails_the_job_without_a_variant(chain, tmp_path: Path) -> None:
    """A GGUF damaged after import: the job fails with a sentence and records nothing."""
    q8 = chain["quants"]["Q8_0"]
    path = registry.main_file(q8)
    backup = path.read_bytes()
    try:
        path.write_bytes(backup[: len(backup) // 3])
        subs = convert_job.submit("llamacpp.quantize", q8.id, {"types": ["Q4_0"], "allow_requantize": True})
        job = run_to_completion(subs[-1].job.id)
        assert job.state == "failed" and "\n" not in job.error
        assert variants.find_variant(job.target_variant_id) is None
    finally:
        path.write_bytes(backup)


def test_convert_page_plans_and_submits(chain) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "convert.py"), default_timeout=60)
    at.query_params["source"] = chain["source"].id
    at.query_params["variant"] = chain["hf"].id
    at.run()
    assert not at.exception
    at.selectbox(key="cv_conv").select(get_conversion("llamacpp.quantize")).run()
    text = "\n".join(m.value for m in at.markdown)
    assert "exists, reused" in text  # Q4_K_M from the HF form was made by the chain
    at.button(key="cv_submit").click().run()
    assert any("already exists" in s.value for s in at.success)


def test_convert_page_says_what_other_inputs_offer_and_folds_finished_work(chain) -> None:
    """Issue 25: the page opened on a list of finished conversions, and the GenAI and OpenVINO
    conversions showed only after switching the input to "hf F32", with nothing saying so."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "convert.py"), default_timeout=60)
    at.query_params["source"] = chain["source"].id
    at.query_params["variant"] = chain["quants"]["Q8_0"].id
    at.run()
    assert not at.exception
    offered = {c.title for c in at.selectbox(key="cv_conv").options}
    hint = next(c.value for c in at.caption if c.value.startswith("With another input variant:"))
    genai = get_conversion("onnxrt.genai_build").title.split(" (")[0]
    assert genai not in offered and f"{genai} (from " in hint and chain["hf"].label in hint
    [folded] = [e for e in at.expander if e.label.startswith("Finished conversions of this model")]
    assert folded.proto.expanded is False and "Open the variant" in "\n".join(m.value for m in folded.markdown)
