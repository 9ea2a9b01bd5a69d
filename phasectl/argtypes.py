"""Argument types shared by the commands (stdlib only: ``phasectl.dlq`` imports it at start-up)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def bounded_int(what: str, high: int, low: int = 1) -> Callable[[str], int]:
    """An argparse type: a whole number in ``low..high``; argparse prefixes the option's name:
    ``argument --days: invalid day count 'a week'``, ``argument --days: 0 is not in 1..120``."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} {value!r}") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"{n} is not in {low}..{high}")
        return n

    return parse
