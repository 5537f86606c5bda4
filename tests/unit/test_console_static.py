"""The console's static files, read as they ship: only served types, no inline script or style for the
policy to refuse, no HTML built from strings, the key kept in sessionStorage alone, and no logging."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pullbridge.console import CONTENT_TYPES, PAGE_FILE, STATIC_DIR, is_console_path
from tests.paths import REPO_ROOT

SCRIPTS = sorted(STATIC_DIR.glob("*.js"))
# Every way a script could turn a string into markup or code.
HTML_SINKS = re.compile(
    r"\binnerHTML\b|\bouterHTML\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(|"
    r"createContextualFragment|DOMParser|srcdoc"
)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.script_text = ""
        self.styles = 0
        self.inline_attributes: list[str] = []
        self.references: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.inline_attributes += [name for name in attributes if name == "style" or name.startswith("on")]
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
        if tag == "style":
            self.styles += 1
        for name in ("src", "href"):
            value = attributes.get(name)
            if value and value.startswith("console/assets/"):
                self.references.append(value.removeprefix("console/assets/"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data.strip()


def _page() -> _Page:
    page = _Page()
    page.feed((STATIC_DIR / PAGE_FILE).read_text())
    return page


def test_every_shipped_file_has_a_type_the_console_serves() -> None:
    names = sorted(path.name for path in STATIC_DIR.iterdir() if path.is_file())
    assert names
    assert [name for name in names if "." + name.rsplit(".", 1)[-1] not in CONTENT_TYPES] == []


def test_sam_build_ships_every_console_file_in_the_layer() -> None:
    """`sam build` copies the package's non-Python files too, so the layer serves the console as is."""
    built = REPO_ROOT / ".aws-sam" / "build" / "SharedLayer" / "python" / "pullbridge"
    if not (built / "console.py").is_file():
        pytest.skip("no sam build output with the console: `make test` builds the layer before the tests")
    shipped = sorted(path.name for path in (built / STATIC_DIR.name).iterdir())
    assert shipped == sorted(path.name for path in STATIC_DIR.iterdir() if path.is_file())


def test_the_page_has_one_module_script_by_url_and_nothing_inline() -> None:
    page = _page()

    assert page.scripts == [{"type": "module", "src": "console/assets/app.js"}]
    assert page.script_text == ""
    assert page.styles == 0
    assert page.inline_attributes == []


def test_everything_the_page_and_the_scripts_refer_to_is_shipped() -> None:
    imports = {name for script in SCRIPTS for name in re.findall(r'from "\./([\w.-]+)"', script.read_text())}
    for name in {*_page().references, *imports}:
        assert (STATIC_DIR / name).is_file(), name


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_no_script_builds_markup_or_code_from_strings(script: Path) -> None:
    assert HTML_SINKS.findall(script.read_text()) == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_no_script_logs_or_keeps_anything_outside_session_storage(script: Path) -> None:
    assert re.findall(r"\bconsole\.\w+\(|localStorage|document\.cookie|indexedDB", script.read_text()) == []


def test_only_the_api_module_touches_storage_and_the_key_goes_only_in_a_header() -> None:
    users = [script.name for script in SCRIPTS if "sessionStorage" in script.read_text()]
    assert users == ["api.js"]
    api = (STATIC_DIR / "api.js").read_text()
    assert "authorization: `Bearer ${apiKey" in api
    assert not re.search(r"searchParams\.set\([^)]*[kK]ey", api)


def test_the_stylesheet_loads_nothing_from_elsewhere() -> None:
    stylesheet = (STATIC_DIR / "console.css").read_text()
    assert "@import" not in stylesheet
    assert re.findall(r"url\(", stylesheet) == []


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/console", True),
        ("/console/assets/app.js", True),
        ("/console/", False),
        ("/console/assets/", False),
        ("/console/assets/a/b.js", False),
        ("/console/assets/../events", False),
        ("/consoles", False),
        ("/events", False),
    ],
)
def test_the_console_paths_and_nothing_else_skip_the_key(path: str, public: bool) -> None:
    assert is_console_path(path) is public
