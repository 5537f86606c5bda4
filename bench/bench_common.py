"""What every benchmark shares: the embedded DynamoDB with the template's tables, the functions loaded
as Lambda loads them, a botocore meter on a client, and the `name: value` output."""

from __future__ import annotations

import math
import os
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TextIO

import tests.conftest as test_environment  # the environment the tests run under (region, Powertools)
from pullbridge.settings import ApiSettings
from pullbridge.storage import Store, dynamodb_client
from pullbridge_local.dynamodb import EmbeddedDynamoDB
from pullbridge_local.template import create_tables, load_template
from tests.support import load_function

CURSOR_SECRET = test_environment.CURSOR_SECRET
TENANT = "t_bench"

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


OUTPUT: TextIO = sys.stdout
"""Where the figures go. `python -m bench` points it at the real stdout and sends file descriptor 1
(the functions' EMF metrics and logs, here and in the local stack's worker processes) to /dev/null."""


def log(message: str) -> None:
    """Progress goes to stderr; stdout holds only the figures."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def figure(name: str, value: object) -> None:
    if isinstance(value, float):
        value = f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    print(f"{name}: {value}", file=OUTPUT, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# --- DynamoDB requests, items and time, counted on one client ---------------------------------------


@dataclass
class DynamoMeter:
    """Counts what one botocore client sends to DynamoDB: HTTP requests (`before-send`, so a retried
    call counts each attempt), items read (`ScannedCount` of Query/Scan, `Item` of GetItem, from the
    parsed responses in `after-call`), and the wall time each operation took."""

    client: Any
    requests: Counter[str] = field(default_factory=Counter)
    items_read: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    _started: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _before_send(self, model: Any = None, **kwargs: Any) -> None:
        operation = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        with self._lock:
            self.requests[operation] += 1

    def _before_call(self, model: Any, **_: Any) -> None:
        self._started[threading.get_ident()] = time.perf_counter()

    def _after_call(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        elapsed = time.perf_counter() - self._started.pop(threading.get_ident(), time.perf_counter())
        read = 0
        if "ScannedCount" in parsed:
            read = int(parsed["ScannedCount"])
        elif model.name == "GetItem":
            read = 1 if parsed.get("Item") else 0
        elif model.name == "BatchGetItem":
            read = sum(len(items) for items in parsed.get("Responses", {}).values())
        with self._lock:
            self.items_read[model.name] += read
            self.seconds[model.name] += elapsed

    def start(self) -> DynamoMeter:
        events = self.client.meta.events
        events.register("before-send.dynamodb.*", self._before_send)
        events.register("before-call.dynamodb.*", self._before_call)
        events.register("after-call.dynamodb.*", self._after_call)
        return self

    def stop(self) -> None:
        events = self.client.meta.events
        events.unregister("before-send.dynamodb.*", self._before_send)
        events.unregister("before-call.dynamodb.*", self._before_call)
        events.unregister("after-call.dynamodb.*", self._after_call)

    def reset(self) -> None:
        self.requests.clear()
        self.items_read.clear()
        self.seconds.clear()

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def write_requests(self) -> int:
        return sum(count for name, count in self.requests.items() if name in WRITE_OPERATIONS)

    @property
    def total_items_read(self) -> int:
        return sum(self.items_read.values())


@contextmanager
def metered(client: Any) -> Iterator[DynamoMeter]:
    meter = DynamoMeter(client).start()
    try:
        yield meter
    finally:
        meter.stop()


# --- the rig: one embedded DynamoDB, fresh tables per benchmark, the functions loaded once --------------


class Rig:
    def __init__(self) -> None:
        self.dynamodb = EmbeddedDynamoDB()
        self.template = load_template()
        self._functions: dict[str, ModuleType] = {}

    def __enter__(self) -> Rig:
        self.dynamodb.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dynamodb.stop()

    @property
    def endpoint(self) -> str:
        return self.dynamodb.endpoint_url

    def fresh_tables(self, **overrides: Any) -> ApiSettings:
        """Empty tables from template.yaml (everything else dropped) and settings that name them: the
        API's, which hold every other function's too, as the tests' `settings` fixture has them."""
        self.dynamodb.reset()
        tables = create_tables(dynamodb_client(self.endpoint), self.template)
        return ApiSettings(
            events_table=tables["EventsTable"],
            control_table=tables["ControlTable"],
            idempotency_table=tables["IdempotencyTable"],
            cursor_secret=CURSOR_SECRET,
            puller_function_name="PullerFunction",
            dynamodb_endpoint=self.endpoint,
            **overrides,
        )

    def store(self, settings: ApiSettings) -> Store:
        return Store(dynamodb_client(self.endpoint), settings)

    def function(self, name: str) -> ModuleType:
        """`functions/<name>/app.py`, imported once with the deployment's environment, like a cold start.
        The environment is the one the tests' `functions` fixture sets (a fixture cannot be called)."""
        if name not in self._functions:
            os.environ.update(
                {
                    "EVENTS_TABLE": "EventsTable",
                    "CONTROL_TABLE": "ControlTable",
                    "DYNAMODB_ENDPOINT": self.endpoint,
                    "CURSOR_SECRET": CURSOR_SECRET,
                    "PULLER_FUNCTION_NAME": "PullerFunction",
                    "IDEMPOTENCY_TABLE": "IdempotencyTable",
                    # Nothing listens there: `POST .../pull` finds no puller to start and the pull
                    # waits for the schedule.
                    "AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:9",
                }
            )
            self._functions[name] = load_function(name)
        return self._functions[name]


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


