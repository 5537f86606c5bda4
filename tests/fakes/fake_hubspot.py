"""Fake HubSpot CRM: `GET /crm/v3/objects/{contacts,companies,deals}` (`limit` <= 100, `after`;
`paging.next.after`) and `POST /crm/v3/objects/{...}/search` (`filterGroups` of `{propertyName, operator,
value}`, `sorts`, `limit` <= 200, `after`, `properties`; `total`, `results`, `paging.next.after`), with
the search's own limits: at most 10,000 results a query (an `after` beyond is a 400), and a filter on a
property the records lack finds nothing (contacts keep their last change in `lastmodifieddate`, the
others in `hs_lastmodifieddate`). Datetime values are compared as epoch milliseconds.

An object shows HubSpot's default properties (`DEFAULT_PROPERTIES`), or, when `properties` is asked for,
those and the system ones (`createdate`, `hs_object_id`, the last-modified one): in the list, the search,
and `GET /crm/v3/objects/{type}/{id}`. Objects are also written, as HubSpot does: `POST
/crm/v3/objects/{type}` with `{"properties": {...}}` (201), `PATCH .../{id}` (200), both answering every
property the object holds (more than a list shows), and `DELETE .../{id}` (archives; 204, also for an id
that is not there). Property values are kept as strings; `properties` that is not an object, an unknown
property or a read-only one is a 400 `VALIDATION_ERROR` ("Property values were not valid: [...]"); a
contact's email is unique (409 `CONFLICT`); an unknown id is a 404 `OBJECT_NOT_FOUND`."""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

from tests.fakes.datasets import Dataset
from tests.fakes.fake_errors import hubspot_error
from tests.fakes.fake_http import (
    BASE_TIME,
    Answer,
    BadRequest,
    FakeRequest,
    Route,
    Write,
    fixture_json,
    int_param,
    iso_ms,
    number,
    param,
    parse_time,
)

HUBSPOT_PROPERTIES = {
    "contacts": lambda n: {"email": f"contact{n}@example.com", "firstname": f"Contact {n}"},
    "companies": lambda n: {"name": f"Company {n}", "domain": f"company{n}.example.com"},
    "deals": lambda n: {"dealname": f"Deal {n}", "amount": str(100 * n)},
}


class InvalidSearch(Exception):
    """A search request HubSpot refuses (400, `VALIDATION_ERROR`)."""


MODIFIED_PROPERTY = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
DEFAULT_PROPERTIES = {
    "contacts": {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"},
    "companies": {"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"},
    "deals": {
        "amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
        "pipeline",
    },
}  # fmt: skip
"""What an object shows when no `properties` are asked for."""
WRITABLE_PROPERTIES = {
    "contacts": {
        "email", "firstname", "lastname", "phone", "mobilephone", "company", "website", "jobtitle",
        "lifecyclestage", "hs_lead_status", "address", "city", "state", "zip", "country",
    },
    "companies": {
        "name", "domain", "industry", "phone", "website", "description", "city", "state", "country",
        "numberofemployees", "annualrevenue", "lifecyclestage",
    },
    "deals": {
        "dealname", "amount", "closedate", "dealstage", "pipeline", "dealtype", "description",
        "hubspot_owner_id",
    },
}  # fmt: skip
PORTAL_ID = 62515
SEARCH_MAX_LIMIT = 200
SEARCH_RESULTS_CAP = 10_000
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda have, want: have == want,
    "NEQ": lambda have, want: have != want,
    "LT": lambda have, want: have < want,
    "LTE": lambda have, want: have <= want,
    "GT": lambda have, want: have > want,
    "GTE": lambda have, want: have >= want,
}


def hubspot_factory(
    template: dict[str, Any], collection: str, properties: Callable[[int], dict[str, str]]
) -> Callable[[int], dict[str, Any]]:
    # The docs example also shows keys that only some requests return; they hold placeholders only.
    kept = {
        key: value for key, value in template.items() if key in {"id", "properties", "createdAt", "updatedAt"}
    }

    def make(seq: int) -> dict[str, Any]:
        created = iso_ms(BASE_TIME + 60 * seq)
        record = copy.deepcopy(kept)
        record_id = str(100_000 + seq)
        record.update(
            id=record_id,
            properties={
                **properties(seq),
                "createdate": created,
                MODIFIED_PROPERTY[collection]: created,
                "hs_object_id": record_id,
            },
            createdAt=created,
            updatedAt=created,
            archived=False,
        )
        return record

    return make


