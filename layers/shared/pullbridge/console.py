"""The console (`GET /console`): static HTML, CSS and JavaScript shipped in this package's
`console_static/`, served by the API function with a policy that lets the page run only its own files.

The page needs no API key to load: it signs in in the browser and calls the public API with the key,
like any client. Nothing here is built: the files are served as they are in the repository.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response

from pullbridge.errors import NotFound

PAGE_PATH = "/console"
ASSETS_PREFIX = "/console/assets/"
STATIC_DIR = Path(__file__).with_name("console_static")
PAGE_FILE = "index.html"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Names carry no content hash (there is no build step), so a browser revalidates each time: a deploy
    # is seen at the next load, and an unchanged file costs a 304.
    "Cache-Control": "no-cache",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class StaticFile:
    name: str
    body: str
    content_type: str
    etag: str


def is_console_path(path: str) -> bool:
    """The page and its assets (one path segment each), which need no API key."""
    if path == PAGE_PATH:
        return True
    name = path.removeprefix(ASSETS_PREFIX)
    return name != path and bool(name) and "/" not in name


@cache
def _files() -> dict[str, StaticFile]:
    """Read at the first console request, not at the cold start, and kept for the instance's life."""
    files = {}
    for path in sorted(STATIC_DIR.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_text(encoding="utf-8")
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
        files[path.name] = StaticFile(path.name, body, content_type, etag)
    return files


def page() -> StaticFile:
    return _files()[PAGE_FILE]


def asset(name: str) -> StaticFile:
    """One of the shipped files by its exact name: nothing else can be named, so no path escapes."""
    found = _files().get(name)
    if found is None or name == PAGE_FILE:
        raise NotFound(f"no console asset {name!r}", key="asset_not_found")
    return found


def respond(file: StaticFile, if_none_match: str | None) -> Response[str]:
    headers = {**SECURITY_HEADERS, "ETag": file.etag}
    if if_none_match is not None and file.etag in (tag.strip() for tag in if_none_match.split(",")):
        return Response(status_code=304, body="", headers=headers)
    return Response(status_code=200, content_type=file.content_type, body=file.body, headers=headers)
