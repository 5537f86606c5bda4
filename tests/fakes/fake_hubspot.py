"""Fake HubSpot CRM: `GET /crm/v3/objects/{contacts,companies,deals}` (`limit` <= 100, `after`;
`paging.next.after`) and `POST /crm/v3/objects/{...}/search` (`filterGroups` of `{propertyName, operator,
value}`, `sorts`, `limit` <= 200, `after`, `properties`; `total`, `results`, `paging.next.after`), with
the search's own limits: at most 10,000 results a query (an `after` beyond is a 400), and a filter on a
property the records lack finds nothing (contacts keep their last change in `lastmodifieddate`, the
others in `hs_lastmodifieddate`). Datetime values are compared as epoch milliseconds."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable
from typing import Any

from tests.fakes.datasets import Dataset
from tests.fakes.fake_http import (
    BASE_TIME,
    Answer,
    BadRequest,
    FakeRequest,
    Route,
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
        page = [copy.deepcopy(record) for record in remaining[:limit]]
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
        page = [copy.deepcopy(record) for record in matches[start : start + limit]]
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
