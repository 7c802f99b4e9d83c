"""Checks that run before any job exists, each answering in one sentence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psutil

from backends.registry import Conversion
from catalog import diskspace
from catalog.errors import InvalidInputError
from catalog.records import Variant


@dataclass(frozen=True)
class Problem:
    level: str   # "error" blocks the submit; "warning" is shown and allowed
    message: str


def generic_checks(conv: Conversion, variant: Variant, free_disk: int | None = None,
                   available_memory: int | None = None) -> list[Problem]:
    problems: list[Problem] = []
    if variant.state != "available":
        problems.append(Problem("error", f"The input variant is {variant.state.replace('_', ' ')}; "
                                "pick an available one."))
    if variant.format not in conv.input_formats:
        problems.append(Problem("error", f"{conv.title} takes {', '.join(conv.input_formats)} input, "
                                f"not {variant.format}."))
    missing = conv.missing_packages()
    if missing:
        problems.append(Problem("error", f"The toolkit package {missing[0]} is not installed; run the "
                                "README's setup command, then try again."))
    free = free_disk if free_disk is not None else diskspace.free_bytes()
    need = int(variant.size_bytes * conv.disk_factor)
    if need > free:
        shown_need, shown_free = diskspace.size_pair(need, free)
        problems.append(Problem("error", f"This needs about {shown_need} of disk but the data "
                                f"root has {shown_free} free; free space on the Storage page."))
    avail = available_memory if available_memory is not None else psutil.virtual_memory().available
    need_mem = int(variant.size_bytes * conv.memory_factor)
    if need_mem > avail:
        shown_need, shown_avail = diskspace.size_pair(need_mem, avail)
        problems.append(Problem("error", f"This is estimated to need {shown_need} of memory "
                                f"but {shown_avail} is available; wait for other jobs or use a "
                                "bigger machine."))
    return problems


def run_preflight(conv: Conversion, variant: Variant, raw_options: dict[str, Any],
                  **limits: Any) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Normalized options (None if they are invalid) and every problem found."""
    try:
        options = conv.normalize(raw_options)
    except InvalidInputError as exc:
        return None, [Problem("error", str(exc))]
    problems = generic_checks(conv, variant, **limits)
    if not any(p.message.startswith("The toolkit package") for p in problems):
        validate = conv.validate
        if validate is not None:
            problems += validate(variant, options)
    return options, problems


def errors(problems: list[Problem]) -> list[str]:
    return [p.message for p in problems if p.level == "error"]
