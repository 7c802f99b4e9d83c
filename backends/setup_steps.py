"""Every declared toolkit's post-install steps: `python -m backends.setup_steps` (scripts/setup.sh
runs it after the requirements). Each step checks first whether it is done, so a warm setup runs
nothing and the whole call takes well under a second."""

from __future__ import annotations

import logging

from backends.registry import toolkits

log = logging.getLogger("setup")


def run_setup_steps() -> list[str]:
    """The titles of the steps that ran (those not already done)."""
    ran = []
    for toolkit in toolkits():
        for step in toolkit.setup_steps:
            if step.done():
                continue
            log.info("%s: %s", toolkit.title, step.title)
            step.run()
            ran.append(step.title)
    return ran


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="\033[1m[setup]\033[0m %(message)s")
    run_setup_steps()
