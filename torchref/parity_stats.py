"""What a parity run records: one ``Comparison`` per compared quantity, gathered into
``DirectionStats`` per direction and ``ParityStats`` per component, device and dtype
(re-exported by ``torchref.parity``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

DIRECTIONS = ("forward", "backward")


@dataclass
class Comparison:
    """One compared quantity of one example."""

    direction: str
    quantity: str           # "out", "dx", "dW", ... or "error" when a side raised
    reference: str          # which torch side: "torchref" or "native"
    max_abs: float
    max_rel: float
    ratio: float            # max |a - e| / (atol + rtol |e|): above 1 fails
    passed: bool
    message: str = ""


@dataclass
class DirectionStats:
    """Everything seen in one direction over the examples of one run."""

    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ratio: float = 0.0
    compared: int = 0
    passed: bool = True
    failure: str = ""
    skipped: str = ""

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "skip"
        return "PASS" if self.passed and self.compared else ("FAIL" if not self.passed else "none")


@dataclass
class ParityStats:
    """The result of ``run_parity`` for one component, device and dtype."""

    component: str
    device: str
    dtype: str
    examples: int = 0
    directions: dict[str, DirectionStats] = field(
        default_factory=lambda: {d: DirectionStats() for d in DIRECTIONS})
    failure: str = ""       # the shrunk failing example and its message

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.directions.values())

    def record(self, comparisons: Sequence[Comparison]) -> None:
        """Add one example's comparisons; a direction's ``failure`` is the first failing
        comparison of the latest failing example (hypothesis replays the shrunk one last)."""
        self.examples += 1
        failed: set[str] = set()
        for c in comparisons:
            s = self.directions[c.direction]
            s.compared += 1
            s.max_abs, s.max_rel = max(s.max_abs, c.max_abs), max(s.max_rel, c.max_rel)
            s.max_ratio = max(s.max_ratio, c.ratio)
            if not c.passed and c.direction not in failed:
                failed.add(c.direction)
                s.passed, s.failure = False, c.message
