"""The Benchmarks page's "try it" box for encoders and classifiers: one input, every compared
variant, answered by a runner process that the service starts (role check and audit row)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from catalog.errors import CatalogError
from catalog.records import Variant
from service import actions
from ui.session import current_actor, gate


def _digit_image(index: int) -> np.ndarray:
    from workloads.datasets import digits

    pixels = digits().test_images[index, 0]
    return np.kron(pixels, np.ones((16, 16)))  # 8x8 -> 128x128, blocky on purpose


def try_encoder_classifier_input(task: str | None, compared: list[Variant], baseline: Variant | None) -> None:
    if not compared or baseline is None:
        return
    st.subheader("Try it")
    image: int | None = None
    sentences: list[str] | None = None
    if task == "image-classification":
        from workloads.datasets import digits

        image = st.slider("Held-out image", 0, len(digits().test_labels) - 1, 0, key="bm_try_image")
        st.image(_digit_image(image), width=128, clamp=True, caption=f"label {int(digits().test_labels[image])}")
    else:
        a = st.text_input("First sentence", "Edge devices run small models on the CPU.", key="bm_try_a")
        b = st.text_input("Second sentence", "Phones run compact neural networks locally.", key="bm_try_b")
        sentences = [a, b]
    if st.button("Run on the compared variants", key="bm_try_run", **gate(actions.TRY_PERMISSION)):
        with st.spinner("Loading the variants in a runner process…"):
            try:
                out = actions.try_encoder_classifier(current_actor(), task, [v.id for v in compared], baseline.id,
                                                     image=image, sentences=sentences)
            except CatalogError as exc:
                out = {"error": str(exc)}
        if "error" in out:
            st.error(out["error"])
        else:
            st.dataframe(out["rows"], hide_index=True, width="stretch")
