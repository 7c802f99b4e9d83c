"""The worker's one door to the toolkits: the facts its crash reports and disk estimates need
(what each toolkit calls its native libraries and steps, each conversion's disk factor), read from
the registry when a job ends badly and handed to worker/crash.py and worker/advice.py, which
import no toolkit knowledge themselves."""

from __future__ import annotations

from functools import cache

from worker.advice import ToolkitFacts


@cache
def facts() -> ToolkitFacts:
    # Imported only now: the supervisor loads the toolkits' declarations (data, no toolkit
    # package) only when it has a crash to describe.
    from backends.registry import conversions, crash_vocabulary

    libraries, steps = crash_vocabulary()
    return ToolkitFacts(libraries, steps, {c.key: c.disk_factor for c in conversions()})
