"""The lineage graph of a source's variants, as Graphviz DOT (rendered by the browser)."""

from __future__ import annotations

import html

from catalog.records import Variant
from ui import fmt

STATE_STYLE = {"available": 'style="rounded,filled", fillcolor="#e8f4ea"',
               "files_missing": 'style="rounded,filled,dashed", fillcolor="#fff4d6"',
               "deleted": 'style="rounded,dashed", fontcolor="#999999", color="#bbbbbb"'}


def lineage_dot(variants: list[Variant], highlight: str | None = None) -> str:
    lines = ["digraph lineage {", "rankdir=LR;", 'node [shape=box, fontname="sans-serif", fontsize=11];']
    ids = {v.id for v in variants}
    for v in variants:
        label = f"{v.label}\\n{fmt.size(v.size_bytes)}" + ("\\n(deleted)" if v.state == "deleted" else "")
        extra = ', penwidth=2.5, color="#1f77b4"' if v.id == highlight else ""
        lines.append(f'"{v.id}" [label="{html.escape(label)}", {STATE_STYLE.get(v.state, "")}{extra}];')
    for v in variants:
        if v.parent_id and v.parent_id in ids:
            lines.append(f'"{v.parent_id}" -> "{v.id}" [label="{html.escape(v.conversion)}", fontsize=9];')
    lines.append("}")
    return "\n".join(lines)
