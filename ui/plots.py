"""Plotly figures on the pages, drawn as the figure (and its exports) style them."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st


def plotly_chart(fig: go.Figure, container: Any = None, **kwargs: Any) -> Any:
    """st.plotly_chart at the page's width with the figure's own template. Streamlit's theme
    restyled each figure in the browser: about 250 ms of the Benchmarks page's 800 ms at 10,000
    results a source-list scale (tests/bench/perf.py), and the exports never had that style."""
    return (container or st).plotly_chart(fig, width="stretch", theme=None, **kwargs)
