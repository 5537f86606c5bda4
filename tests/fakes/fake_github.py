"""Fake GitHub: `GET /repos/{owner}/{repo}/{issues,pulls}` and the `/repositories/{id}/...` form its `Link`s
use. `state` (open|closed|all), `per_page` (<= 100), `page`, `sort` (created|updated|...) and `direction`
(asc|desc, default desc); `since` (ISO 8601, updated at or after) on the issues list only: the pulls list
takes no `since`, and GitHub ignores a parameter a list does not take. The issues list holds the pull
requests too, as issues with a `pull_request` key. Issues and pull requests share one number space."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from tests.fakes.datasets import Dataset
from tests.fakes.fake_http import (
    BASE_TIME,
    Answer,
    FakeRequest,
    Route,
    fixture_json,
    int_param,
    iso,
    number,
    param,
    parse_time,
)

GITHUB_COLLECTIONS = ("issues", "pulls")
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
        self.repository = repository
        self.repository_id = repository_id
        self.numbers = SharedNumbers()
        issue_template = fixture_json("github/rest/paginate-issues.normalized-fixture.json")[0]["response"][0]
        pull_template = fixture_json("github/pull_request/opened.payload.json")["pull_request"]
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
        """`/repos/{owner}/{repo}/{collection}`, and the `/repositories/{id}/...` form its `Link`s use."""
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