def _stamper(collection: str) -> Callable[[dict[str, Any], float], None]:
    def stamp(record: dict[str, Any], at: float) -> None:
        record["updatedAt"] = iso_ms(at)
        if isinstance(record.get("properties"), dict):
            record["properties"][MODIFIED_PROPERTY[collection]] = iso_ms(at)

    return stamp


def _comparable(value: object) -> object:
    """A property value as the search compares it: a datetime as epoch milliseconds, a number as one."""
    if isinstance(value, str):
        if value.isdigit():
            return int(value)  # epoch milliseconds, as a filter sends a datetime
        moment = parse_time(value)
        if moment is not None:
            return round(moment * 1000)
        try:
            return float(value)
        except ValueError:
            return value
    return value


class FakeHubSpot:
    def __init__(
        self, lock: threading.RLock, clock: Callable[[], float], base_url: Callable[[], str]
    ) -> None:
        self._base_url = base_url
        self._lock = lock
        self._clock = clock
        self._ids = itertools.count(10_000_001)
        template = fixture_json("hubspot/crm/docs-api-reference.objects-list.example.json")["results"][0]
        self.datasets = {
            collection: Dataset(
                "hubspot",
                collection,
                id_field="id",
                factory=hubspot_factory(template, collection, properties),
                sort_key=lambda record, seq: number(record.get("id")),
                sequence=itertools.count(1),
                lock=lock,
                clock=clock,
                stamp=_stamper(collection),
            )
            for collection, properties in HUBSPOT_PROPERTIES.items()
        }

    def route(self, method: str, parts: list[str]) -> Route | None:
        if len(parts) < 4 or parts[:3] != ["crm", "v3", "objects"] or parts[3] not in HUBSPOT_PROPERTIES:
            return None
        collection = parts[3]
        if method == "GET" and len(parts) == 4:
            return "hubspot", lambda request: self._list(collection, request)
        if method == "POST" and len(parts) == 5 and parts[4] == "search":
            return "hubspot", lambda request: self._search(collection, request)
        if method == "POST" and len(parts) == 4:
            return "hubspot", Write(lambda request: self._create(collection, request))
        if len(parts) != 5:
            return None
        record_id = parts[4]
        if method == "GET":
            return "hubspot", lambda request: self._read(collection, record_id, request)
        if method == "PATCH":
            return "hubspot", Write(lambda request: self._update(collection, record_id, request))
        if method == "DELETE":
            return "hubspot", Write(lambda request: self._archive(collection, record_id))
        return None

    # one object: create, update, archive, read

    def _create(self, collection: str, request: FakeRequest) -> Answer:
        properties = _written_properties(collection, request)
        if isinstance(properties, Answer):
            return properties
        with self._lock:
            conflict = self._conflict(collection, properties, None, request)
            if conflict is not None:
                return conflict
            record_id = str(next(self._ids))
            now = iso_ms(self._clock())
            system = {"createdate": now, MODIFIED_PROPERTY[collection]: now, "hs_object_id": record_id}
            record = {
                "id": record_id,
                "properties": {**properties, **system},
                "createdAt": now,
                "updatedAt": now,
                "archived": False,
            }
            return Answer(201, self.datasets[collection].add(record))

    def _update(self, collection: str, record_id: str, request: FakeRequest) -> Answer:
        properties = _written_properties(collection, request)
        if isinstance(properties, Answer):
            return properties
        with self._lock:
            dataset = self.datasets[collection]
            try:
                current = dataset.get(record_id)
            except KeyError:
                return Answer(404, _not_found(record_id, request))
            conflict = self._conflict(collection, properties, record_id, request)
            if conflict is not None:
                return conflict
            merged = {**(current.get("properties") or {}), **properties}
            return Answer(200, dataset.update(record_id, properties=merged))

    def _archive(self, collection: str, record_id: str) -> Answer:
        with self._lock:
            dataset = self.datasets[collection]
            if record_id in dataset.ids():
                dataset.delete(record_id)
        return Answer(204, None)  # also for an id that is not there: archiving is idempotent

    def _read(self, collection: str, record_id: str, request: FakeRequest) -> Answer:
        try:
            record = self.datasets[collection].get(record_id)
        except KeyError:
            return Answer(404, hubspot_error("resource not found", "OBJECT_NOT_FOUND", request.request_id))
        return Answer(200, _shown(collection, record, _asked_properties(param(request.query, "properties"))))

    def _conflict(
        self, collection: str, properties: dict[str, str], record_id: str | None, request: FakeRequest
    ) -> Answer | None:
        email = properties.get("email")
        if collection != "contacts" or not email:
            return None
        for other in self.datasets["contacts"].records():
            if (other.get("properties") or {}).get("email") == email and other.get("id") != record_id:
                message = f"Contact already exists. Existing ID: {other['id']}"
                return Answer(409, hubspot_error(message, "CONFLICT", request.request_id))
        return None

    def _list(self, collection: str, request: FakeRequest) -> Answer:
        query = request.query
        limit = int_param(query, "limit", default=10, maximum=100)
        after_param = param(query, "after")
        if after_param is not None and not after_param.isdigit():
            raise BadRequest(f"Invalid after: {after_param}")
        after = int(after_param or 0)
        records = [record for _, record in self.datasets[collection].ordered()]
        before = sum(1 for record in records if number(record.get("id")) <= after)
        remaining = [record for record in records if number(record.get("id")) > after]
        asked = _asked_properties(param(query, "properties"))
        page = [_shown(collection, record, asked) for record in remaining[:limit]]
        body: dict[str, Any] = {"results": page}
        if len(remaining) > limit:
            next_after = str(page[-1]["id"])
            link = f"{self._base_url()}/crm/v3/objects/{collection}?after={next_after}&limit={limit}"
            body["paging"] = {"next": {"after": next_after, "link": link}}
        return Answer(200, body, page=before // limit + 1)

    def _search(self, collection: str, request: FakeRequest) -> Answer:
        query = request.body
        if not isinstance(query, dict):
            return _validation_error("the search request is a JSON object")
        limit, offset = query.get("limit", 10), query.get("after") or "0"
        if not isinstance(limit, int) or not 1 <= limit <= SEARCH_MAX_LIMIT:
            return _validation_error(f"limit must be between 1 and {SEARCH_MAX_LIMIT}")
        if not isinstance(offset, str) or not offset.isdigit():
            return _validation_error(f"Invalid after: {offset}")
        if int(offset) + limit > SEARCH_RESULTS_CAP:
            return _validation_error("Paging beyond 10,000 results is not supported for search")
        try:
            matches = self._matching(collection, query)
        except InvalidSearch as exc:
            return _validation_error(str(exc))
        start = int(offset)
        asked = query.get("properties")
        asked = [name for name in asked if isinstance(name, str)] if isinstance(asked, list) else None
        page = [_shown(collection, record, asked or None) for record in matches[start : start + limit]]
        body: dict[str, Any] = {"total": len(matches), "results": page}
        if start + limit < len(matches):
            link = f"{self._base_url()}/crm/v3/objects/{collection}/search?after={start + limit}"
            body["paging"] = {"next": {"after": str(start + limit), "link": link}}
        return Answer(200, body, page=start // limit + 1)

    def _matching(self, collection: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        groups = query.get("filterGroups", [])
        if not isinstance(groups, list) or len(groups) > 5:
            raise InvalidSearch("filterGroups is a list of at most 5 groups")
        records = [record for _, record in self.datasets[collection].ordered()]
        if groups:
            records = [record for record in records if any(_group_matches(record, group) for group in groups)]
        for name, descending in reversed(_sorts(query.get("sorts", []))):
            records.sort(key=lambda record, name=name: _sort_value(record, name), reverse=descending)  # type: ignore[misc]
        return records


def _group_matches(record: dict[str, Any], group: object) -> bool:
    filters = group.get("filters") if isinstance(group, dict) else None
    if not isinstance(filters, list) or len(filters) > 6:
        raise InvalidSearch("a filter group holds a list of at most 6 filters")
    return all(_filter_matches(record, item) for item in filters)


def _filter_matches(record: dict[str, Any], item: object) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("propertyName"), str):
        raise InvalidSearch("a filter has a propertyName")
    compare = OPERATORS.get(item.get("operator", ""))
    if compare is None:
        raise InvalidSearch(f"Unsupported operator: {item.get('operator')}")
    have = (record.get("properties") or {}).get(item["propertyName"])
    if have is None:
        return False  # a property the record lacks matches no comparison
    have, want = _comparable(have), _comparable(item.get("value"))
    try:
        return compare(have, want)
    except TypeError:
        return False


def _sorts(sorts: object) -> list[tuple[str, bool]]:
    """(property, descending) pairs, from `{propertyName, direction}` objects or `name`/`-name` strings."""
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise InvalidSearch("sorts holds at most one sort")
    parsed = []
    for item in sorts:
        if isinstance(item, str):
            parsed.append((item.lstrip("-"), item.startswith("-")))
        elif isinstance(item, dict) and item.get("direction") in ("ASCENDING", "DESCENDING"):
            parsed.append((str(item.get("propertyName")), item["direction"] == "DESCENDING"))
        else:
            raise InvalidSearch("a sort is {propertyName, direction: ASCENDING|DESCENDING}")
    return parsed


def _sort_value(record: dict[str, Any], name: str) -> tuple[int, Any, int]:
    value = _comparable((record.get("properties") or {}).get(name))
    # Records without the property go last; ties keep the id order.
    return (0, value, number(record.get("id"))) if value is not None else (1, 0, number(record.get("id")))


def _validation_error(message: str) -> Answer:
    return Answer(400, {"status": "error", "message": message, "category": "VALIDATION_ERROR"})


def _asked_properties(raw: str | None) -> list[str] | None:
    names = [name for name in (raw or "").split(",") if name]
    return names or None


def _shown(collection: str, record: dict[str, Any], asked: list[str] | None) -> dict[str, Any]:
    """The object as a read shows it: the default properties, or the asked ones and the system ones."""
    system = {"createdate", "hs_object_id", MODIFIED_PROPERTY[collection]}
    wanted = DEFAULT_PROPERTIES[collection] if asked is None else set(asked) | system
    shown = copy.deepcopy(record)
    properties = record.get("properties")
    if isinstance(properties, dict):
        shown["properties"] = {name: value for name, value in properties.items() if name in wanted}
    return shown


def _written_properties(collection: str, request: FakeRequest) -> dict[str, str] | Answer:
    """The request's `properties` as HubSpot keeps them (strings), or its 400."""
    body = request.body
    properties = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(properties, dict):
        message = "Invalid input JSON on line 1, column 2: properties must be an object of property values"
        return Answer(400, hubspot_error(message, "VALIDATION_ERROR", request.request_id))
    problems = [
        _property_problem(collection, name)
        for name in properties
        if name not in WRITABLE_PROPERTIES[collection]
    ]
    if problems:
        message = f"Property values were not valid: {json.dumps(problems, separators=(',', ':'))}"
        return Answer(400, hubspot_error(message, "VALIDATION_ERROR", request.request_id))
    return {name: _property_value(value) for name, value in properties.items()}


def _property_problem(collection: str, name: str) -> dict[str, Any]:
    if name in DEFAULT_PROPERTIES[collection] or name in ("createdate", "hs_object_id"):
        message, error = f"{name} is a read only property; its value cannot be set.", "READ_ONLY_VALUE"
    else:
        message, error = f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST"
    return {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
        "portalId": PORTAL_ID,
    }


def _property_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _not_found(record_id: str, request: FakeRequest) -> dict[str, Any]:
    return hubspot_error(
        "Object not found.  objectId are usually numeric.",
        "OBJECT_NOT_FOUND",
        request.request_id,
        context={"id": [record_id]},
    )
