"""The local stack's fault switch: `PULLBRIDGE_FAULTS`, its deterministic schedule and its log.

Off unless `PULLBRIDGE_FAULTS` is set. It names what to break and how often, as comma-separated
`target[.kind]:probability` entries:

- `dynamodb` (each DynamoDB request a function sends, retries included): `throttle`, `internal`,
  `timeout` (the request lands, then the client times out), `conflict` (a transaction conflict);
- `provider` (each HTTP request a function sends to a provider): `rate_limit` (429 with Retry-After),
  `server_error` (500, 502 or 503), `timeout` (the request lands, then the client times out), `truncated`
  (the response body is cut);
- `kill` (the function's worker process, at a DynamoDB request): `before` (killed before the request is
  sent), `after` (after a write landed, before its answer is seen), `taken` (after an `UpdateItem` that took
  log positions with `ADD` landed, before the commit that would use them).

`dynamodb:0.1` breaks 10% of DynamoDB requests, with a kind drawn among those that fit the request;
`dynamodb.throttle:0.05` breaks 5% with throttling only; `kill.taken@IngestFunction:1` limits an entry to
one function of the template. The entries are tried in order, each with a draw of its own; the first that
hits decides (a kill is decided before a DynamoDB fault of the same request).

The schedule is a pure function of the seed (`PULLBRIDGE_FAULTS_SEED`), the stream (one per worker
process and target: `IngestFunction#2`, the function's second execution environment) and the step (the
n-th request of that stream): the same seed gives every worker the same faults at the same steps. Which
request is a worker's n-th depends on what reaches it, which concurrency may vary.

Every fault injected is one line of the fault log (`PULLBRIDGE_FAULTS_LOG`, JSON lines), written before
the fault takes effect, so a 5xx can be explained by the faults of its request (`request_id`, API
Gateway's, which the local stack answers as the `apigw-requestid` header).

Dev-only: the hooks that act on this plan are in `fault_hooks`, installed only into the local stack's
worker processes. Nothing in the layer knows of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FAULTS_VARIABLE = "PULLBRIDGE_FAULTS"
SEED_VARIABLE = "PULLBRIDGE_FAULTS_SEED"
LOG_VARIABLE = "PULLBRIDGE_FAULTS_LOG"

KINDS: dict[str, tuple[str, ...]] = {
    "dynamodb": ("throttle", "internal", "timeout", "conflict"),
    "provider": ("rate_limit", "server_error", "timeout", "truncated"),
    "kill": ("before", "after", "taken"),
}
_OFF_VALUES = ("", "0", "off", "none")


@dataclass(frozen=True)
class FaultRule:
    target: str
    kind: str | None
    """None: any kind that fits the request."""
    probability: float
    function: str | None = None
    """None: every function; else the template's logical id of the only function it breaks."""

    def __str__(self) -> str:
        name = f"{self.target}.{self.kind}" if self.kind else self.target
        scope = f"@{self.function}" if self.function else ""
        return f"{name}{scope}:{self.probability:g}"


@dataclass(frozen=True)
class Fault:
    """One decision of the schedule: the kind to inject, and a draw in [0, 1) for its details."""

    target: str
    kind: str
    stream: str
    step: int
    detail: float


def _parse_rule(entry: str) -> FaultRule:
    name, separator, probability_text = entry.partition(":")
    name, _, function = name.strip().partition("@")
    target, _, kind = name.partition(".")
    if target not in KINDS:
        raise ValueError(
            f"{FAULTS_VARIABLE}: unknown target {target!r} in {entry!r}; one of {', '.join(KINDS)}"
        )
    if kind and kind not in KINDS[target]:
        raise ValueError(
            f"{FAULTS_VARIABLE}: unknown kind {kind!r} of {target} in {entry!r}; one of {', '.join(KINDS[target])}"
        )
    try:
        probability = float(probability_text) if separator else float("nan")
    except ValueError:
        probability = float("nan")
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"{FAULTS_VARIABLE}: {entry!r} needs a probability from 0 to 1, as in {target}:0.1")
    return FaultRule(target, kind or None, probability, function.strip() or None)


@dataclass(frozen=True)
class FaultPlan:
    """What to inject, how often, from which seed; and where the workers log what they injected."""

    rules: tuple[FaultRule, ...]
    seed: int
    log_path: Path | None = None
    targets: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", frozenset(rule.target for rule in self.rules if rule.probability))

    @classmethod
    def parse(cls, spec: str, *, seed: int, log_path: Path | None = None) -> FaultPlan:
        entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
        if not entries:
            raise ValueError(f"{FAULTS_VARIABLE} names no fault, as in dynamodb:0.1,provider:0.2")
        return cls(tuple(_parse_rule(entry) for entry in entries), seed, log_path)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> FaultPlan | None:
        """The plan `PULLBRIDGE_FAULTS` describes, or None when it is unset (the switch is off). Without
        `PULLBRIDGE_FAULTS_SEED` a seed is drawn, and logged with every fault so the run can be repeated."""
        environ = os.environ if environ is None else environ
        spec = (environ.get(FAULTS_VARIABLE) or "").strip()
        if spec.lower() in _OFF_VALUES:
            return None
        seed_text = (environ.get(SEED_VARIABLE) or "").strip()
        try:
            seed = int(seed_text) if seed_text else secrets.randbelow(2**31)
        except ValueError:
            raise ValueError(f"{SEED_VARIABLE} must be an integer, not {seed_text!r}") from None
        log_text = (environ.get(LOG_VARIABLE) or "").strip()
        return cls.parse(spec, seed=seed, log_path=Path(log_text) if log_text else None)

    def with_log(self, log_path: Path) -> FaultPlan:
        return replace(self, log_path=log_path)

    def __str__(self) -> str:
        return ",".join(str(rule) for rule in self.rules)

    def uniform(self, stream: str, step: int, salt: str) -> float:
        """A draw in [0, 1) fixed by the seed, the stream, the step and what it is for."""
        digest = hashlib.blake2b(f"{self.seed}|{stream}|{step}|{salt}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def decide(
        self, target: str, stream: str, step: int, fitting: Sequence[str], *, function: str | None = None
    ) -> Fault | None:
        """The fault of `stream`'s step `step` (a request of `function`) among the kinds that fit it, or
        None."""
        for index, rule in enumerate(self.rules):
            if rule.target != target or not rule.probability or rule.function not in (None, function):
                continue
            kinds = [kind for kind in fitting if rule.kind in (None, kind)]
            if not kinds or self.uniform(stream, step, f"{index}") >= rule.probability:
                continue
            kind = kinds[int(self.uniform(stream, step, f"{index}/kind") * len(kinds))]
            return Fault(target, kind, stream, step, self.uniform(stream, step, f"{index}/detail"))
        return None


class FaultLog:
    """The fault log: one JSON object a line, appended by every worker process with one `write` each, so
    lines of concurrent workers never interleave and a line is on disk before its worker is killed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), sort_keys=True).encode() + b"\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
