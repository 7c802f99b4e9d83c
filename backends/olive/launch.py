"""Olive's command line with its telemetry never started: `python -m backends.olive.launch <olive args>`.

Olive 0.13.0 builds its Telemetry singleton in `olive.cli.launcher.main` and logs an OliveHeartbeat
(with a device id it stores under the user's cache folder) before it reads OLIVE_DISABLE_TELEMETRY
or --disable_telemetry; only CI variables skip it. Here the singleton exists before Olive makes
one, already initialised and without a logger, so every `log` returns before it records anything.
"""

from __future__ import annotations

import os
import sys


def silence_telemetry() -> None:
    from olive.telemetry import telemetry

    quiet = object.__new__(telemetry.Telemetry)
    quiet._initialized = True
    quiet._logger = None          # Telemetry.log, disable_telemetry and shutdown return at once
    quiet._cache_handler = None
    telemetry.Telemetry._instance = quiet


def main(argv: list[str]) -> None:
    os.environ["OLIVE_DISABLE_TELEMETRY"] = "1"
    silence_telemetry()
    from olive.cli.launcher import main as olive_main

    olive_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
