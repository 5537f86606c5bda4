"""GitHub (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries):
`X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body. `X-GitHub-Delivery` is what
redeliveries share and `X-GitHub-Event` names the event.

A record of `issues` or `pulls` is identified by its `number`: the one id that the issue and pull request
webhooks, `GET /repos/{owner}/{repo}/issues` and `GET /repos/{owner}/{repo}/pulls` all carry for the same
record. (`id` differs between a pull request object and the issue object of the same pull request.)

Writes: issues are created (`POST /repos/{owner}/{repo}/issues`) and updated (`PATCH .../issues/{number}`;
closing is `{"state": "closed"}`). GitHub's REST API cannot delete an issue. A single issue's answer (to a
create, an update or a `GET`) also carries `closed_by`, which the list leaves out: it is dropped, so a
written issue is what the list shows and the next scan finds no change.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeGuard

from pullbridge.errors import MalformedPayload, PullFailed, SignatureInvalid
from pullbridge.providers.base import (
    ListedRecord,
    ListPage,
    NormalizedEvent,
    ProviderHttp,
    PullSource,
    ResponseT,
    SettingRule,
    WebhookRequest,
    WriteRequest,
    WrittenRecord,
    check_rate_limit,
    check_settings,
    credential,
    format_iso_time,
    invalid_setting,
    parse_iso_time,
    parse_json_body,
    payload_header,
)
from pullbridge.providers.signing import check_secret, hmac_keys, hmac_matches, read_digest
from pullbridge.providers.writes import (
    answered_object,
    check_write,
    first_string,
    numeric_id,
    record_or_none,
    unreadable_answer,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"

COLLECTION_BY_EVENT: Mapping[str, tuple[str, str]] = {
    "issues": ("issues", "issue"),
    "pull_request": ("pulls", "pull_request"),
}
"""`X-GitHub-Event` -> (collection, the payload key holding the record)."""

ACTION_BY_GITHUB_ACTION: Mapping[str, str] = {
    "opened": "created",
    "deleted": "deleted",
    # A transferred issue leaves this repository: its list API no longer returns it.
    "transferred": "deleted",
}
"""Any other action of an `issues` or `pull_request` event changes the record: `updated`."""

API_VERSION = "2022-11-28"
WRITABLE: Mapping[str, frozenset[str]] = {"issues": frozenset({"create", "update"})}
SINGLE_ISSUE_ONLY = ("closed_by",)
"""Keys a single issue's answer has and the issues list's items do not."""
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def is_repository(value: object) -> TypeGuard[str]:
    """`owner/repo`; `.` and `..` are refused as either part, since the name goes into the API's path."""
    return (
        isinstance(value, str)
        and _REPOSITORY.fullmatch(value) is not None
        and not {".", ".."} & set(value.split("/"))
    )


def _check_repository(field: str, value: object) -> str:
    if not is_repository(value):
        raise invalid_setting(field, "must be a repository as 'owner/repo'")
    return value


SETTING_RULES: Mapping[str, SettingRule] = {"repository": _check_repository, "rate_limit": check_rate_limit}


