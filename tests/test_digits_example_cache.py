"""The digits CNN example is trained once per code version and copied from the user's cache after."""

from __future__ import annotations

from pathlib import Path

import pytest

from workloads import digits_cnn


def test_a_second_import_copies_the_same_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_CATALOG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(digits_cnn, "EPOCHS", 1)  # the mechanics, not the model: one epoch
    first = digits_cnn.trained(tmp_path / "first")
    [kept] = (tmp_path / "cache" / "examples").iterdir()
    assert kept.name.startswith("digits-cnn-") and not kept.name.endswith(".partial")

    def no_training(out: Path) -> dict[str, float]:  # failure injection: a second training would show
        raise AssertionError("trained again")

    monkeypatch.setattr(digits_cnn, "train", no_training)
    second = digits_cnn.trained(tmp_path / "second")
    assert second["test_accuracy"] == pytest.approx(first["test_accuracy"], abs=5e-5)  # config.json keeps 4 places
    for name in ("config.json", "model.safetensors", "README.md"):
        assert (tmp_path / "second" / name).read_bytes() == (tmp_path / "first" / name).read_bytes()


def test_an_unwritable_cache_only_costs_the_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    monkeypatch.setenv("MODEL_CATALOG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(digits_cnn, "EPOCHS", 1)
    scores = digits_cnn.trained(tmp_path / "out")
    assert 0 < scores["test_accuracy"] <= 1 and (tmp_path / "out" / "model.safetensors").is_file()
