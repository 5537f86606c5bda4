"""Fake Stripe's writes and single reads, for customers and products: `POST /v1/{collection}` (create),
`POST /v1/{collection}/{id}` (update), `DELETE /v1/{collection}/{id}`, and `GET /v1/{collection}/{id}`
(any collection).

As Stripe: parameters are form-encoded (`metadata[plan]=pro`, `preferred_locales[0]=en`); a JSON body is
refused; an unknown parameter is `parameter_unknown`; an empty value unsets a field (`description=`,
`metadata=`, `metadata[key]=`); a product needs a `name`, and one that has prices cannot be deleted; an
unknown id is a 404 `resource_missing`; a deleted customer is still retrieved, as
`{"id", "object": "customer", "deleted": true}`. A POST with an `Idempotency-Key` is answered once: the
same key with the same parameters replays the first answer (`Idempotent-Replayed: true`), with other
parameters it is a 400 `idempotency_error`; a refusal of the parameters is not kept (Stripe keeps a result
only once the endpoint ran). A DELETE's key is ignored, as Stripe ignores it.

Each write changes the dataset as `add`, `update` and `delete` do, so its event is logged, carrying the
request's id and idempotency key in `request`.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tests.fakes.fake_errors import stripe_error, stripe_missing
from tests.fakes.fake_http import Answer, FakeRequest, Route, Write, fixture_json

if TYPE_CHECKING:
    from tests.fakes.datasets import Dataset

WRITABLE = {"customers": "customer", "products": "product"}
IDEMPOTENCY_HEADER = "idempotency-key"
JSON_REFUSED = (
    "Invalid request (check that your POST content type is application/x-www-form-urlencoded). If you "
    "have any questions, we can help at https://support.stripe.com/."
)

PARAMETERS = {
    "customers": {
        "address", "balance", "cash_balance", "coupon", "description", "email", "expand", "invoice_prefix",
        "invoice_settings", "metadata", "name", "next_invoice_sequence", "payment_method", "phone",
        "preferred_locales", "promotion_code", "shipping", "source", "tax", "tax_exempt", "tax_id_data",
        "test_clock",
    },
    "products": {
        "active", "default_price", "default_price_data", "description", "expand", "id", "images",
        "marketing_features", "metadata", "name", "package_dimensions", "shippable", "statement_descriptor",
        "tax_code", "type", "unit_label", "url",
    },
}  # fmt: skip
"""What each create takes (https://docs.stripe.com/api/customers/create, .../products/create)."""
CREATE_ONLY = {
    "customers": {"payment_method", "tax_id_data", "test_clock"},
    "products": {"id", "default_price_data", "type"},
}
UPDATE_ONLY = {"customers": set(), "products": {"default_price"}}
NOT_STORED = {
    "cash_balance", "coupon", "default_price_data", "expand", "payment_method", "promotion_code", "source",
    "tax", "tax_id_data",
}  # fmt: skip
"""Parameters that act (attach a source, apply a coupon, ...) rather than set a field of the object."""
INTEGERS = {"balance", "next_invoice_sequence"}
BOOLEANS = {"active", "shippable"}
REQUIRED = {"customers": (), "products": ("name",)}
CANNOT_UNSET = {"customers": set(), "products": {"name"}}

_NAME = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class InvalidParameters(Exception):
    """Parameters Stripe refuses with a 400 (nothing is applied, and no idempotent result is kept)."""

    def __init__(self, message: str, param: str, code: str = "parameter_invalid") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True)
class Kept:
    """The first answer to an idempotency key, and what it answered."""

    fingerprint: str
    answer: Answer
    request_id: str


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's nested form parameters as an object: `metadata[a]=b` -> `{"metadata": {"a": "b"}}`,
    `items[0]=x` -> `{"items": ["x"]}` (an object whose keys are all indexes is a list)."""
    parsed: dict[str, Any] = {}
    for name, value in pairs:
        match = _NAME.match(name)
        if match is None:
            raise InvalidParameters(f"Invalid parameter name: {name}", name)
        keys = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        target = parsed
        for key in keys[:-1]:
            found = target.setdefault(key, {})
            if not isinstance(found, dict):
                raise InvalidParameters(f"Invalid hash: {name}", keys[0])
            target = found
        target[keys[-1]] = value
    return {key: _lists(value, key == "metadata") for key, value in parsed.items()}


def _lists(value: Any, keep: bool) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _lists(item, keep) for key, item in value.items()}
    if not keep and converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _coerce(name: str, value: Any) -> Any:
    """A parameter's value as the object holds it: `""` unsets, integers and booleans are typed."""
    if value == "":
        return {} if name == "metadata" else None
    if name in INTEGERS:
        if not re.fullmatch(r"-?[0-9]+", str(value)):
            raise InvalidParameters(f"Invalid integer: {value}", name)
        return int(value)
    if name in BOOLEANS:
        if value not in ("true", "false"):
            raise InvalidParameters(f"Invalid boolean: {value}", name)
        return value == "true"
    if isinstance(value, dict):
        return {key: (None if item == "" else item) for key, item in value.items()}
    return value


