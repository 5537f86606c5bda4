"""Fake GitHub: `GET /repos/{owner}/{repo}/{issues,pulls}` and the `/repositories/{id}/...` form its `Link`s
use. `state` (open|closed|all), `per_page` (<= 100), `page`, `sort` (created|updated|...) and `direction`
(asc|desc, default desc); `since` (ISO 8601, updated at or after) on the issues list only: the pulls list
takes no `since`, and GitHub ignores a parameter a list does not take. The issues list holds the pull
requests too, as issues with a `pull_request` key. Issues and pull requests share one number space.

Issues are also written, as GitHub does: `POST /repos/{owner}/{repo}/issues` (201; `title` required, else
422 `Validation Failed` with a `missing_field` error), `PATCH .../issues/{number}` (`state` open|closed,
closing sets `closed_at` and `state_reason`), and read one by one, `GET .../issues/{number}` (a pull
request's number answers the pull request as an issue). A single issue's answer carries `closed_by`, which
the list leaves out. There is no delete: `DELETE .../issues/{number}` is a 404, as on GitHub."""

from __future__ import annotations

import copy
import itertools
import threading
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from tests.fakes.datasets import Dataset
from tests.fakes.fake_errors import github_error
from tests.fakes.fake_http import (
    BASE_TIME,
    Answer,
    FakeRequest,
    Route,
    Write,
    fixture_json,
    int_param,
    iso,
    json_object,
    number,
    param,
    parse_time,
)

GITHUB_COLLECTIONS = ("issues", "pulls")
DOCS = "https://docs.github.com/rest/issues/issues"
STATE_REASONS = {"completed", "not_planned", "reopened", None}
SORTS = {
    "issues": ("created", "updated", "comments"),
    "pulls": ("created", "updated", "popularity", "long-running"),
}


class SharedNumbers:
    def __init__(self) -> None:
        self._next = 1

    def take(self) -> int:
        number, self._next = self._next, self._next + 1
        return number

    def claim(self, value: Any) -> None:
        """A record added with its own number: later ones are numbered after it."""
        self._next = max(self._next, number(value) + 1)


def github_factory(
    template: dict[str, Any], repository: str, collection: str, numbers: SharedNumbers
) -> Callable[[int], dict[str, Any]]:
    def make(seq: int) -> dict[str, Any]:
        record_number = numbers.take()
        created = iso(BASE_TIME + 60 * record_number)
        closed = record_number % 3 == 0
        kind = "issues" if collection == "issues" else "pull"
        record = copy.deepcopy(template)
        record.update(
            id=10_000 + record_number,
            number=record_number,
            title=f"Test {'issue' if collection == 'issues' else 'pull request'} {record_number}",
            state="closed" if closed else "open",
            created_at=created,
            updated_at=created,
            closed_at=created if closed else None,
            url=f"https://api.github.com/repos/{repository}/{'issues' if kind == 'issues' else 'pulls'}/{record_number}",
            html_url=f"https://github.com/{repository}/{kind}/{record_number}",
        )
        return record

    return make


def pull_as_issue(pull: dict[str, Any], repository: str) -> dict[str, Any]:
    """A pull request as the issues list shows it: an issue with a `pull_request` key."""
    record_number = pull.get("number")
    api = f"https://api.github.com/repos/{repository}"
    return {
        "url": f"{api}/issues/{record_number}",
        "id": pull.get("id"),
        "number": record_number,
        "title": pull.get("title"),
        "user": pull.get("user"),
        "state": pull.get("state"),
        "created_at": pull.get("created_at"),
        "updated_at": pull.get("updated_at"),
        "closed_at": pull.get("closed_at"),
        "body": pull.get("body"),
        "pull_request": {
            "url": f"{api}/pulls/{record_number}",
            "html_url": f"https://github.com/{repository}/pull/{record_number}",
            "diff_url": f"https://github.com/{repository}/pull/{record_number}.diff",
            "patch_url": f"https://github.com/{repository}/pull/{record_number}.patch",
            "merged_at": pull.get("merged_at"),
        },
    }


def _stamp(record: dict[str, Any], at: float) -> None:
    record["updated_at"] = iso(at)


