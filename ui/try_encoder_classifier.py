"""The Benchmarks page's "try it" box for encoders and classifiers: one input, every compared
variant, answered by a runner process."""

from __future__ import annotations

import numpy as np
import streamlit as st

from backends.registry import main_file
from catalog.records import Variant


def _digit_image(index: int) -> np.ndarray:
    from workloads.datasets import digits

    pixels = digits().test_images[index, 0]
    return np.kron(pixels, np.ones((16, 16)))  # 8x8 -> 128x128, blocky on purpose


def try_encoder_classifier_input(task: str | None, compared: list[Variant], baseline: Variant | None) -> None:
    from bench.try_encoder_classifier import run_in_process

    if not compared or baseline is None:
        return
    st.subheader("Try it")
    folder = main_file(baseline)
    spec: dict = {"task": task, "tokenizer": str(folder if folder.is_dir() else folder.parent),
                  "variants": [[v.label, v.format, str(main_file(v))] for v in compared]}
    if task == "image-classification":
        from workloads.datasets import digits

        index = st.slider("Held-out image", 0, len(digits().test_labels) - 1, 0, key="bm_try_image")
        st.image(_digit_image(index), width=128, clamp=True, caption=f"label {int(digits().test_labels[index])}")
        spec["image"] = index
    else:
        a = st.text_input("First sentence", "Edge devices run small models on the CPU.", key="bm_try_a")
        b = st.text_input("Second sentence", "Phones run compact neural networks locally.", key="bm_try_b")
        spec["sentences"] = [a, b]
    if st.button("Run on the compared variants", key="bm_try_run"):
        with st.spinner("Loading the variants in a runner process…"):
            out = run_in_process(spec)
        if "error" in out:
            st.error(out["error"])
        else:
            st.dataframe(out["rows"], hide_index=True, width="stretch")
