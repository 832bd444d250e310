"""What every benchmark here reports with: progress on stderr, and percentiles of its timings."""

from __future__ import annotations

import math
import sys
import time

_started = time.monotonic()


def say(message: str) -> None:
    """Progress, on stderr (stdout carries only the JSON line), with the seconds since the bench started."""
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]
