"""The generic provider's `settings`: its HMAC scheme, optionally a REST collection or an events feed to
pull, and the writes (`mutations`) it may make, checked when a connection is written and parsed where they
are used."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pullbridge.errors import ValidationFailed
from pullbridge.providers.base import TIMESTAMP_TOLERANCE_SECONDS, check_rate_limit, setting_field

DEFAULT_TYPE = "webhook"
"""The event type when no `type_path` is configured."""

PLACEHOLDERS = frozenset({"body", "timestamp", "method", "url", "delivery_id"})
PLACEHOLDER_PATTERN = re.compile(r"(\{[a-z_]+\})")

HeaderName = Annotated[str, Field(pattern=r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$", max_length=128)]
"""An HTTP header name (an RFC 9110 token)."""

JsonPath = Annotated[str, Field(pattern=r"^(\$\.)?[^.\s]+(\.[^.\s]+)*$", max_length=256)]
"""Dotted keys into the JSON body, optionally after `$.`: `id`, `$.id`, `meta.delivery`, `items.0.id`."""

UrlPath = Annotated[str, Field(pattern=r"^/[^\s#]*$", max_length=512)]
"""A path on the connection's `api_base_url`, optionally with a query: `/v1/items?status=all`."""

QueryParam = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-\[\]]+$", max_length=64)]

CollectionName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=64)]

RECORD_ID_PLACEHOLDER = "{record_id}"
MAX_WRITABLE_COLLECTIONS = 20

DEFAULT_ID_PATH = "id"
DEFAULT_FEED_PATH = "/events"
DEFAULT_FEED_TYPE_PATH = "type"
FEED_CURSOR_PARAM = "cursor"


