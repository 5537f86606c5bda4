"""The client package (`pullbridge_client`) reads what the API's own OpenAPI document says it sends: the
`Event` schema's fields and the `ErrorBody` schema's fields, no more and no fewer. A field added to or
removed from either side fails here, so the client and the server cannot drift apart silently."""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

import httpx
import pytest

from pullbridge_client import ErrorObject, Event
from pullbridge_client.errors import error_from_response
from tests.support import api_event, json_body, lambda_context


@pytest.fixture
def schemas(api: ModuleType, api_key: str) -> dict[str, Any]:
    response = api.lambda_handler(api_event("health.json", api_key, path="/openapi.json"), lambda_context())
    assert response["statusCode"] == 200
    components: dict[str, Any] = json_body(response)["components"]["schemas"]
    return components


def _resolve(schemas: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = schemas[schema["$ref"].removeprefix("#/components/schemas/")]
    return schema


def _may_be_null(schema: dict[str, Any]) -> bool:
    """Whether the property's schema admits null: no type at all (anything), or null among its types."""
    if "anyOf" in schema:
        return any(_may_be_null(option) for option in schema["anyOf"])
    kind = schema.get("type")
    if kind is None:
        return "$ref" not in schema and "enum" not in schema and "const" not in schema
    return kind == "null" or (isinstance(kind, list) and "null" in kind)


def _types(schema: dict[str, Any]) -> set[str]:
    if "anyOf" in schema:
        return set().union(*(_types(option) for option in schema["anyOf"]))
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if kind else set()


def _client_fields(cls: type[Any], *, leave_out: frozenset[str] = frozenset()) -> dict[str, bool]:
    """Each field of a client dataclass, and whether the client requires it (it has no default)."""
    return {
        field.name: field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        for field in dataclasses.fields(cls)
        if field.name not in leave_out
    }


def _sample(name: str, schema: dict[str, Any]) -> Any:
    kinds = _types(schema) - {"null"}
    if "boolean" in kinds:
        return True
    if "object" in kinds:
        return {"field": name}
    if "enum" in schema:
        return schema["enum"][0]
    for option in schema.get("anyOf", []):
        if "enum" in option:
            return option["enum"][0]
    return f"sample-{name}"


# --- Event ------------------------------------------------------------------------------------------


def test_the_clients_event_has_exactly_the_event_schemas_fields(schemas: dict[str, Any]) -> None:
    event_schema = schemas["Event"]
    client = _client_fields(Event, leave_out=frozenset({"extra"}))

    assert set(client) == set(event_schema["properties"])


def test_the_client_requires_exactly_the_event_fields_that_are_always_sent_and_never_null(
    schemas: dict[str, Any],
) -> None:
    event_schema = schemas["Event"]
    never_null = {
        name
        for name, schema in event_schema["properties"].items()
        if name in event_schema.get("required", []) and not _may_be_null(schema)
    }
    client = _client_fields(Event, leave_out=frozenset({"extra"}))

    assert {name for name, required in client.items() if required} == never_null


def test_every_event_field_but_data_and_stale_is_a_string_as_the_client_checks(
    schemas: dict[str, Any],
) -> None:
    properties = schemas["Event"]["properties"]
    typed = {name: _types(schema) - {"null"} for name, schema in properties.items() if name != "data"}

    assert typed == {
        name: {"boolean"} if name == "stale" else {"string"} for name in properties if name != "data"
    }


def test_an_event_as_the_schema_describes_it_round_trips_through_the_client(schemas: dict[str, Any]) -> None:
    properties = schemas["Event"]["properties"]
    sent = {name: _sample(name, schema) for name, schema in properties.items()}

    event = Event.from_dict(sent)

    assert event.extra == {}
    assert event.to_dict() == sent


# --- errors -----------------------------------------------------------------------------------------


def test_the_error_body_holds_only_the_error_object(schemas: dict[str, Any]) -> None:
    assert set(schemas["ErrorBody"]["properties"]) == {"error"}
    assert schemas["ErrorBody"]["required"] == ["error"]


def test_the_clients_error_object_has_exactly_the_schemas_fields(schemas: dict[str, Any]) -> None:
    detail = _resolve(schemas, schemas["ErrorBody"]["properties"]["error"])
    client = _client_fields(ErrorObject)

    assert set(client) == set(detail["properties"])
    # What the client cannot do without, the server always sends.
    assert {name for name, required in client.items() if required} <= set(detail["required"])


def test_an_error_as_the_schema_describes_it_is_read_whole(schemas: dict[str, Any]) -> None:
    detail = _resolve(schemas, schemas["ErrorBody"]["properties"]["error"])
    sent = {name: _sample(name, schema) for name, schema in detail["properties"].items()}

    raised = error_from_response(httpx.Response(404, json={"error": sent}))
    refusal = ErrorObject.from_json(sent)  # how the admin commands read the admin function's refusals

    assert raised.error == sent
    assert refusal is not None
    assert refusal.to_dict() == sent


# --- consumers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema_name", "client_class"),
    [
        ("Consumer", "Consumer"),
        ("Delivery", "Delivery"),
        ("DeadLetter", "DeadLetter"),
        ("AckResult", "AckResult"),
        ("NackResult", "NackResult"),
        ("ExtendResult", "ExtendResult"),
        ("TermResult", "TermResult"),
        ("RedriveResult", "RedriveResult"),
        ("Mutation", "Mutation"),
    ],
)
def test_the_clients_consumer_objects_have_exactly_the_schemas_fields(
    schemas: dict[str, Any], schema_name: str, client_class: str
) -> None:
    import pullbridge_client

    client = _client_fields(getattr(pullbridge_client, client_class), leave_out=frozenset({"extra"}))
    assert set(client) == set(schemas[schema_name]["properties"])