class GitHub:
    name: ClassVar[str] = "github"
    collections: ClassVar[frozenset[str]] = frozenset(
        collection for collection, _ in COLLECTION_BY_EVENT.values()
    )
    webhook_matches_list_representation: ClassVar[bool] = False
    webhook_carries_records: ClassVar[bool] = True
    max_page_size: ClassVar[int] = 100
    default_base_url: ClassVar[str | None] = "https://api.github.com"
    request_id_header: ClassVar[str | None] = "X-GitHub-Request-Id"
    updates_lookback_seconds: ClassVar[float | None] = None
    write_idempotency_keys: ClassVar[bool] = False

    def record_version(self, data: Any) -> float | None:
        return parse_iso_time(data.get("updated_at")) if isinstance(data, dict) else None

    def validate_secret(self, secret: str) -> None:
        check_secret(secret, "a GitHub webhook secret", ascii_only=False)

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return check_settings(self.name, settings, SETTING_RULES)

    def pullable_collections(self, settings: Mapping[str, Any]) -> frozenset[str]:
        return self.collections

    def verify(
        self, request: WebhookRequest, secrets: Sequence[str], settings: Mapping[str, Any], now: float
    ) -> None:
        candidate = read_digest(
            request.require_header(SIGNATURE_HEADER),
            SIGNATURE_HEADER,
            encoding="hex",
            prefix=SIGNATURE_PREFIX,
        )
        if not hmac_matches(hmac_keys(secrets), [request.body], [candidate]):
            raise SignatureInvalid("X-Hub-Signature-256 matches no active secret")

    def normalize(self, request: WebhookRequest, settings: Mapping[str, Any]) -> list[NormalizedEvent]:
        event_name = payload_header(request, EVENT_HEADER, "GitHub")
        delivery_id = payload_header(request, DELIVERY_HEADER, "GitHub")
        payload = _parse_payload(request)
        if not isinstance(payload, dict):
            raise MalformedPayload("a GitHub webhook payload is a JSON object", key="malformed_payload")
        github_action = payload.get("action")
        if github_action is not None and (not isinstance(github_action, str) or not github_action):
            raise MalformedPayload("a GitHub payload's 'action' is a string", key="malformed_payload")
        event_type = f"{event_name}.{github_action}" if github_action else event_name
        target = COLLECTION_BY_EVENT.get(event_name)
        if target is None:
            return [NormalizedEvent(delivery_id=delivery_id, type=event_type, data=payload)]
        collection, record_key = target
        record = payload.get(record_key)
        number = record.get("number") if isinstance(record, dict) else None
        if not isinstance(record, dict) or not isinstance(number, int) or isinstance(number, bool):
            raise MalformedPayload(
                f"a GitHub {event_name} payload has a '{record_key}' object with a 'number'",
                key="malformed_payload",
            )
        return [
            NormalizedEvent(
                delivery_id=delivery_id,
                type=event_type,
                collection=collection,
                action=ACTION_BY_GITHUB_ACTION.get(github_action or "", "updated"),
                record_id=str(number),
                occurred_at=parse_iso_time(record.get("updated_at")),
                version=parse_iso_time(record.get("updated_at")),
                data=record,
            )
        ]

    def list_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, checkpoint: str | None
    ) -> Iterator[ListPage]:
        """`GET /repos/{owner}/{repo}/{issues|pulls}?state=all&per_page=100`, then the `Link` header's
        next URL, which is also the checkpoint. The issues list holds pull requests too: they are left out
        (the `pulls` collection has them)."""
        yield from self._pages(http, source, checkpoint, {"state": "all"}, None)

    def supports_updates(self, settings: Mapping[str, Any]) -> bool:
        return True

    def updated_pages(
        self, http: ProviderHttp[ResponseT], source: PullSource, since: float, checkpoint: str | None
    ) -> Iterator[ListPage]:
        """The same lists with `sort=updated&direction=desc`: issues with `since=<ISO 8601>`, pulls (whose
        list takes no `since`) until the first one updated before it. Newest first, because the pages are
        numbered: a record updated while the pull pages moves to the front, which was read already (the
        next pull's window holds its new update time), instead of shifting an unread record back onto a
        page that was read."""
        filters = {"state": "all", "sort": "updated", "direction": "desc"}
        if source.collection == "issues":
            filters["since"] = format_iso_time(since)
        yield from self._pages(http, source, checkpoint, filters, since)

    def _pages(
        self,
        http: ProviderHttp[ResponseT],
        source: PullSource,
        checkpoint: str | None,
        filters: dict[str, str],
        updated_since: float | None,
    ) -> Iterator[ListPage]:
        base, headers = _request_basics(source)
        url: str | None
        params: dict[str, str] | None
        if checkpoint is None:
            url = f"{base}/repos/{_repository(source.settings)}/{source.collection}"
            params = {**filters, "per_page": str(self.max_page_size)}
        else:
            http.require_same_origin(checkpoint, base)
            url, params = checkpoint, None
        while url is not None:
            body, response = http.get_json(url, params=params, headers=headers)
            if not isinstance(body, list):
                raise PullFailed("bad_response", f"GitHub's {source.collection} list is not a JSON array")
            records = [
                _listed(item, index, source.collection)
                for index, item in enumerate(body)
                # In the issues list, an item with a `pull_request` key is a pull request.
                if source.collection != "issues" or not (isinstance(item, dict) and "pull_request" in item)
            ]
            url, params = http.next_link(response, same_origin_as=base), None
            if updated_since is not None:
                changed = [record for record in records if _updated_at(record) >= updated_since]
                if len(changed) < len(records):
                    url = None  # newest first: the rest of the list changed before `since`
                records = changed
            yield ListPage(records=records, next_checkpoint=url)

    def writable_collections(self, settings: Mapping[str, Any]) -> Mapping[str, frozenset[str]]:
        return WRITABLE

    def write(
        self, http: ProviderHttp[ResponseT], source: PullSource, request: WriteRequest
    ) -> WrittenRecord:
        """`POST /repos/{owner}/{repo}/issues` with the data as its JSON body (`title` is required), or
        `PATCH /repos/{owner}/{repo}/issues/{number}`. The record id is the issue's `number`, as the list's
        and the webhooks' are."""
        check_write("GitHub", WRITABLE, request)
        url, headers = _issues_url(source)
        if request.kind == "update":
            number = numeric_id("GitHub", str(request.record_id), "an issue is named by its number")
            url = f"{url}/{number}"
        method = "POST" if request.kind == "create" else "PATCH"
        body, _ = http.send(method, url, json_body=dict(request.data or {}), headers=headers)
        issue = _as_listed(answered_object("GitHub", body))
        written = issue.get("number")
        if not isinstance(written, int) or isinstance(written, bool):
            raise unreadable_answer(f"GitHub answered an issue {request.kind} without its number")
        return WrittenRecord(record_id=str(written), data=issue, version=self.record_version(issue))

    def read_record(self, http: ProviderHttp[ResponseT], source: PullSource, record_id: str) -> Any | None:
        """`GET /repos/{owner}/{repo}/issues/{number}` as the list shows it; None on a 404 or a 410 (a
        deleted issue), and for a pull request, which the issues collection leaves out."""
        number = numeric_id("GitHub", record_id, "an issue is named by its number")
        issues_url, headers = _issues_url(source)
        url = f"{issues_url}/{number}"
        found = record_or_none(lambda: http.get_json(url, headers=headers)[0])
        if not isinstance(found, dict) or "pull_request" in found:
            return None
        return _as_listed(found)

    def error_message(self, body: Any) -> str | None:
        """`{"message": "Validation Failed", "errors": [{"resource", "field", "code"} | {"message"} |
        "..."]}`: the message, then each error (`Issue.title: missing_field`)."""
        if not isinstance(body, dict):
            return None
        message = first_string(body.get("message"))
        errors = body.get("errors")
        found = [_error_detail(error) for error in errors] if isinstance(errors, list) else []
        details = [detail for detail in found if detail]
        if not details:
            return message
        return f"{message or 'GitHub refused the request'}: {'; '.join(details)}"