class MutationCall(BaseModel):
    """How one kind of write is sent: `{"method": "PATCH", "path": "/items/{record_id}"}`, the path on the
    connection's `api_base_url`, with the record id (percent-encoded) in place of `{record_id}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["POST", "PUT", "PATCH", "DELETE"]
    path: UrlPath


class ReadCall(BaseModel):
    """How one record is read back (`GET`): `{"path": "/items/{record_id}"}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: UrlPath


class CollectionMutations(BaseModel):
    """The writes of one collection: a call per kind it takes (at least one), `read` to read a record back,
    where the answer holds the object (`answer_path`, e.g. `data`; default the whole answer) and its id
    (`id_path`; default the pulls' `id_path`, or `id`), and the key the data is sent wrapped in
    (`body_key`, e.g. `item` sends `{"item": {...}}`; default the data itself). Bodies are JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    create: MutationCall | None = None
    update: MutationCall | None = None
    delete: MutationCall | None = None
    read: ReadCall | None = None
    id_path: JsonPath | None = None
    answer_path: JsonPath | None = None
    body_key: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _check_calls(self) -> CollectionMutations:
        if self.create is None and self.update is None and self.delete is None:
            raise ValueError("name at least one of create, update and delete")
        if self.create is not None and _record_id_placeholders(self.create.path) != 0:
            raise ValueError("create.path cannot use {record_id}: a create has no id yet")
        for name, call in (("update", self.update), ("delete", self.delete), ("read", self.read)):
            if call is not None and _record_id_placeholders(call.path) != 1:
                raise ValueError(f"{name}.path must hold {{record_id}} exactly once")
        return self

    def kinds(self) -> frozenset[str]:
        return frozenset(
            kind
            for kind, call in (("create", self.create), ("update", self.update), ("delete", self.delete))
            if call is not None
        )


def _record_id_placeholders(path: str) -> int:
    """How many `{record_id}` a path holds; `ValueError` for any other brace."""
    count = path.count(RECORD_ID_PLACEHOLDER)
    if "{" in path.replace(RECORD_ID_PLACEHOLDER, "") or "}" in path.replace(RECORD_ID_PLACEHOLDER, ""):
        raise ValueError("a mutation path takes no placeholder but {record_id}")
    return count


class GenericSettings(BaseModel):
    """A generic connection's `settings`: the webhook scheme, then the pulls. Pull options default to None,
    so a connection that does not pull stores none of them; their defaults are applied when a pull runs.
    Parsing lets other keys through (`rate_limit`, checked apart, and whatever a connection stored before
    unknown keys were refused); `validate_settings` refuses unknown keys when a connection is written."""

    model_config = ConfigDict(extra="allow", frozen=True)

    signature_header: HeaderName
    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: Annotated[str, Field(max_length=64)] = ""
    timestamp_header: HeaderName | None = None
    timestamp_unit: Literal["seconds", "milliseconds"] = "seconds"
    tolerance_seconds: Annotated[int, Field(strict=True, ge=1, le=TIMESTAMP_TOLERANCE_SECONDS)] = (
        TIMESTAMP_TOLERANCE_SECONDS
    )
    signed_content: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    delivery_id_header: HeaderName | None = None
    delivery_id_path: JsonPath | None = None
    type_path: JsonPath | None = None
    record_id_path: JsonPath | None = None
    occurred_at_path: JsonPath | None = None
    collection: Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=64)] | None = None

    # Pulls: `rest` pages through a collection; `feed` reads an events feed incrementally.
    mode: Literal["rest", "feed"] | None = None
    list_path: UrlPath | None = None
    items_path: JsonPath | None = None
    id_path: JsonPath | None = None
    next_cursor_path: JsonPath | None = None
    cursor_param: QueryParam | None = None
    created_at_path: JsonPath | None = None
    page_size: Annotated[int, Field(strict=True, ge=1, le=1000)] | None = None
    page_size_param: QueryParam | None = None
    # Incremental pulls of a REST collection: the query parameter that asks for the items changed since.
    updated_since_param: QueryParam | None = None
    updated_since_format: Literal["iso8601", "unix", "unix_ms"] | None = None
    feed_path: UrlPath | None = None
    feed_type_path: JsonPath | None = None
    feed_action_path: JsonPath | None = None
    feed_occurred_at_path: JsonPath | None = None

    # Writes (mutations): per collection, the calls that make them (`CollectionMutations`).
    mutations: (
        Annotated[
            dict[CollectionName, CollectionMutations],
            Field(min_length=1, max_length=MAX_WRITABLE_COLLECTIONS),
        ]
        | None
    ) = None

    @field_validator("tolerance_seconds", mode="before")
    @classmethod
    def _null_tolerance_is_the_default(cls, value: object) -> object:
        # `null` must never read as "no tolerance": it means the default.
        return TIMESTAMP_TOLERANCE_SECONDS if value is None else value

    @model_validator(mode="after")
    def _check_consistency(self) -> GenericSettings:
        if (self.delivery_id_header is None) == (self.delivery_id_path is None):
            raise ValueError("set exactly one of delivery_id_header and delivery_id_path")
        names = _template_placeholders(self.template)
        if names.count("body") != 1:
            raise ValueError("signed_content must contain {body} exactly once")
        if self.timestamp_header is not None and "timestamp" not in names:
            raise ValueError("signed_content must contain {timestamp} when timestamp_header is set")
        if self.timestamp_header is None and "timestamp" in names:
            raise ValueError("signed_content uses {timestamp} but no timestamp_header is set")
        if self.delivery_id_header is None and "delivery_id" in names:
            raise ValueError("signed_content uses {delivery_id} but no delivery_id_header is set")
        return self

    @model_validator(mode="after")
    def _check_pull_settings(self) -> GenericSettings:
        if (self.next_cursor_path is None) != (self.cursor_param is None) and self.mode != "feed":
            raise ValueError("set cursor_param and next_cursor_path together (or neither, to follow Link)")
        if (self.page_size is None) != (self.page_size_param is None):
            raise ValueError("set page_size and page_size_param together")
        if self.updated_since_param is not None and self.mode == "feed":
            raise ValueError("updated_since_param is for mode 'rest': a feed's pulls are incremental already")
        if self.updated_since_format is not None and self.updated_since_param is None:
            raise ValueError("updated_since_format needs updated_since_param")
        return self

    @model_validator(mode="after")
    def _check_mutations(self) -> GenericSettings:
        if (
            self.mutations is not None
            and self.collection is not None
            and set(self.mutations) != {self.collection}
        ):
            raise ValueError(f"mutations may only name the connection's collection, {self.collection!r}")
        return self

    @property
    def template(self) -> str:
        if self.signed_content is not None:
            return self.signed_content
        return "{timestamp}.{body}" if self.timestamp_header else "{body}"


def _template_placeholders(template: str) -> list[str]:
    names = []
    for part in PLACEHOLDER_PATTERN.split(template):
        if PLACEHOLDER_PATTERN.fullmatch(part):
            name = part[1:-1]
            if name not in PLACEHOLDERS:
                raise ValueError(f"signed_content has an unknown placeholder {part}")
            names.append(name)
        elif "{" in part or "}" in part:
            raise ValueError("signed_content has a brace outside a placeholder")
    return names


RATE_LIMIT = "rate_limit"
"""The one setting outside the model: every provider's, checked by `check_rate_limit`."""


def validate_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as stored, defaults filled in and unset options (null included) left out. Otherwise
    `ValidationFailed` naming every wrong field in `data.fields` (the first in `data.field`), unknown keys
    included."""
    unknown = [
        setting_field(key)
        for key in settings
        if key not in GenericSettings.model_fields and key != RATE_LIMIT
    ]
    problems = [(field, f"{field}: generic has no such setting") for field in unknown]
    rate_limit = settings.get(RATE_LIMIT)
    if rate_limit is not None:
        try:
            rate_limit = check_rate_limit(setting_field(RATE_LIMIT), rate_limit)
        except ValidationFailed as exc:
            problems.append((exc.data["field"], exc.message))
    stored: dict[str, Any] = {}
    try:
        scheme = {key: value for key, value in settings.items() if key in GenericSettings.model_fields}
        stored = parse_settings(scheme).model_dump(exclude_none=True)
    except InvalidGenericSettings as exc:
        problems.extend(exc.problems)
    if problems:
        raise InvalidGenericSettings(problems)
    stored[RATE_LIMIT] = rate_limit
    return {key: value for key, value in stored.items() if value is not None}


class InvalidGenericSettings(ValidationFailed):
    """Every wrong field at once: `problems` holds (field, message) pairs; `data.fields` names each field,
    `data.field` the first."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(
            "invalid generic settings: " + "; ".join(message for _, message in problems),
            key="invalid_settings",
            data={"field": problems[0][0], "fields": sorted({field for field, _ in problems})},
        )
        self.problems = problems


def parse_settings(settings: Mapping[str, Any]) -> GenericSettings:
    try:
        return GenericSettings.model_validate(dict(settings))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = _field_name(error["loc"], error["msg"])
            problems.append((field, f"{field}: {error['msg'].removeprefix('Value error, ')}"))
        raise InvalidGenericSettings(problems) from exc


def _field_name(location: tuple[int | str, ...], message: str) -> str:
    if location:
        return "settings." + ".".join(str(part) for part in location)
    # A model-level rule: name the field its message mentions first.
    mentioned = [(message.find(name), name) for name in GenericSettings.model_fields if name in message]
    return f"settings.{min(mentioned)[1]}" if mentioned else "settings"
