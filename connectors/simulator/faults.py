"""Seeded transport faults: what a connector must survive between it and a vendor.

`FaultPlan(rate, seed).decide(key)` is called once per request, in arrival order. Whether request
number n faults, and how, is a function of (seed, n) only, so the same seed and the same request order
give the same faults. The one exception keeps retries useful: a request key (method, path, query,
body) that failed twice in a row is served normally the next time, whatever the draw.

Kinds (FAULT_KINDS, drawn with equal chance):
- `rate_limited`: 429 with `Retry-After` of 0 or 1 second, in the vendor's own error body;
- `bad_gateway`, `unavailable`: 502 and 503, a proxy's HTML page, not the vendor's JSON;
- `dropped`: the connection is closed without any response;
- `truncated`: `Content-Length` of the whole body, then only half of it, then the connection closes;
- `cut_json`: a well-formed HTTP response whose body is the first half of the JSON;
- `slow`: the right answer after a pause of at most MAX_DELAY_SECONDS (not a failure).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

FAULT_KINDS = ("rate_limited", "bad_gateway", "unavailable", "dropped", "truncated", "cut_json", "slow")
FAILING_KINDS = frozenset(FAULT_KINDS) - {"slow"}
STATUS_FAULTS = {"rate_limited": 429, "bad_gateway": 502, "unavailable": 503}
MAX_DELAY_SECONDS = 0.3
MAX_FAILURES_IN_A_ROW = 2


@dataclass(frozen=True)
class Fault:
    kind: str
    retry_after: int = 0  # seconds, for rate_limited
    delay: float = 0.0  # seconds, for slow

    @property
    def status(self) -> int | None:
        """The HTTP status a status fault answers with; None for the others."""
        return STATUS_FAULTS.get(self.kind)


def draw(seed: int, counter: int, salt: str) -> float:
    """A uniform number in [0, 1) that depends on (seed, counter, salt) only."""
    digest = hashlib.blake2b(f"{seed}:{counter}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def fault_at(seed: int, counter: int, rate: float) -> Fault | None:
    """The fault request number `counter` gets under `seed` and `rate`, before the in-a-row rule."""
    if rate <= 0 or draw(seed, counter, "fault") >= rate:
        return None
    kind = FAULT_KINDS[int(draw(seed, counter, "kind") * len(FAULT_KINDS))]
    if kind == "rate_limited":
        return Fault(kind, retry_after=int(draw(seed, counter, "retry") < 0.5))
    if kind == "slow":
        return Fault(kind, delay=round(0.05 + draw(seed, counter, "delay") * (MAX_DELAY_SECONDS - 0.05), 3))
    return Fault(kind)


class FaultPlan:
    """Per-request fault decisions for one server (thread-safe); `log` keeps (counter, key, kind or None)."""

    def __init__(self, rate: float = 0.0, seed: int = 0, *, keep_log: bool = False):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, not {rate}")
        self.rate = rate
        self.seed = seed
        self.counter = 0
        self.keep_log = keep_log
        self.log: list[tuple[int, str, str | None]] = []
        self._failures_in_a_row: dict[str, int] = {}
        self._lock = threading.Lock()

    def decide(self, key: str) -> Fault | None:
        with self._lock:
            counter = self.counter
            self.counter += 1
            fault = fault_at(self.seed, counter, self.rate)
            failed_before = self._failures_in_a_row.get(key, 0)
            if fault is not None and fault.kind in FAILING_KINDS and failed_before >= MAX_FAILURES_IN_A_ROW:
                fault = None
            failing = fault is not None and fault.kind in FAILING_KINDS
            if failing:
                self._failures_in_a_row[key] = failed_before + 1
            else:
                self._failures_in_a_row.pop(key, None)
            if self.keep_log:
                self.log.append((counter, key, fault.kind if fault else None))
            return fault