def _error_detail(error: object) -> str | None:
    if isinstance(error, str):
        return first_string(error)
    if not isinstance(error, dict):
        return None
    own = first_string(error.get("message"))
    if own:
        return own
    where = ".".join(
        part for part in (error.get("resource"), error.get("field")) if isinstance(part, str) and part
    )
    code = first_string(error.get("code"))
    return ": ".join(part for part in (where, code) if part) or None


def _as_listed(issue: dict[str, Any]) -> dict[str, Any]:
    """A single issue as the issues list shows it."""
    return {key: value for key, value in issue.items() if key not in SINGLE_ISSUE_ONLY}


def _request_basics(source: PullSource) -> tuple[str, dict[str, str]]:
    """The API's base URL and the headers of every request, once the source is checked."""
    if source.collection not in PROVIDER.collections:
        raise PullFailed(
            "bad_request", f"GitHub has no collection {source.collection!r}", key="unknown_collection"
        )
    if not source.base_url:
        raise PullFailed("bad_request", "the connection has no api_base_url", key="missing_base_url")
    headers = {
        "Authorization": f"Bearer {credential(source, 'token')}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
    }
    return source.base_url.rstrip("/"), headers


def _issues_url(source: PullSource) -> tuple[str, dict[str, str]]:
    """`/repos/{owner}/{repo}/issues` on the API, and the headers."""
    base, headers = _request_basics(source)
    return f"{base}/repos/{_repository(source.settings)}/issues", headers


def _updated_at(record: ListedRecord) -> float:
    # A record without a readable update time is kept: reading it again costs nothing, missing it would.
    updated = parse_iso_time(record.data.get("updated_at"))
    return math.inf if updated is None else updated


def _listed(item: object, index: int, collection: str) -> ListedRecord:
    number = item.get("number") if isinstance(item, dict) else None
    if not isinstance(item, dict) or not isinstance(number, int) or isinstance(number, bool):
        raise PullFailed("bad_response", f"GitHub's {collection} item [{index}] has no integer number")
    return ListedRecord(record_id=str(number), data=item, created_at=parse_iso_time(item.get("created_at")))


def _repository(settings: Mapping[str, Any]) -> str:
    repository = settings.get("repository")
    if not is_repository(repository):
        raise PullFailed(
            "bad_request",
            "GitHub pulls need settings.repository as 'owner/repo'",
            key="invalid_settings",
            data={"field": "settings.repository"},
        )
    return repository


def _parse_payload(request: WebhookRequest) -> Any:
    """The JSON payload, sent as the body (`application/json`) or as the `payload` form field
    (`application/x-www-form-urlencoded`, the other content type a GitHub webhook may be set to)."""
    content_type = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    body = request.body
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = urllib.parse.parse_qs(body.decode(), strict_parsing=True, max_num_fields=16)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedPayload("the form body is not URL-encoded", key="malformed_payload") from exc
        fields = form.get("payload", [])
        if len(fields) != 1:
            raise MalformedPayload("the form body holds one 'payload' field", key="malformed_payload")
        body = fields[0].encode()
    return parse_json_body(body)


PROVIDER = GitHub()
