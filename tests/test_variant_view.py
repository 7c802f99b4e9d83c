"""The Model page's charts of what a conversion learnt (ui/variant_view.py), as figures."""

from __future__ import annotations

from ui.variant_view import FRAME_PX, ROW_PX, effective_types_figure


def test_every_effective_type_gets_a_row_and_a_readable_share() -> None:
    """Issue 25: a Q8_0 (99.97 % Q8_0, 0.03 % F32) showed only an "F32" row against an axis to
    100 %: the figure was too short for Plotly's margins, and the shares printed as 100 % and 0 %."""
    fig = effective_types_figure({"Q8_0": {"share": 0.9997, "tensors": 150}, "F32": {"share": 0.0003, "tensors": 61}},
                                 "Q8_0")
    [bars] = fig.data
    assert list(bars.y) == ["Q8_0", "F32"] and list(bars.x) == [0.9997, 0.0003]
    margin = fig.layout.margin
    assert fig.layout.height == FRAME_PX + 2 * ROW_PX
    assert fig.layout.height - margin.t - margin.b >= 2 * ROW_PX  # a plot area with room for both rows
    assert bars.texttemplate == "%{x:.2%}"  # 99.97% and 0.03%, not 100% and 0%