# --- DynamoDB read units, priced from the requests one client sends --------------------------------

READ_OPERATIONS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
READ_UNIT_BYTES = 4096


def number_size(text: str) -> int:
    """A DynamoDB number's size: one byte per two significant digits, rounded up, plus one. Leading and
    trailing zeros are not significant. (DynamoDB's own encoding pairs digits around the decimal point,
    so this can be a byte off; the docs call it approximate too.)"""
    mantissa = text.strip().lstrip("+-").lower().split("e", 1)[0]
    digits = mantissa.replace(".", "").strip("0")
    return math.ceil(len(digits) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """The size of one attribute value, `{"S": ...}` and so on, as botocore takes it (B as bytes)."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return number_size(content)
    if kind == "B":
        return len(content if isinstance(content, bytes | bytearray) else content.encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(element.encode()) for element in content)
    if kind == "NS":
        return sum(number_size(element) for element in content)
    if kind == "BS":
        return sum(len(element) for element in content)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(element) for name, element in content.items())
    raise ValueError(f"not a DynamoDB attribute value: {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size: each attribute's name (UTF-8) plus its value, the key attributes included."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


@dataclass
class ReadUnitMeter:
    """The read units DynamoDB would bill for one client's reads, by its rules: a GetItem costs one unit
    per 4 KB of the whole item (rounded up, at least one, projection or not, and 4 KB also for an item
    that is not there); a Query or Scan one unit per 4 KB of all the items it read together; each is
    halved when eventually consistent. moto's own `ConsumedCapacity` is a constant (0.5 a GetItem, 1 a
    Query, whatever the size or consistency), so it is not used.

    The parameters come from `before-parameter-build` and the items from the parsed responses in
    `after-call`. A projected GetItem's item is read again whole, on a client of its own, to size it.
    Reads whose billed size the response cannot tell (a filtered or projected Query or Scan, batch and
    transactional reads) are counted in `unpriced` rather than guessed."""

    client: Any
    calls: Counter[str] = field(default_factory=Counter)
    units: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    largest_item_bytes: Counter[str] = field(default_factory=Counter)
    unpriced: Counter[str] = field(default_factory=Counter)
    _whole_items: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _before_parameter_build(self, params: dict[str, Any], model: Any, context: Any, **_: Any) -> None:
        if model.name in READ_OPERATIONS:
            context["read_unit_params"] = dict(params)

    def _after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: Any, **_: Any
    ) -> None:
        params = context.pop("read_unit_params", None)
        if params is None or http_response.status_code >= 300:
            return  # not a read, or refused (a refused read is not billed)
        consistent = bool(params.get("ConsistentRead"))
        kind = f"{model.name} ({'strong' if consistent else 'eventual'})"
        if model.name == "GetItem":
            item = parsed.get("Item")
            if item is not None and ({"ProjectionExpression", "AttributesToGet"} & params.keys()):
                item = self._whole_item(params)
            size = item_size(item) if item else 0
            largest = size
        elif model.name in ("Query", "Scan") and not (
            {
                "FilterExpression",
                "QueryFilter",
                "ScanFilter",
                "ProjectionExpression",
                "AttributesToGet",
                "Select",
            }
            & params.keys()
        ):
            sizes = [item_size(item) for item in parsed.get("Items", [])]
            size, largest = sum(sizes), max(sizes, default=0)
        else:
            with self._lock:
                self.unpriced[model.name] += 1
            return
        units = max(1, -(-size // READ_UNIT_BYTES)) * (1.0 if consistent else 0.5)
        with self._lock:
            self.calls[kind] += 1
            self.units[kind] += units
            self.largest_item_bytes[kind] = max(self.largest_item_bytes[kind], largest)

    def _whole_item(self, params: dict[str, Any]) -> dict[str, Any] | None:
        if self._whole_items is None:
            self._whole_items = dynamodb_client(self.client.meta.endpoint_url)
        response = self._whole_items.get_item(
            TableName=params["TableName"], Key=params["Key"], ConsistentRead=True
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def start(self) -> ReadUnitMeter:
        events = self.client.meta.events
        events.register("before-parameter-build.dynamodb.*", self._before_parameter_build)
        events.register("after-call.dynamodb.*", self._after_call)
        return self

    def stop(self) -> None:
        events = self.client.meta.events
        events.unregister("before-parameter-build.dynamodb.*", self._before_parameter_build)
        events.unregister("after-call.dynamodb.*", self._after_call)

    @property
    def total_units(self) -> float:
        return sum(self.units.values())

    def breakdown(self) -> str:
        return ", ".join(
            f"{kind}: {self.calls[kind]} calls, {self.units[kind]:g} units, "
            f"largest item {self.largest_item_bytes[kind]} B"
            for kind in sorted(self.calls)
        )


@contextmanager
def metered_read_units(client: Any) -> Iterator[ReadUnitMeter]:
    meter = ReadUnitMeter(client).start()
    try:
        yield meter
    finally:
        meter.stop()