class StripeWrites:
    def __init__(
        self,
        datasets: dict[str, Dataset],
        lock: threading.RLock,
        clock: Callable[[], float],
        set_request: Callable[[dict[str, Any] | None], None],
    ) -> None:
        self._datasets = datasets
        self._lock = lock
        self._clock = clock
        self._set_request = set_request
        self._kept: dict[str, Kept] = {}
        self._ids = itertools.count(1)
        self.deleted: dict[str, set[str]] = {collection: set() for collection in WRITABLE}
        self._templates: dict[str, dict[str, Any]] = {
            collection: fixture_json(f"stripe/objects/{singular}.json")
            for collection, singular in WRITABLE.items()
        }

    def clear(self, collection: str) -> None:
        with self._lock:
            if collection in self.deleted:
                self.deleted[collection].clear()

    def route(self, method: str, parts: list[str]) -> Route | None:
        collection = parts[1]
        if method == "GET" and len(parts) == 3 and collection in self._datasets:
            return "stripe", lambda request: self._retrieve(collection, parts[2])
        if collection not in WRITABLE:
            return None
        if method == "POST" and len(parts) == 2:
            return "stripe", Write(lambda request: self._idempotent(request, "POST", parts, self._create))
        if method == "POST" and len(parts) == 3:
            return "stripe", Write(lambda request: self._idempotent(request, "POST", parts, self._update))
        if method == "DELETE" and len(parts) == 3:
            return "stripe", Write(lambda request: self._delete(collection, parts[2], request))
        return None

    # idempotency

    def _idempotent(
        self,
        request: FakeRequest,
        method: str,
        parts: list[str],
        write: Callable[[str, str | None, dict[str, Any], FakeRequest], Answer],
    ) -> Answer:
        if request.body is not None:
            return Answer(400, stripe_error(400, JSON_REFUSED))
        key = request.header(IDEMPOTENCY_HEADER)
        try:
            params = parse_form(request.form or [])
        except InvalidParameters as exc:
            return Answer(400, stripe_error(400, str(exc), code=exc.code, param=exc.param))
        fingerprint = json.dumps([method, "/".join(parts), params], sort_keys=True)
        with self._lock:
            kept = self._kept.get(key) if key else None
            if kept is not None:
                if kept.fingerprint != fingerprint:
                    message = (
                        "Keys for idempotent requests can only be used with the same parameters they were "
                        f"first used with. Try using a key other than '{key}' if you meant to execute a "
                        "different request."
                    )
                    return Answer(400, {"error": {"message": message, "type": "idempotency_error"}})
                headers = {**kept.answer.headers, "Idempotent-Replayed": "true"}
                headers["Original-Request"] = kept.request_id
                return replace(kept.answer, body=copy.deepcopy(kept.answer.body), headers=headers)
            record_id = parts[2] if len(parts) == 3 else None
            self._set_request({"id": request.request_id, "idempotency_key": key})
            try:
                answer = write(parts[1], record_id, params, request)
            finally:
                self._set_request(None)
            if key and answer.status != 400:
                self._kept[key] = Kept(
                    fingerprint, replace(answer, body=copy.deepcopy(answer.body)), request.request_id
                )
            return answer

    # endpoints

    def _retrieve(self, collection: str, record_id: str) -> Answer:
        singular = WRITABLE.get(collection, collection.removesuffix("s"))
        with self._lock:
            if record_id in self.deleted.get(collection, set()):
                return Answer(200, {"id": record_id, "object": singular, "deleted": True})
            try:
                return Answer(200, self._datasets[collection].get(record_id))
            except KeyError:
                return Answer(404, stripe_missing(singular, record_id))

    def _create(
        self, collection: str, record_id: str | None, params: dict[str, Any], request: FakeRequest
    ) -> Answer:
        try:
            fields = self._fields(collection, params, create=True)
        except InvalidParameters as exc:
            return Answer(400, stripe_error(400, str(exc), code=exc.code, param=exc.param))
        record = self._new(collection, params.get("id"))
        record.update(fields)
        if record["id"] in {str(known) for known in self._datasets[collection].ids()}:
            message = f"Product already exists: '{record['id']}'"
            return Answer(400, stripe_error(400, message, code="resource_already_exists", param="id"))
        return Answer(200, self._datasets[collection].add(record))

    def _update(
        self, collection: str, record_id: str | None, params: dict[str, Any], request: FakeRequest
    ) -> Answer:
        dataset = self._datasets[collection]
        singular = WRITABLE[collection]
        try:
            current = dataset.get(str(record_id))
        except KeyError:
            return Answer(404, stripe_missing(singular, str(record_id)))
        try:
            fields = self._fields(collection, params, create=False)
        except InvalidParameters as exc:
            return Answer(400, stripe_error(400, str(exc), code=exc.code, param=exc.param))
        if "metadata" in fields and params.get("metadata") != "":
            merged = {**(current.get("metadata") or {}), **fields["metadata"]}
            fields["metadata"] = {key: value for key, value in merged.items() if value is not None}
        return Answer(200, dataset.update(str(record_id), **fields))

    def _delete(self, collection: str, record_id: str, request: FakeRequest) -> Answer:
        singular = WRITABLE[collection]
        with self._lock:
            dataset = self._datasets[collection]
            if record_id not in {str(known) for known in dataset.ids()}:
                return Answer(404, stripe_missing(singular, record_id))
            if collection == "products" and any(
                price.get("product") == record_id for price in self._datasets["prices"].records()
            ):
                message = "This product cannot be deleted because it has one or more user-created prices."
                return Answer(400, stripe_error(400, message))
            self._set_request({"id": request.request_id, "idempotency_key": None})
            try:
                dataset.delete(record_id)
            finally:
                self._set_request(None)
            self.deleted[collection].add(record_id)
        return Answer(200, {"id": record_id, "object": singular, "deleted": True})

    # objects

    def _fields(self, collection: str, params: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """The object's fields the parameters set; `InvalidParameters` for one Stripe refuses."""
        refused = UPDATE_ONLY[collection] if create else CREATE_ONLY[collection]
        fields: dict[str, Any] = {}
        for name, value in params.items():
            if name not in PARAMETERS[collection] or name in refused:
                raise InvalidParameters(f"Received unknown parameter: {name}", name, "parameter_unknown")
            if value == "" and name in CANNOT_UNSET[collection]:
                raise InvalidParameters(
                    f"You passed an empty string for '{name}'. We assume empty values are an attempt to "
                    f"unset a parameter; however '{name}' cannot be unset. You should remove '{name}' from "
                    "your request or supply a non-empty value.",
                    name,
                )
            if name not in NOT_STORED and name != "id":
                fields[name] = _coerce(name, value)
        for name in REQUIRED[collection] if create else ():
            if fields.get(name) is None:
                raise InvalidParameters(f"Missing required param: {name}.", name, "parameter_missing")
        return fields

    def _new(self, collection: str, wanted_id: Any) -> dict[str, Any]:
        """A new object as Stripe makes it: the published example with its own fields unset."""
        now = int(self._clock())
        record: dict[str, Any] = copy.deepcopy(self._templates[collection])
        prefix = "cus" if collection == "customers" else "prod"
        record.update(
            id=wanted_id if isinstance(wanted_id, str) and wanted_id else f"{prefix}_W{next(self._ids):013d}",
            created=now,
            livemode=False,
            metadata={},
            description=None,
        )
        if collection == "customers":
            record.update(
                address=None, balance=0, discount=None, email=None, name=None, phone=None, shipping=None,
                preferred_locales=[], invoice_prefix=f"W{next(self._ids):06X}", next_invoice_sequence=1,
            )  # fmt: skip
        else:
            record.update(
                active=True, default_price=None, images=[], marketing_features=[], package_dimensions=None,
                shippable=None, statement_descriptor=None, tax_code=None, unit_label=None, url=None,
                updated=now, type="service",
            )  # fmt: skip
        return record


def stamp_updated(record: dict[str, Any], at: float) -> None:
    """A product's `updated` moves with each change (a customer has no such field)."""
    record["updated"] = int(at)
