"""Disk space of the data root, and sentences about it whose figures are true as printed."""

from __future__ import annotations

import errno
import math
import shutil
from pathlib import Path

from catalog import config

GB = 2**30
MAX_DECIMALS = 6


def free_bytes(path: Path | None = None) -> int:
    return shutil.disk_usage(path or config.data_root()).free


def _decimals_for(values: list[float]) -> int:
    """Enough decimals to show two significant digits of the smallest non-zero value."""
    small = min((v for v in values if v > 0), default=1.0)
    return max(1, min(MAX_DECIMALS, 1 - math.floor(math.log10(small))))


def gb_pair(need: int, have: int) -> tuple[str, str]:
    """`need` and `have` in GB, printed so that a shortfall shows: need is rounded up and
    have rounded down, with more decimals until the two differ ("0.1 GB needed, 0.1 GB free"
    was true of neither figure)."""
    decimals = _decimals_for([need / GB, have / GB])
    while True:
        scale = 10**decimals
        shown_need = math.ceil(need / GB * scale) / scale
        shown_have = math.floor(have / GB * scale) / scale
        if need <= have or shown_need > shown_have or decimals >= MAX_DECIMALS:
            return f"{shown_need:.{decimals}f}", f"{shown_have:.{decimals}f}"
        decimals += 1


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
        shown_need, shown_have = gb_pair(need, have)
        return (f"The disk holding the data root is full: {shown_need} GB needed, {shown_have} GB free; "
                "free space on the Storage page (or move the data root to a bigger disk), then retry.")
    _, shown_have = gb_pair(need, have)
    return (f"The disk holding the data root filled up while the job wrote its output; it has {shown_have} GB "
            "free now that the partial output is removed, so another writer may have used the space. "
            "Free space on the Storage page, then retry.")
