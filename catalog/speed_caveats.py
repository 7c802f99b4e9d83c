"""What a speed figure is worth: the flags the Benchmarks page shows (measured on a busy machine,
repetitions that varied widely) and the repetitions behind it, carried with every speed figure
and speed-based verdict of a comparison (page, HTML, CSV, JSON), since the speed gate and "best
that passes" rest on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog.results import BUSY_FLAG, UNSTEADY_FLAG

# Where a result records how much its speed varied between repetitions (coefficient of variation).
SPREAD_METRICS = ("decode_tps_cv", "latency_ms_cv", "throughput_cv")


@dataclass(frozen=True)
class SpeedCaveat:
    busy: bool                 # other work loaded the machine while it was measured
    unsteady: bool             # its repetitions varied more than the protocol allows
    spread: float | None       # that variation (CV), where recorded
    repetitions: int | None    # the runs the figure stands on, where recorded

    @property
    def flagged(self) -> bool:
        return self.busy or self.unsteady

    def words(self) -> str:
        """e.g. "busy machine; varied 104% between 3 repetitions" ("" for a clean figure)."""
        parts = ["busy machine"] if self.busy else []
        if self.unsteady:
            between = f"between {self.repetitions} repetitions" if self.repetitions else "between repetitions"
            parts.append(f"varied {100 * self.spread:.0f}% {between}" if self.spread is not None
                         else f"varied widely {between}")
        elif parts and self.repetitions:
            parts.append(f"{self.repetitions} repetitions")
        return "; ".join(parts)


def caveat_of(result: Any) -> SpeedCaveat:
    flags, metrics = result.flags or [], result.metrics or {}
    spread = next((float(metrics[k]) for k in SPREAD_METRICS if isinstance(metrics.get(k), int | float)), None)
    reps = metrics.get("repetitions_kept")
    return SpeedCaveat(busy=BUSY_FLAG in flags, unsteady=UNSTEADY_FLAG in flags, spread=spread,
                       repetitions=int(reps) if isinstance(reps, int | float) else None)


def caveats_sentence(labelled: list[tuple[str, SpeedCaveat]]) -> str:
    """One sentence over the flagged figures ("" when none is): which, and why, and what to do."""
    flagged = [f"{label} ({c.words()})" for label, c in labelled if c.flagged]
    if not flagged:
        return ""
    return (f"Speed to treat with care: {', '.join(flagged)}. The speed-up, its gate and the score rest on these "
            "figures; rerun them on a quiet machine before relying on them (quality is unaffected).")


def verdict_caveat(labelled: list[tuple[str, SpeedCaveat]]) -> str:
    """The clause a verdict adds when the speed it rests on is flagged ("" otherwise)."""
    flagged = [label for label, c in labelled if c.flagged]
    if not flagged:
        return ""
    return f" This verdict rests on flagged speed ({', '.join(flagged)}): rerun before relying on it."
