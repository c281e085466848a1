"""What a scenario reports: figures (for the JSON), rows (for the table), and how it ended.

A scenario writes its figures as it measures them, so a scenario that times out or fails
still leaves what it had measured."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any


class ScenarioTimeoutError(Exception):
    """The scenario ran past its hard limit."""


@dataclass
class Budget:
    """A scenario's time: waits end at `deadline`, and what was measured by then counts."""

    seconds: float
    start: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        return self.start + self.seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0


@dataclass
class Row:
    metric: str
    value: str
    target: str = ""


@dataclass
class Result:
    name: str
    status: str = "running"
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def row(self, metric: str, value: str, target: str = "") -> None:
        self.rows.append(Row(metric, value, target))

    def partial(self, why: str) -> None:
        self.status = "partial"
        self.notes.append(why)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "figures": self.figures,
            "rows": [vars(r) for r in self.rows],
            "notes": self.notes,
        }


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of `values` (seconds), rounded to milliseconds."""
    if not values:
        return {}
    if len(values) == 1:
        only = round(values[0], 3)
        return {"p50": only, "p95": only, "p99": only, "max": only}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 3),
        "p95": round(cuts[94], 3),
        "p99": round(cuts[98], 3),
        "max": round(max(values), 3),
    }


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0
