"""Which build of the product the stack's workers run: the product as it is, or a deliberately broken one
that the checker must catch (`BROKEN`), under optional timing conditions a correct build must survive
(`CONDITIONS`).

The functions run in worker processes (`pullbridge_local.lambda_runtime`), so a change must be made in
each worker, before the function is imported: `serving(...)` makes the stack start its workers through
`serve`, which applies what `SOAK_BUILD` (in the functions' environment) names and then runs the worker
as usual. Nothing here touches the product's files.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from pullbridge_local import lambda_runtime
from pullbridge_local.faults import FaultPlan
from pullbridge_local.lambda_runtime import _serve_invocations as _serve_as_built
from pullbridge_local.template import FunctionSpec

BUILD_VARIABLE = "SOAK_BUILD"
SLOW_ADD_SECONDS = 1.0


def _reader_skips_gaps() -> None:
    """A log reader that passes an empty position at once instead of waiting for its writer (or fencing
    it): a commit that lands there later is behind every reader that went past."""
    from pullbridge.storage.log_reader import LogReader

    def judge_gap(self: Any, log_key: str, first_missing: int, successor: Any, fences_left: int) -> str:
        return "skip"

    LogReader._judge_gap = judge_gap  # type: ignore[method-assign]


def _ack_before_lease_check() -> None:
    """An ack that settles the event before checking that its lease is still the current one: a late ack
    is answered as acked, and acks whatever lease holds the event now (another worker's)."""
    from pullbridge.consumers import delivery
    from pullbridge.consumers.ack_ids import decode_ack_ids
    from pullbridge.consumers.models import AckResult

    checked_ack = delivery.ack

    def ack(ctx: Any, consumer: Any, ack_ids: list[str]) -> Any:
        result = checked_ack(ctx, consumer, ack_ids)
        if not result.expired:
            return result
        with contextlib.suppress(Exception):  # the answer below is the bug; the takeover is its effect
            held = decode_ack_ids(ctx.codec, consumer.tenant_id, consumer.id, list(result.expired))
            positions = sorted({ack_id.position for ack_id in held})
            groups = {ack_id.group for ack_id in held if ack_id.group is not None}
            current = ctx.store.in_flight_at(consumer.tenant_id, consumer.id, positions, groups)
            leases = [(item.position, item.lease_seq) for item in current if item.state == "leased"]
            in_group = {item.position: item.group for item in current if item.group is not None}
            ctx.store.settle(consumer.tenant_id, consumer.id, leases, now=ctx.clock(), groups=in_group)
        return AckResult(acked=len(ack_ids), expired=[])

    delivery.ack = ack


def _scan_deletes_on_failure() -> None:
    """A full scan that, when the provider fails part-way, still logs `deleted` for every record of the
    snapshot it had not seen yet."""
    from pullbridge.errors import PullbridgeError
    from pullbridge.pulls import engine

    take, scan = engine.PullEngine._take, engine.PullEngine._scan

    def taking(self: Any, run: Any, page: Any, diff: Any) -> None:
        run.soak_diff = diff
        take(self, run, page, diff)

    def scanning(self: Any, run: Any, deadline: float) -> bool:
        try:
            return scan(self, run, deadline)
        except PullbridgeError:
            diff = getattr(run, "soak_diff", None)
            if diff is not None and run.pull.updated_since is None:
                self._log(run, [run.drafts.change(change) for change in diff.missing()])
            raise

    engine.PullEngine._take = taking  # type: ignore[method-assign]
    engine.PullEngine._scan = scanning  # type: ignore[method-assign]


def _slow_add() -> None:
    """Timing a correct build must survive: a writer that took log positions with `ADD` holds them a
    second before it commits (a slow or paused writer), so readers meet the gap."""
    import botocore.handlers

    def mark(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        names = (params.get("ExpressionAttributeNames") or {}).values()
        if "ADD" in str(params.get("UpdateExpression", "")).upper() and "seq" in names:
            context["soak_took_positions"] = True

    def hold(context: dict[str, Any], **_: Any) -> None:
        if context.get("soak_took_positions"):
            time.sleep(SLOW_ADD_SECONDS)

    botocore.handlers.BUILTIN_HANDLERS.append(("before-parameter-build.dynamodb.UpdateItem", mark))
    botocore.handlers.BUILTIN_HANDLERS.append(("after-call.dynamodb.UpdateItem", hold))


BROKEN: dict[str, Callable[[], None]] = {
    "reader_skips_gaps": _reader_skips_gaps,
    "ack_before_lease_check": _ack_before_lease_check,
    "scan_deletes_on_failure": _scan_deletes_on_failure,
}
CONDITIONS: dict[str, Callable[[], None]] = {"slow_add": _slow_add}


def build_environment(broken: tuple[str, ...], conditions: tuple[str, ...]) -> dict[str, str]:
    unknown = [name for name in broken if name not in BROKEN] + [
        name for name in conditions if name not in CONDITIONS
    ]
    if unknown:
        raise ValueError(f"unknown builds or conditions {unknown}: {[*BROKEN, *CONDITIONS]}")
    return {BUILD_VARIABLE: ",".join([*broken, *conditions])}


def serve(
    spec: FunctionSpec,
    unset_variables: tuple[str, ...],
    connection: Connection,
    faults: FaultPlan | None = None,
    stream: str = "",
) -> None:
    """A worker process of the soak's stack: the build's changes, then the worker as usual."""
    for name in filter(None, spec.environment.get(BUILD_VARIABLE, "").split(",")):
        {**BROKEN, **CONDITIONS}[name]()
    _serve_as_built(spec, unset_variables, connection, faults, stream)


@contextlib.contextmanager
def serving() -> Iterator[None]:
    """While open, the stacks made in this process start their workers through `serve`."""
    lambda_runtime._serve_invocations = serve
    try:
        yield
    finally:
        lambda_runtime._serve_invocations = _serve_as_built
