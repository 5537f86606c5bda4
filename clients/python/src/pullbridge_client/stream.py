"""`EventStream`: the events after a cursor, page after page, with a cursor to resume after any of them.

A resume cursor made in the middle of a page is client-made (`pbr1:` + base64url JSON of the page's
server cursor, how many of its events were consumed and the last one's id): the API only knows cursors
at page ends, and a page read again from the same cursor begins with the same events.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Generator, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Self

from pullbridge_client.errors import ResumeError
from pullbridge_client.models import Event

if TYPE_CHECKING:
    from pullbridge_client.client import Client

__all__ = ["EventStream"]

RESUME_PREFIX = "pbr1:"
MAX_PAGE_SIZE = 500


def encode_resume(page_cursor: str | None, consumed: int, last_id: str) -> str:
    payload = json.dumps({"c": page_cursor, "n": consumed, "a": last_id}, separators=(",", ":"))
    return RESUME_PREFIX + base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()


def decode_resume(cursor: str | None) -> tuple[str | None, int, str | None]:
    """(server cursor, events of its page already consumed, id of the last one consumed)."""
    if cursor is None or not cursor.startswith(RESUME_PREFIX):
        return cursor, 0, None
    text = cursor[len(RESUME_PREFIX) :]
    try:
        payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        page_cursor, consumed, last_id = payload["c"], payload["n"], payload["a"]
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise ResumeError("malformed resume cursor") from exc
    valid = (
        (page_cursor is None or isinstance(page_cursor, str))
        and isinstance(consumed, int)
        and 0 < consumed <= MAX_PAGE_SIZE
        and isinstance(last_id, str)
    )
    if not valid:
        raise ResumeError("malformed resume cursor")
    return page_cursor, consumed, last_id


class EventStream(Iterator[Event]):
    """The events after a cursor, following `next_cursor` page after page.

    `cursor` is where to resume: after each event is yielded it is the cursor *after that event* (and it
    also advances over pages that held nothing matching). Save it once the event is processed; passing it
    back as `iter_events(cursor=...)` (or `pullbridge events tail --cursor`) continues with the next event,
    with no loss and no duplicate. At a page's end it is the server's own `next_cursor`; in the middle of
    a page it is a client-made token (`pbr1:...`) that only this client and the CLI understand.

    Without `follow`, the stream ends when the log has nothing more (`has_more` false). With `follow` it
    long-polls (`wait` seconds per request) until closed: `close()`, `with`, or just stop iterating.
    """

    def __init__(
        self,
        client: Client,
        cursor: str | None,
        *,
        follow: bool,
        limit: int,
        wait: float,
        filters: Mapping[str, str | None],
    ) -> None:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1-{MAX_PAGE_SIZE}")
        self.cursor: str | None = cursor
        self._client = client
        self._follow = follow
        self._limit = limit
        self._wait = wait
        self._filters = dict(filters)
        self._events = self._run()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        """Stops the stream; `cursor` stays where the last yielded event left it."""
        self._events.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> Generator[Event, None, None]:
        page_cursor, skip, last_id = decode_resume(self.cursor)
        while True:
            page = self._client.list_events(
                page_cursor,
                limit=max(self._limit, skip),
                wait=self._wait if self._follow else 0,
                **self._filters,
            )
            events = page.data
            start = 0
            if last_id is not None:
                start = _skip_through(events, skip, last_id)
                last_id = None
            for index in range(start, len(events)):
                event = events[index]
                last_of_page = index == len(events) - 1
                self.cursor = (
                    page.next_cursor if last_of_page else encode_resume(page_cursor, index + 1, event.id)
                )
                yield event
            self.cursor = page_cursor = page.next_cursor
            skip = 0
            if not page.has_more:
                if not self._follow:
                    return
                if self._wait < 1 and not events:
                    self._client.sleep(1.0)  # without long polling, poll at most once a second


def _skip_through(events: list[Event], consumed: int, last_id: str) -> int:
    """Where to continue in a resumed page: after `last_id`, which the saved cursor says it had consumed."""
    if len(events) >= consumed and events[consumed - 1].id == last_id:
        return consumed
    for index, event in enumerate(events):
        if event.id == last_id:
            return index + 1
    raise ResumeError(
        "the resume cursor does not match this stream: use the filters it was made with "
        "(or its events have expired)"
    )
