"""Reading ONNX models for import: single file, external data, GenAI folder, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from backends.onnxrt.import_check import check_onnx, describe_onnx
from catalog.errors import InvalidInputError


def _model() -> onnx.ModelProto:
    """y = x @ W + b with a dynamic batch axis: small, but with real weights to move out."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "W")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="test")


def _external(folder: Path, location: str = "weights.data") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(_model(), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return path


def _relocate(path: Path, location: str) -> None:
    """Point every external tensor of the saved model at another location (as a crafted file would)."""
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(model.SerializeToString())


def _one_sentence(message: str) -> None:
    assert "\n" not in message and message.endswith(".") and len(message) < 300


def test_single_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save_model(_model(), str(path))
    facts = check_onnx(path)
    assert facts["format"] == "onnx" and facts["opset"] == {"ai.onnx": 17} and facts["external_data"] == []
    assert facts["inputs"] == [{"name": "x", "type": "float", "shape": ["batch", 8]}]
    assert facts["outputs"][0]["shape"] == ["batch", 4] and facts["parameters"] == 36
    assert facts["size_bytes"] == path.stat().st_size


def test_external_data_is_read_and_counted(tmp_path: Path) -> None:
    path = _external(tmp_path / "m")
    facts = check_onnx(path)
    assert facts["external_data"] == ["weights.data"]
    assert facts["size_bytes"] == path.stat().st_size + (tmp_path / "m" / "weights.data").stat().st_size
    assert describe_onnx(tmp_path / "m")["model_file"] == "model.onnx"  # the folder works too


def test_missing_external_data(tmp_path: Path) -> None:
    path = _external(tmp_path / "m")
    (tmp_path / "m" / "weights.data").unlink()
    with pytest.raises(InvalidInputError, match="weights.data .* is missing") as exc:
        check_onnx(path)
    _one_sentence(str(exc.value))


@pytest.mark.parametrize("location", ["../outside.data", "sub/../../outside.data", "/etc/passwd",
                                      "C:\\weights.data"])
def test_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    path = _external(tmp_path / "m")
    (tmp_path / "outside.data").write_bytes((tmp_path / "m" / "weights.data").read_bytes())
    _relocate(path, location)
    with pytest.raises(InvalidInputError, match="absolute|outside the model's folder") as exc:
        describe_onnx(path)
    _one_sentence(str(exc.value))


def test_external_data_link_leading_out_is_refused(tmp_path: Path) -> None:
    path = _external(tmp_path / "m")
    real = tmp_path / "elsewhere.data"
    (tmp_path / "m" / "weights.data").rename(real)
    (tmp_path / "m" / "weights.data").symlink_to(real)
    with pytest.raises(InvalidInputError, match="outside the model's folder"):
        check_onnx(path)


def test_short_external_data(tmp_path: Path) -> None:
    path = _external(tmp_path / "m")
    data = tmp_path / "m" / "weights.data"
    data.write_bytes(data.read_bytes()[:16])
    with pytest.raises(InvalidInputError, match="shorter than"):
        check_onnx(path)


@pytest.mark.parametrize("keep", [0, 10, 60])
def test_truncated_onnx(tmp_path: Path, keep: int) -> None:
    whole = tmp_path / "whole.onnx"
    onnx.save_model(_model(), str(whole))
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(whole.read_bytes()[:keep])
    with pytest.raises(InvalidInputError, match="not a complete ONNX model") as exc:
        check_onnx(cut)
    _one_sentence(str(exc.value))


def test_checker_failure_is_one_sentence(tmp_path: Path) -> None:
    model = _model()
    model.graph.node[1].input[1] = "nowhere"  # an input nothing produces
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(InvalidInputError, match="fails the ONNX checker") as exc:
        check_onnx(path)
    _one_sentence(str(exc.value))


def test_genai_folder(tmp_path: Path) -> None:
    folder = tmp_path / "genai"
    _external(folder)
    config = {"model": {"type": "llama", "context_length": 64, "vocab_size": 4,
                        "decoder": {"filename": "model.onnx", "num_hidden_layers": 1}}}
    (folder / "genai_config.json").write_text(json.dumps(config))
    facts = check_onnx(folder)
    assert facts["format"] == "onnx-genai" and facts["model_file"] == "model.onnx"
    assert facts["genai"] == {"type": "llama", "context_length": 64, "vocab_size": 4, "num_hidden_layers": 1}

    config["model"]["decoder"]["filename"] = "../model.onnx"
    (folder / "genai_config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInputError, match="outside the model's folder"):
        describe_onnx(folder)
    config["model"]["decoder"]["filename"] = "decoder.onnx"
    (folder / "genai_config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInputError, match="decoder.onnx .* is missing"):
        describe_onnx(folder)


def test_not_an_onnx_file(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"\0" * 10)
    with pytest.raises(InvalidInputError, match="not an .onnx file"):
        describe_onnx(tmp_path / "model.bin")
    (tmp_path / "a.onnx").write_bytes(b"")
    (tmp_path / "b.onnx").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="2 .onnx files"):
        describe_onnx(tmp_path)


def test_onnx_file_import_through_the_catalog(root: Path, tmp_path: Path) -> None:
    """The importer takes a .onnx file (and a folder with external data) and records its facts."""
    from backends.importers import ImportRequest, import_now, submit_import
    from catalog import variants

    path = tmp_path / "tiny.onnx"
    onnx.save(_model(), path)
    src = import_now(ImportRequest(kind="path", path=str(path), name="tiny onnx"))
    root_variant = variants.get_variant(src.root_variant_id)
    assert root_variant.format == "onnx" and root_variant.metadata["inputs"]
    folder = _external(tmp_path / "ext")
    assert import_now(ImportRequest(kind="path", path=str(folder))).id != src.id
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(path.read_bytes()[:20])
    with pytest.raises(InvalidInputError):
        submit_import(ImportRequest(kind="path", path=str(cut)))
