"""Apple MLX on its CPU backend: the demo converted by mlx-lm at 4 bits (group 64), generating,
passing its smoke gate and scored on 128 tokens of the eval text against the source; the 8-bit and
mlx-lm's mixed_4_6 recipe on a tiny Llama (each demo conversion costs a minute here: MLX's CPU
kernels run on one thread at about 0.15 s a token, prefill included, and the smoke test alone takes
40 s of it), each with its bits per weight, gate and score; the runner's quick benchmark on the tiny
Llama (the demo's quick benchmark takes 4.5 minutes: run it from the Benchmarks page or `cli.py
bench run`, outside the suite); an MLX folder imported and dequantized back to Hugging Face; the
exported RUN.md snippet run; and the refusals (group 128 on the demo, before a job and after one,
an unsupported architecture, a mode MLX cannot run, MLX metadata with missing weights)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends import convert_job
from backends.preflight import errors

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlx_made(chain_data, shared_root: Path):
    """The demo's MLX 4-bit (group 64), made once (or reused from the browser test of the same
    session)."""
    from tests.helpers.chain import convert, data_root_at

    with data_root_at(shared_root):
        hf = chain_data["hf"]
        [m4] = convert("mlx.convert", hf.id)  # the declared defaults: affine, 4 bits, group 64
        yield {"hf": hf, "4": m4}


@pytest.fixture(scope="module")
def tiny_mlx(chain_data, shared_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """A tiny Llama (the demo's tokenizer) and its MLX 4-bit, benchmarked on the quick protocol with
    its baseline (the runner's whole protocol in seconds; the browser test charts the same ones),
    and its 8-bit and mixed_4_6."""
    from catalog import results
    from tests.helpers.chain import benchmark_unmeasured, convert, data_root_at, import_tiny_llama

    with data_root_at(shared_root):
        hf = import_tiny_llama(chain_data["hf"], shared_root, tmp_path_factory.mktemp("mlx") / "tiny")
        [m4] = convert("mlx.convert", hf.id)
        benchmark_unmeasured([m4])  # with its baseline
        [m8] = convert("mlx.convert", hf.id, bits="8")
        [mixed] = convert("mlx.convert", hf.id, mixed_recipe="mixed_4_6")
        yield {"hf": hf, "4": m4, "8": m8, "mixed": mixed,
               "results": {r.variant_id: r for r in results.latest_results(hf.source_id, "quick")}}


def test_mlx_4_and_8_bit_record_bits_per_weight_and_pass_their_gates(chain, mlx_made, tiny_mlx) -> None:
    from backends.mlx.runner import load
    from catalog.variants import variant_path

    # mlx-lm's own figure: both HF forms are F32, so scales and biases are 32-bit (4 + 64/64 = 5)
    for variant, parent, label, bpw, least in ((mlx_made["4"], chain["hf"], "4-bit g64", 5.007, 0.55),
                                               (tiny_mlx["8"], tiny_mlx["hf"], "8-bit g64", 9.0, 0.85)):
        assert variant.format == "mlx" and variant.precision == label and variant.parent_id == parent.id
        assert variant.metadata["bits_per_weight"] == pytest.approx(bpw, abs=0.01)
        assert variant.metadata["smoke"]["top1_agreement"] >= least
        assert variant.metadata["generated"].strip() and variant.metadata["device"] == "Device(cpu, 0)"
        config = json.loads((variant_path(variant) / "config.json").read_text())
        assert config["quantization"]["bits"] == int(label[0]) and config["quantization"]["group_size"] == 64
    weights = {k: (variant_path(tiny_mlx[k]) / "model.safetensors").stat().st_size for k in ("4", "8")}
    assert weights["4"] < 0.6 * weights["8"], weights  # 5 bits a weight against 9 (the tokenizer is the same)
    assert mlx_made["4"].toolkit_versions["mlx-lm"] == "0.31.3"
    runner = load(variant_path(mlx_made["4"]))
    try:
        assert runner.runtime == "MLX CPU" and runner.device()["device"] == "cpu"
        assert runner.generate("The capital of France is", 8).strip()
    finally:
        runner.close()


def test_quick_benchmark_gives_perplexity_and_records_the_cpu_device(tiny_mlx) -> None:
    result = tiny_mlx["results"][tiny_mlx["4"].id]
    baseline = tiny_mlx["results"][tiny_mlx["hf"].id]
    m = result.metrics
    print(f"MLX 4-bit g64 of the tiny Llama (quick): perplexity {m['perplexity']:.1f} (source "
          f"{m['reference_perplexity']:.1f}), agreement {m['top1_agreement']:.3f}, decode {m['decode_tps_p50']:.1f} "
          f"tok/s, prefill {m['prefill_tps_p50']:.1f} tok/s, TTFT {m['ttft_s']:.3f} s, load {m['load_s']:.2f} s, "
          f"peak RSS {m['peak_rss_mb']:.0f} MB")
    # the source's perplexity over the same windows of the same ids, measured by its own runner
    assert m["reference_perplexity"] == pytest.approx(baseline.metrics["perplexity"], rel=1e-6)
    assert np.isfinite(m["perplexity"]) and 0.8 < m["perplexity"] / m["reference_perplexity"] < 1.25
    assert 0 <= m["top1_agreement"] <= 1 and m["decode_tps_p50"] > 0 and m["prefill_tps_p50"] > 0
    assert m["ttft_s"] > 0 and m["load_s"] > 0 and m["peak_rss_mb"] > 0
    assert result.runtime == "MLX CPU" and result.fingerprint["runtime_device"]["device"] == "cpu"
    assert result.fingerprint["runtime_device"]["metal_available"] == "false"
    assert result.fingerprint_id == baseline.fingerprint_id  # same machine and protocol: charted together


def test_4_bit_8_bit_and_a_mixed_recipe_generate_and_score_the_eval_text(chain, mlx_made, tiny_mlx) -> None:
    """The demo's 4-bit, and the tiny Llama's 8-bit and mlx-lm's mixed_4_6 recipe (v_proj and
    down_proj of its last layer at 6 bits), each generate and score the first 128 tokens of the eval
    text, the ids every runtime is scored on, against their source on the same ids. A quick
    benchmark of the demo's would cost 4.5 min on this CPU backend, so the suite scores 128 tokens."""
    from backends.registry import main_file, open_runner
    from bench.metrics import causal_lm_quality
    from bench.protocol import EVAL_TEXT
    from catalog.variants import variant_path

    mixed = tiny_mlx["mixed"]
    assert mixed.precision == "mixed_4_6 g64" and mixed.metadata["mixed_recipe"] == "mixed_4_6"
    # more bits than the plain 4-bit, fewer than the 8-bit: the recipe was applied
    assert tiny_mlx["4"].metadata["bits_per_weight"] < mixed.metadata["bits_per_weight"] < 6.0
    config = json.loads((variant_path(mixed) / "config.json").read_text())
    six = [k for k, v in config["quantization"].items() if isinstance(v, dict) and v.get("bits") == 6]
    assert any(k.endswith("v_proj") for k in six) and any(k.endswith("down_proj") for k in six)

    for source, variant, most in ((mlx_made["hf"], mlx_made["4"], 1.6), (tiny_mlx["hf"], tiny_mlx["8"], 1.08),
                                  (tiny_mlx["hf"], mixed, 1.5)):
        reference = open_runner(source.format, main_file(source))
        try:
            ids = reference.tokenize(EVAL_TEXT.read_text())[:129]  # 128 tokens: a few percent of noise
            ref_logits = reference.logits(ids)
        finally:
            reference.close()
        assert variant.metadata["generated"].strip()
        runner = open_runner(variant.format, main_file(variant))
        try:
            quality = causal_lm_quality(ids, [(0, len(ids))], [runner.logits(ids)], [ref_logits])
        finally:
            runner.close()
        print(f"MLX {variant.precision} of {source.id}: perplexity {quality['perplexity']:.3f} over 128 tokens "
              f"(source {quality['reference_perplexity']:.3f}), agreement {quality['top1_agreement']:.3f}, "
              f"{variant.metadata['bits_per_weight']:.3f} bits per weight")
        assert quality["reference_perplexity"] * 0.97 < quality["perplexity"] < most * quality["reference_perplexity"]


def test_group_128_on_the_demo_is_refused_before_a_job(chain) -> None:
    _, problems = convert_job.plan("mlx.convert", chain["hf"].id, {"group_size": "128"})
    [sentence] = errors(problems)
    assert "576 does not divide into groups of 128" in sentence and "64 or 32" in sentence


def test_a_result_mlx_lm_left_in_float_is_never_published(chain) -> None:
    """Pre-flight bypassed (a job queued before the check existed): mlx-lm's 26.574-bit '4-bit'
    result is refused by the job itself and no variant appears."""
    from backends.convert_job import PlannedStep, Step, _submit_steps
    from backends.registry import get_conversion, toolkit_versions
    from catalog.identity import variant_id
    from catalog.variants import find_variant
    from worker.runner import run_to_completion

    hf = chain["hf"]
    conv = get_conversion("mlx.convert")
    opts = conv.normalize({"group_size": "128"})
    target = variant_id(hf.id, conv.backend, conv.name, opts, toolkit_versions(conv.backend))
    [sub] = _submit_steps([PlannedStep(Step(conv.key, opts, input_variant_id=hf.id), conv, hf.id, target, opts,
                                       {}, None)], hf.source_id, None)
    job = run_to_completion(sub.job.id)
    assert job.state == "failed"
    assert "reports 26.574 bits per weight" in job.error and "not published" in job.error, job.error
    found = find_variant(target)
    assert found is None or found.state != "available"


def test_an_imported_mlx_folder_dequantizes_back_to_hugging_face(chain, tiny_mlx, tmp_path: Path) -> None:
    """On the tiny Llama's 4-bit: the demo's 8-bit took 73 s, most of it MLX scoring the parent's
    side of the smoke test at about 0.18 s a token."""
    from backends.importers import ImportRequest, import_now
    from catalog import variants
    from catalog.variants import variant_path
    from tests.helpers.chain import convert

    folder = tmp_path / "tiny-mlx-4bit"
    shutil.copytree(variant_path(tiny_mlx["4"]), folder)
    (folder / "NOTES.txt").write_text("converted elsewhere\n")  # other bytes: a source of its own
    source = import_now(ImportRequest(kind="path", path=str(folder)))
    root = variants.get_variant(source.root_variant_id)
    assert root.format == "mlx" and root.precision == "4-bit g64" and source.task == "text-generation"
    [hf] = convert("mlx.dequantize", root.id)
    assert hf.format == "hf" and hf.precision == "F32" and hf.metadata["smoke"]["top1_agreement"] >= 0.9
    config = json.loads((variant_path(hf) / "config.json").read_text())
    assert "quantization" not in config and "quantization_config" not in config
    _, problems = convert_job.plan("mlx.dequantize", hf.id, {})  # an HF folder is no input of it
    assert errors(problems)


def test_exported_mlx_variant_runs_with_its_run_md_snippet(chain, mlx_made, tmp_path: Path) -> None:
    from backends.export import export_variant

    folder = export_variant(mlx_made["4"].id, tmp_path)
    snippet = (folder / "RUN.md").read_text().split("```python\n")[1].split("```")[0]
    assert "from mlx_lm import load, generate" in snippet
    out = subprocess.run([sys.executable, "-c", snippet], cwd=folder, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(out.stdout.strip()) > 10, out.stdout


# ------------------------------------------------------------------------------ bad input, tiny folders


def test_mlx_refusals_in_one_sentence(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.importers import ImportRequest, import_now
    from backends.mlx import kernels
    from catalog.errors import InvalidInputError
    from tests.helpers.models import tiny_hf_folder

    tiny = tiny_hf_folder(tmp_path / "tiny")
    llama = import_now(ImportRequest(kind="path", path=str(tiny))).root_variant_id

    # MLX's own reason for a combination it does not run (found by running it)
    _, problems = convert_job.plan("mlx.convert", llama, {"mode": "mxfp4"})
    assert "mxfp4 quantization requires group size 32 but got 64" in errors(problems)[0]
    # a mode with no kernel on this device (failure injected into the probe's answer)
    real = kernels.probe(kernels.mlx_version())
    monkeypatch.setattr(kernels, "probe", lambda version: dict(real, **{"nvfp4/4/16": "no CPU kernel for nvfp4"}))
    _, problems = convert_job.plan("mlx.convert", llama, {"mode": "nvfp4", "group_size": "16"})
    assert "cannot quantize nvfp4 with 4 bits in groups of 16: no CPU kernel for nvfp4" in errors(problems)[0]

    other = tmp_path / "other"
    shutil.copytree(tiny, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps(dict(config, model_type="made-up-arch")))
    made_up = import_now(ImportRequest(kind="path", path=str(other))).root_variant_id
    _, problems = convert_job.plan("mlx.convert", made_up, {})
    assert "no implementation of the architecture made-up-arch" in errors(problems)[0]

    # MLX quantization metadata whose weights are missing: refused before any job
    broken = tmp_path / "broken-mlx"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps(dict(config, quantization={"group_size": 64, "bits": 4})))
    (broken / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}))
    with pytest.raises(InvalidInputError, match="weights model-00001-of-00002.safetensors are missing"):
        import_now(ImportRequest(kind="path", path=str(broken)))
    (broken / "model.safetensors.index.json").unlink()
    with pytest.raises(InvalidInputError, match="MLX quantization metadata but no .safetensors weights"):
        import_now(ImportRequest(kind="path", path=str(broken)))
