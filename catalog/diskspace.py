"""Disk space of the data root, and sentences about it whose figures are true as printed."""

from __future__ import annotations

import errno
import math
import shutil
from pathlib import Path

from catalog import config

GB = 2**30
MAX_DECIMALS = 6
# Figures are shown in the largest unit that the bigger of the two reaches ("217 KB needed, 38 KB
# free", never "0.000217 GB needed, 0.000038 GB free").
UNITS = ((GB, "GB"), (2**20, "MB"), (2**10, "KB"))


def free_bytes(path: Path | None = None) -> int:
    return shutil.disk_usage(path or config.data_root()).free


def _decimals_for(values: list[float], least: int = 1) -> int:
    """Enough decimals to show two significant digits of the smallest non-zero value."""
    small = min((v for v in values if v > 0), default=1.0)
    return max(least, min(MAX_DECIMALS, 1 - math.floor(math.log10(small))))


def _pair(need: int, have: int, unit: int, least: int) -> tuple[str, str]:
    decimals = 0 if unit == 1 else _decimals_for([need / unit, have / unit], least)
    while True:
        scale = 10**decimals
        shown_need = math.ceil(need / unit * scale) / scale
        shown_have = math.floor(have / unit * scale) / scale
        if need <= have or shown_need > shown_have or decimals >= MAX_DECIMALS:
            return f"{shown_need:.{decimals}f}", f"{shown_have:.{decimals}f}"
        decimals += 1


def gb_pair(need: int, have: int) -> tuple[str, str]:
    """`need` and `have` in GB, printed so that a shortfall shows: need is rounded up and
    have rounded down, with more decimals until the two differ ("0.1 GB needed, 0.1 GB free"
    was true of neither figure)."""
    return _pair(need, have, GB, 1)


def _unit(value: int) -> tuple[int, str]:
    return next(((size, name) for size, name in UNITS if value >= size), (1, "bytes"))


def size_pair(need: int, have: int) -> tuple[str, str]:
    """`need` and `have` with their units, each in the largest unit (GB, MB, KB) it reaches and
    rounded as gb_pair rounds (need up, have down; in one unit, decimals until a shortfall shows):
    "12.3 GB" and "3.1 GB", "217 KB" and "38 KB", "5 GB" and "980 KB"."""
    (unit, name), (have_unit, have_name) = _unit(need), _unit(have)
    if unit == have_unit:
        shown_need, shown_have = _pair(need, have, unit, 0)
        return f"{shown_need} {name}", f"{shown_have} {name}"
    return f"{_pair(need, need, unit, 0)[0]} {name}", f"{_pair(have, have, have_unit, 0)[1]} {have_name}"


def size_text(value: int) -> str:
    """One figure in its unit, rounded down ("it has 4.9 GB free")."""
    return size_pair(value, value)[1]


def is_disk_full(exc: BaseException) -> bool:
    """The error, or one it was raised from, says the disk is full (errno, DuckDB or a tool's text)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = f"{seen} {getattr(seen, 'log_tail', '')}".lower()
        if "no space left on device" in text or "disk quota exceeded" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full_sentence(need: int, have: int) -> str:
    """What a job that ran out of disk tells the user, after its partial output was freed."""
    if need > have:
        shown_need, shown_have = size_pair(need, have)
        return (f"The disk holding the data root is full: {shown_need} needed, {shown_have} free; "
                "free space on the Storage page (or move the data root to a bigger disk), then retry.")
    return (f"The disk holding the data root filled up while the job wrote its output; it has {size_text(have)} "
            "free now that the partial output is removed, so another writer may have used the space. "
            "Free space on the Storage page, then retry.")