class FakeGitHub:
    def __init__(
        self,
        lock: threading.RLock,
        clock: Callable[[], float],
        base_url: Callable[[], str],
        repository: str,
        repository_id: int,
    ) -> None:
        self._base_url = base_url
        self._lock = lock
        self._clock = clock
        self.repository = repository
        self.repository_id = repository_id
        self.numbers = SharedNumbers()
        issue_template = fixture_json("github/rest/paginate-issues.normalized-fixture.json")[0]["response"][0]
        pull_template = fixture_json("github/pull_request/opened.payload.json")["pull_request"]
        self._new_issue = github_factory(issue_template, repository, "issues", self.numbers)
        self._actor = copy.deepcopy(issue_template["user"])
        self.datasets = {
            collection: Dataset(
                "github",
                collection,
                id_field="number",
                factory=github_factory(template, repository, collection, self.numbers),
                sort_key=lambda record, seq: -number(record.get("number")),
                sequence=itertools.count(1),
                lock=lock,
                clock=clock,
                stamp=_stamp,
                claim=self.numbers.claim,
            )
            for collection, template in (("issues", issue_template), ("pulls", pull_template))
        }

    def route(self, method: str, parts: list[str]) -> Route | None:
        """`/repos/{owner}/{repo}/{collection}`, and the `/repositories/{id}/...` form its `Link`s use;
        `/repos/{owner}/{repo}/issues[/{number}]` for the writes and single reads."""
        if len(parts) in (4, 5) and parts[0] == "repos" and parts[3] == "issues":
            routed = self._issue_route(method, parts)
            if routed is not None:
                return routed
        if method != "GET":
            return None
        if len(parts) == 4 and parts[0] == "repos" and parts[3] in GITHUB_COLLECTIONS:
            if parts[1:3] != self.repository.split("/"):
                return "github", lambda request: Answer(404, {"message": "Not Found"})
            return "github", lambda request: self._list(parts[3], request)
        repository_path = ["repositories", str(self.repository_id)]
        if len(parts) == 3 and parts[:2] == repository_path and parts[2] in GITHUB_COLLECTIONS:
            return "github", lambda request: self._list(parts[2], request)
        return None

    # one issue: create, update, read

    def _issue_route(self, method: str, parts: list[str]) -> Route | None:
        if parts[1:3] != self.repository.split("/"):
            return "github", lambda request: Answer(404, github_error("Not Found"))
        if len(parts) == 4:
            return ("github", Write(self._create)) if method == "POST" else None
        issue_number = parts[4]
        if method == "GET":
            return "github", lambda request: self._read(issue_number)
        if method == "PATCH":
            return "github", Write(lambda request: self._update(issue_number, request))
        if method in ("DELETE", "PUT", "POST"):
            # GitHub's REST API has no such route: an issue cannot be deleted.
            return "github", Write(lambda request: Answer(404, github_error("Not Found")))
        return None

    def _create(self, request: FakeRequest) -> Answer:
        fields = json_object(request)
        if fields is None:
            return Answer(400, github_error("Problems parsing JSON"))
        title = fields.get("title")
        if title is None or title == "":
            return _invalid("missing_field", "title", "create-an-issue")
        problem = _field_problem(fields)
        if problem is not None:
            return _invalid("invalid", problem, "create-an-issue")
        with self._lock:
            record = self._new_issue(0)
            now = iso(self._clock())
            record.update(
                title=str(title),
                body=fields.get("body"),
                state="open",
                state_reason=None,
                closed_at=None,
                created_at=now,
                updated_at=now,
                comments=0,
                locked=False,
                user=copy.deepcopy(self._actor),
                **self._people_and_labels(fields),
            )
            return Answer(201, self._single(self.datasets["issues"].add(record)))

    def _update(self, issue_number: str, request: FakeRequest) -> Answer:
        fields = json_object(request)
        if fields is None:
            return Answer(400, github_error("Problems parsing JSON"))
        with self._lock:
            try:
                current = self.datasets["issues"].get(issue_number)
            except KeyError:
                return Answer(404, github_error("Not Found", documentation=f"{DOCS}#update-an-issue"))
            if "title" in fields and (fields["title"] is None or fields["title"] == ""):
                return _invalid("missing_field", "title", "update-an-issue")
            problem = _field_problem(fields)
            if problem is not None:
                return _invalid("invalid", problem, "update-an-issue")
            changes: dict[str, Any] = {name: fields[name] for name in ("title", "body") if name in fields}
            changes.update(self._people_and_labels(fields))
            changes.update(self._state_change(current, fields))
            return Answer(200, self._single(self.datasets["issues"].update(issue_number, **changes)))

    def _read(self, issue_number: str) -> Answer:
        with self._lock:
            try:
                return Answer(200, self._single(self.datasets["issues"].get(issue_number)))
            except KeyError:
                pass
            try:
                pull = self.datasets["pulls"].get(issue_number)
            except KeyError:
                return Answer(404, github_error("Not Found", documentation=f"{DOCS}#get-an-issue"))
            return Answer(200, self._single(pull_as_issue(pull, self.repository)))

    def _single(self, issue: dict[str, Any]) -> dict[str, Any]:
        """An issue as a single issue's answer shows it: with `closed_by`, which the list leaves out."""
        closed = issue.get("state") == "closed"
        return {**issue, "closed_by": copy.deepcopy(self._actor) if closed else None}

    def _state_change(self, current: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        state = fields.get("state", current.get("state"))
        changes: dict[str, Any] = {"state": state} if "state" in fields else {}
        if state == "closed" and current.get("state") != "closed":
            changes.update(
                closed_at=iso(self._clock()), state_reason=fields.get("state_reason") or "completed"
            )
        elif state == "open" and current.get("state") == "closed":
            changes.update(closed_at=None, state_reason="reopened")
        elif "state_reason" in fields:
            changes["state_reason"] = fields["state_reason"]
        return changes

    def _people_and_labels(self, fields: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if "labels" in fields:
            names = [
                label if isinstance(label, str) else label.get("name") for label in fields["labels"] or []
            ]
            found["labels"] = [_label(str(name), self.repository) for name in names]
        logins = fields.get("assignees")
        if logins is None and fields.get("assignee") is not None:
            logins = [fields["assignee"]]
        if logins is not None or "assignee" in fields:
            people = [self._person(str(login)) for login in logins or []]
            found.update(assignees=people, assignee=people[0] if people else None)
        return found

    def _person(self, login: str) -> dict[str, Any]:
        person: dict[str, Any] = copy.deepcopy(self._actor)
        person.update(login=login, url=f"https://api.github.com/users/{login}")
        person["html_url"] = f"https://github.com/{login}"
        return person

    def _list(self, collection: str, request: FakeRequest) -> Answer:
        query = request.query
        per_page = min(int_param(query, "per_page", default=30, maximum=None), 100)
        page_number = int_param(query, "page", default=1, maximum=None)
        filters = {
            name: value
            for name in ("state", "sort", "direction", "since")
            if (value := param(query, name)) is not None
        }
        state, sort = filters.get("state", "open"), filters.get("sort", "created")
        direction = filters.get("direction", "desc")
        since = parse_time(filters["since"]) if "since" in filters and collection == "issues" else None
        if (
            state not in ("open", "closed", "all")
            or sort not in SORTS[collection]
            or direction not in ("asc", "desc")
            or ("since" in filters and collection == "issues" and since is None)
        ):
            return Answer(422, {"message": "Validation Failed"})
        listed = [
            record
            for record in self._merged(collection, sort, direction)
            if (state == "all" or record.get("state") == state)
            and (since is None or (parse_time(record.get("updated_at")) or 0) >= since)
        ]
        start = (page_number - 1) * per_page
        page = [copy.deepcopy(record) for record in listed[start : start + per_page]]
        last = max(1, -(-len(listed) // per_page))
        return Answer(
            200, page, page=page_number, headers=self._links(collection, filters, per_page, page_number, last)
        )

    def _merged(self, collection: str, sort: str, direction: str) -> list[dict[str, Any]]:
        records = [record for _, record in self.datasets[collection].ordered()]
        if collection == "issues":
            records += [
                pull_as_issue(record, self.repository) for _, record in self.datasets["pulls"].ordered()
            ]
        if sort == "updated":
            key: Callable[[dict[str, Any]], Any] = lambda record: (  # noqa: E731
                parse_time(record.get("updated_at")) or 0,
                number(record.get("number")),
            )
        else:
            key = lambda record: number(record.get("number"))  # noqa: E731 - created order is number order
        return sorted(records, key=key, reverse=direction == "desc")

    def _links(
        self, collection: str, filters: dict[str, str], per_page: int, page_number: int, last: int
    ) -> dict[str, str]:
        link_base = f"{self._base_url()}/repositories/{self.repository_id}/{collection}"

        def link(page: int) -> str:
            return f"{link_base}?{urlencode({**filters, 'per_page': per_page, 'page': page})}"

        links = []
        if page_number > 1:
            links.append(f'<{link(page_number - 1)}>; rel="prev"')
        if page_number < last:
            links += [f'<{link(page_number + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        if page_number > 1:
            links.append(f'<{link(1)}>; rel="first"')
        return {"Link": ", ".join(links)} if links else {}


def _invalid(code: str, field: str, operation: str) -> Answer:
    """GitHub's 422 for a field it refuses."""
    error = {"resource": "Issue", "code": code, "field": field}
    return Answer(422, github_error("Validation Failed", [error], f"{DOCS}#{operation}"))


def _field_problem(fields: dict[str, Any]) -> str | None:
    """The first field whose value GitHub refuses, or None."""
    checks: dict[str, Callable[[Any], bool]] = {
        "title": lambda value: isinstance(value, str | int) and not isinstance(value, bool),
        "body": lambda value: value is None or isinstance(value, str),
        "state": lambda value: value in ("open", "closed"),
        "state_reason": lambda value: value in STATE_REASONS,
        "labels": lambda value: (
            value is None or (isinstance(value, list) and all(isinstance(item, str | dict) for item in value))
        ),
        "assignees": lambda value: (
            value is None or (isinstance(value, list) and all(isinstance(item, str) for item in value))
        ),
        "assignee": lambda value: value is None or isinstance(value, str),
    }
    for name, check in checks.items():
        if name in fields and not check(fields[name]):
            return name
    return None


def _label(name: str, repository: str) -> dict[str, Any]:
    return {
        "id": zlib.crc32(name.encode()),
        "node_id": "MDU6TGFiZWwx",
        "url": f"https://api.github.com/repos/{repository}/labels/{name}",
        "name": name,
        "color": "ededed",
        "default": False,
        "description": None,
    }
