"""The worker's one door to the toolkits: the facts its crash reports and disk estimates need
(what each toolkit calls its native libraries and steps, each conversion's disk factor), read from
the registry when a job ends badly and handed to worker/crash.py and worker/advice.py, which
import no toolkit knowledge themselves."""

from __future__ import annotations

from functools import cache

from catalog.records import Job
from worker.advice import ToolkitFacts


@cache
def facts() -> ToolkitFacts:
    # Imported only now: the supervisor loads the toolkits' declarations (data, no toolkit
    # package) only when it has a crash to describe.
    from backends.registry import conversions, crash_vocabulary

    libraries, steps = crash_vocabulary()
    return ToolkitFacts(libraries, steps, {c.key: c.disk_factor for c in conversions()})


def execution_targets(job: Job) -> tuple[tuple[str, ...], bool]:
    """Where a job may run, as its toolkit names the targets ("cpu", "apple-metal", ...), and
    whether the CPU will do when no worker has them (worker/placement.py maps them to resources)."""
    from backends.registry import get_conversion, get_format

    if job.kind == "benchmark":
        from catalog.variants import get_variant

        return tuple(get_format(get_variant(job.recipe["variant_id"]).format).runs_on), False
    if job.kind == "convert":
        return (get_conversion(job.recipe["conversion"]).runs_on,), True
    return ("cpu",), True  # an import reads and hashes files: any worker with the project
