"""Formatting numbers and dates for people."""

from __future__ import annotations

import re
from datetime import UTC, datetime


def size(n: int | float | None) -> str:
    if n is None:
        return "–"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def count(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def when(ts: datetime | None, now: datetime | None = None) -> str:
    """How long ago ts was ("5 min ago"), or how far ahead it is ("in 11 h": a session's end);
    the date beyond a day either way. A naive ts is UTC, as the catalog stores it."""
    if ts is None:
        return "–"
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    secs = ((now or datetime.now(UTC)) - ts).total_seconds()
    ahead, secs = secs < 0, abs(secs)  # ahead: an expiry, never "just now", which reads as past
    if secs >= 86400:
        return ts.strftime("%Y-%m-%d")
    if secs < 60:
        return "in under a minute" if ahead else "just now"
    amount = f"{secs / 60:.0f} min" if secs < 3600 else f"{secs / 3600:.0f} h"
    return f"in {amount}" if ahead else f"{amount} ago"


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "–"
    end = end or datetime.now(UTC).replace(tzinfo=None)
    secs = (end.replace(tzinfo=None) - start.replace(tzinfo=None)).total_seconds()
    return f"{secs:.1f} s" if secs < 120 else f"{secs / 60:.1f} min"


# Characters that form a link, emphasis, code, HTML, math or a Streamlit :directive: anywhere...
_MARKDOWN_SPECIAL = set("\\`*_{}[]()!|<>~$:")
# ...and those that do only at the start of a line (a heading, a list, a quote, "1." a numbered list).
_LINE_START = re.compile(r"^([#+\-=>]|\d+(?=[.)]))", re.MULTILINE)


def escape_md(text: str) -> str:
    """User text (a name, a note) shown inside markdown as typed: no link, emphasis or HTML forms.
    A hyphen or a dot inside a name ("SmolLM2-135M-v1.5") stays as it is."""
    escaped = "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in text)
    return _LINE_START.sub(lambda m: m.group(0) + "\\" if m.group(0)[0].isdigit() else "\\" + m.group(0), escaped)
