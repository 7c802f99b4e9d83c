"""The CLI's convert command, its flags generated from the registry's declarations."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_convert_parser(sub: Any, wait: Callable[[argparse.Namespace, str], int]) -> None:
    """Placeholder until the first backend lands."""
