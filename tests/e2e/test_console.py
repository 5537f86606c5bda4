"""The console (`GET /console`) in a real browser: Debian's Chromium, driven by Playwright, against the
local stack over real HTTP.

Each test signs in with a tenant of its own, so what it sees is only what it made. Every test also
checks, as it ends, that the page broke none of its own Content-Security-Policy, threw nothing, never put
the key in a URL or a console message, and ran no injected script (`window.__pwned`).

Screenshots of every page are written to `.artifacts/console/` (git-ignored); `docs/console-events.png`
in the README is the events page from `test_the_live_tail_shows_webhooks_as_they_arrive`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from pullbridge.auth import issue_api_key
from pullbridge.console import CONTENT_SECURITY_POLICY
from pullbridge.settings import StorageSettings
from pullbridge.storage import Store, dynamodb_client
from pullbridge_local.quickstart import banner, create_standard_connection, new_webhook_secret
from pullbridge_local.server import LocalStack
from tests.fakes.provider_server import FakeProviderServer
from tests.paths import REPO_ROOT
from tests.support import standard_webhook_headers

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling home, which a closed network answers slowly.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / ".artifacts" / "console"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
XSS_NAME = "<img src=x onerror=window.__pwned=1>"
XSS_SCRIPT = "<script>window.__pwned=1</script>"
STEP_TIMEOUT_MS = 15_000  # ms: a pull, a long poll's answer or a page; everything local answers far sooner

# Run in each page before its own scripts: records what the Content-Security-Policy blocked.
WATCH_THE_PAGE = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"the console's browser tests need Debian's Chromium at {CHROMIUM}: `make test` installs it "
            "(apt-get install chromium, as root); here it is not installed and could not be"
        )
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    except PlaywrightError as exc:
        pytest.skip(f"Chromium at {CHROMIUM} is installed but cannot be launched here: {exc.message}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield browser
    browser.close()


def _tenant_key(local_stack: LocalStack) -> str:
    """A new tenant of the local stack and its API key, written straight to the stack's tables."""
    endpoint = local_stack.dynamodb_endpoint
    settings = StorageSettings(
        events_table="EventsTable", control_table="ControlTable", dynamodb_endpoint=endpoint
    )
    store = Store(dynamodb_client(endpoint), settings)
    return issue_api_key(store, f"console-{uuid.uuid4().hex[:12]}", name="console")


@dataclass
class Console:
    """One signed-out browser page on the console, with the API key of a fresh tenant and an API client."""

    page: Page
    base_url: str
    key: str
    api: httpx.Client
    width: int
    requested_urls: list[str] = field(default_factory=list)
    console_messages: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # the key stays out of test reports too
        return f"Console({self.page.url!r}, {self.width} px)"

    def open(self, route: str = "") -> Any:
        return self.page.goto(f"{self.base_url}/console{route}")

    def sign_in(self, key: str | None = None) -> None:
        self.page.get_by_label("API key").fill(key or self.key)
        self.page.get_by_label("API key").press("Enter")

    def signed_in(self, route: str = "") -> None:
        self.open(route)
        self.sign_in()
        expect(self.page.get_by_role("navigation", name="Main")).to_be_visible()

    def go(self, route: str) -> None:
        """A route of the signed-in console, as a link would reach it (the key stays in the tab)."""
        self.page.evaluate("(hash) => { window.location.hash = hash; }", route)

    def screenshot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}-{self.width}.png"
        self.page.screenshot(path=path, full_page=True, animations="disabled")
        return path

    def session_key(self) -> Any:
        return self.page.evaluate("() => sessionStorage.getItem('pullbridge.api_key')")

    def connection(self, name: str, **fields: Any) -> dict[str, Any]:
        body = {"provider": "standard", "name": name, "webhook_secrets": [new_webhook_secret()], **fields}
        response = self.api.post("/connections", json=body)
        assert response.status_code == 201, response.text
        return {**response.json(), "secret": body["webhook_secrets"][0]}

    def webhook(self, connection: dict[str, Any], event_type: str, data: dict[str, Any]) -> str:
        body = json.dumps({"type": event_type, "timestamp": "2026-01-01T00:00:00Z", "data": data}).encode()
        headers = standard_webhook_headers(connection["secret"], f"msg_{uuid.uuid4().hex}", body)
        response = httpx.post(connection["webhook_url"], content=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        (event_id,) = response.json()["event_ids"]
        return str(event_id)


@pytest.fixture
def open_console(browser: Browser, local_stack: LocalStack) -> Iterator[Callable[..., Console]]:
    opened: list[tuple[Console, Any]] = []

    def open_one(viewport: dict[str, int] = DESKTOP, **context_options: Any) -> Console:
        key = _tenant_key(local_stack)
        context = browser.new_context(viewport=viewport, **context_options)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.add_init_script(WATCH_THE_PAGE)
        page = context.new_page()
        api = httpx.Client(base_url=local_stack.url, headers={"authorization": f"Bearer {key}"}, timeout=30)
        console = Console(page, local_stack.url, key, api, viewport["width"])
        page.on("request", lambda request: console.requested_urls.append(request.url))
        page.on("console", lambda message: console.console_messages.append(message.text))
        page.on("pageerror", lambda error: console.page_errors.append(str(error)))
        opened.append((console, context))
        return console

    yield open_one

    for console, context in opened:
        try:
            _assert_the_page_stayed_clean(console)
        finally:
            console.api.close()
            context.close()


def _assert_the_page_stayed_clean(console: Console) -> None:
    if not console.page.is_closed() and console.page.url.startswith(console.base_url):
        assert console.page.evaluate("() => window.__cspViolations") == []
        assert console.page.evaluate("() => typeof window.__pwned") == "undefined"
    assert console.page_errors == []
    assert not [url for url in console.requested_urls if console.key in url]
    assert not [text for text in console.console_messages if console.key in text]


@pytest.fixture
def console(open_console: Callable[..., Console]) -> Console:
    return open_console()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


# --- the page and its policy ----------------------------------------------------------------------


def test_the_page_is_served_with_its_policy_and_runs_no_inline_script(console: Console) -> None:
    response = console.open()

    assert response.status == 200
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["content-type"] == "text/html; charset=utf-8"
    scripts = console.page.eval_on_selector_all(
        "script", "(nodes) => nodes.map((n) => [n.type, n.getAttribute('src'), n.textContent])"
    )
    assert scripts == [["module", "console/assets/app.js", ""]]
    assert console.page.locator("[style], style").count() == 0
    expect(console.page.get_by_role("heading", name="Sign in to pullbridge")).to_be_visible()
    console.screenshot("sign-in")


def test_a_wrong_key_is_refused_with_a_clear_message_and_nothing_is_kept(console: Console) -> None:
    console.open()

    console.sign_in("pb_not_a_key_of_this_stack_000000")

    expect(console.page.get_by_role("alert")).to_contain_text("That API key was refused (401 unauthorized)")
    expect(console.page.get_by_role("navigation", name="Main")).to_be_hidden()
    assert console.session_key() is None
    assert console.page.evaluate("() => localStorage.length + document.cookie.length") == 0


def test_sign_in_by_keyboard_keeps_the_key_in_session_storage_and_sign_out_forgets_it(
    console: Console,
) -> None:
    console.open()
    # The key field has the focus on arrival; Enter submits
    console.page.keyboard.type(console.key)
    console.page.keyboard.press("Enter")

    expect(console.page.get_by_role("heading", name="Connections")).to_be_visible()
    expect(console.page.get_by_text("No connections yet — create one")).to_be_visible()
    assert console.session_key() == console.key
    assert console.page.evaluate("() => localStorage.length + document.cookie.length") == 0
    assert console.key not in console.page.url

    # From the top of the page, the navigation is reachable with Tab, and the focus is visible on it
    console.page.reload()
    expect(console.page.get_by_role("heading", name="Connections")).to_be_visible()
    for _ in range(12):
        console.page.keyboard.press("Tab")
        if console.page.evaluate("() => document.activeElement.dataset.page") == "events":
            break
    else:
        pytest.fail("Tab never reached the Events link of the navigation")
    outline = console.page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    console.page.keyboard.press("Enter")
    expect(console.page.get_by_role("heading", name="Events")).to_be_visible()

    console.page.get_by_role("button", name="Sign out").click()

    expect(console.page.get_by_label("API key")).to_be_visible()
    assert console.session_key() is None
    console.page.reload()
    expect(console.page.get_by_label("API key")).to_be_visible()


def test_the_console_url_make_dev_prints_signs_in_with_the_key_it_prints(
    local_stack: LocalStack, open_console: Callable[..., Console]
) -> None:
    connection = create_standard_connection(local_stack.url, local_stack.api_key, name="dev")
    printed = banner(local_stack.url, local_stack.api_key, "embedded", connection)
    (line,) = [line for line in printed.splitlines() if line.lstrip().startswith("Console:")]
    assert local_stack.api_key not in line
    console = open_console()
    console.key = local_stack.api_key

    console.page.goto(line.split()[1])
    console.sign_in()

    expect(console.page.get_by_role("heading", name="Connections")).to_be_visible()


# --- connections ----------------------------------------------------------------------------------


def test_a_connection_is_created_copied_rotated_and_archived_and_its_hostile_name_stays_text(
    open_console: Callable[..., Console],
) -> None:
    console = open_console(permissions=["clipboard-read", "clipboard-write"])
    healthy = console.connection("billing-prod")
    console.webhook(healthy, "invoice.paid", {"id": "inv_1001"})
    console.signed_in("#/connections")
    secret = new_webhook_secret()

    # Create one through the form, with a name that is markup
    console.page.get_by_role("button", name="New connection").click()
    form = console.page.get_by_role("form", name="Create a connection")
    form.get_by_label("Name", exact=True).fill(XSS_NAME)
    form.get_by_label("Webhook secrets").fill(secret)
    form.get_by_role("button", name="Create connection").click()

    row = console.page.get_by_role("row").filter(has_text=XSS_NAME)
    expect(row).to_be_visible()
    assert console.page.locator("img[src='x']").count() == 0
    assert secret not in console.page.content()
    (created,) = [c for c in console.api.get("/connections").json()["data"] if c["name"] == XSS_NAME]
    assert created["webhook_secrets_count"] == 1
    # The webhook URL, copied to the clipboard
    row.get_by_role("button", name="Copy webhook URL").click()
    expect(row.get_by_role("status")).to_have_text("Copied")
    assert console.page.evaluate("() => navigator.clipboard.readText()") == created["webhook_url"]
    healthy_row = console.page.get_by_role("row").filter(has_text="billing-prod")
    expect(healthy_row.locator("time")).to_have_count(1)  # its last webhook, relative, exact on hover
    assert healthy_row.locator("time").first.get_attribute("title", timeout=1000)
    console.screenshot("connections")

    # Rotate: two secrets, the new and the current, both write-only
    new_secret = new_webhook_secret()
    row.get_by_role("button", name="Rotate secrets").click()
    rotate = console.page.get_by_role("form", name=f"Rotate the secrets of {XSS_NAME}")
    rotate.get_by_label("New webhook secrets").fill(new_secret)
    rotate.get_by_role("button", name="Add another").click()
    rotate.get_by_label("New webhook secrets 2").fill(secret)
    rotate.get_by_role("button", name="Save secrets").click()

    expect(console.page.get_by_text("replaced: 2 active")).to_be_visible()
    assert new_secret not in console.page.content()
    assert console.api.get(f"/connections/{created['id']}").json()["webhook_secrets_count"] == 2

    # Archive asks once more, then archives
    archive = console.page.get_by_role("row").filter(has_text=XSS_NAME).get_by_role("button", name="Archive")
    archive.click()
    console.page.get_by_role("row").filter(has_text=XSS_NAME).get_by_role(
        "button", name="Confirm archive"
    ).click()

    expect(console.page.get_by_role("row").filter(has_text=XSS_NAME)).to_have_count(0)
    assert console.api.get(f"/connections/{created['id']}").json()["status"] == "archived"
    assert console.page.evaluate("() => typeof window.__pwned") == "undefined"


# --- events ---------------------------------------------------------------------------------------


def test_the_live_tail_shows_webhooks_as_they_arrive_and_an_events_json_as_text(console: Console) -> None:
    billing = console.connection("billing-prod")
    hostile = console.connection(XSS_NAME)
    console.signed_in("#/events")
    expect(console.page.get_by_role("status").filter(has_text="Live")).to_be_visible()
    rows = console.page.locator("table.tail tbody tr")

    # Webhooks sent while the tail long-polls appear without a reload, newest first
    console.webhook(billing, "invoice.paid", {"id": "inv_1001", "amount_paid": 4200})
    console.webhook(billing, "customer.updated", {"id": "cus_42", "email": "ada@example.com"})
    console.webhook(billing, "invoice.payment_failed", {"id": "inv_1002", "attempt_count": 2})
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("invoice.payment_failed")
    expect(rows.first.locator("time")).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\dT"))
    console.screenshot("events")

    hostile_id = console.webhook(hostile, "note.created", {"id": "note_1", "body": XSS_SCRIPT})
    expect(rows).to_have_count(4)
    expect(rows.first).to_contain_text(XSS_NAME)  # the connection's name, as text
    assert console.page.locator("img[src='x']").count() == 0

    # One event: its JSON, as text in a <pre>
    rows.first.get_by_role("link", name=hostile_id).click()
    pre = console.page.locator("pre.json")
    expect(pre).to_contain_text(XSS_SCRIPT)
    assert json.loads(pre.inner_text())["data"]["body"] == XSS_SCRIPT
    assert console.page.locator("script").count() == 1
    assert console.page.evaluate("() => typeof window.__pwned") == "undefined"
    console.screenshot("event")

    # The filters: one connection's events only
    console.go("#/events")
    console.page.get_by_label("Connection").fill(billing["id"])
    console.page.get_by_label("Type").fill("invoice.paid")
    console.page.get_by_role("button", name="Apply").click()
    expect(console.page.get_by_role("status").filter(has_text="Live")).to_be_visible()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("invoice.paid")
    assert "type=invoice.paid" in console.page.url


# --- pulls ----------------------------------------------------------------------------------------


def _stripe_subscription(console: Console, fake: FakeProviderServer, name: str) -> dict[str, Any]:
    connection = console.connection(
        name,
        provider="stripe",
        webhook_secrets=["whsec_console"],
        credentials=fake.credentials("stripe"),
        api_base_url=fake.base_url,
    )
    response = console.api.post(
        "/external-event-subscriptions", json={"connection_id": connection["id"], "collection": "customers"}
    )
    assert response.status_code == 201, response.text
    return {**response.json(), "connection": connection}


def test_a_triggered_pull_is_watched_until_it_succeeds(console: Console, fake: FakeProviderServer) -> None:
    fake.dataset("stripe", "customers").clear()
    fake.dataset("stripe", "customers").seed(3)
    subscription = _stripe_subscription(console, fake, "acme-stripe")
    console.signed_in("#/pulls")
    expect(console.page.get_by_role("row").filter(has_text="customers")).to_be_visible()
    console.screenshot("pulls")

    console.page.get_by_role("row").filter(has_text="customers").get_by_role(
        "button", name="Pull now"
    ).click()

    expect(console.page).to_have_url(re.compile(f"#/pulls/{subscription['id']}$"))
    item = console.page.locator(".timeline-item").first
    expect(item.locator(".badge")).to_have_text("success")
    expect(item.locator(".stats")).to_contain_text("created3")
    expect(item).to_contain_text("Full scan")
    (pull,) = console.api.get(
        "/external-event-pulls", params={"external_event_subscription_id": subscription["id"]}
    ).json()["data"]
    assert pull["status"] == "success"
    assert pull["id"] in item.inner_text()
    console.screenshot("pull-timeline")


# --- consumers ------------------------------------------------------------------------------------


def test_a_dead_letter_is_redriven_and_another_discarded(console: Console) -> None:
    connection = console.connection("orders")
    sent = sorted(console.webhook(connection, "order.created", {"id": f"ord_{n}"}) for n in range(2))
    consumer = console.api.post(
        "/consumers",
        json={"name": "fulfilment", "filters": {"connection_id": connection["id"]}, "max_deliveries": 1},
    ).json()
    deliveries = console.api.post(f"/consumers/{consumer['id']}/receive", json={"max_batch_size": 10}).json()
    ack_ids = [d["ack_id"] for d in deliveries["data"]]
    termed = console.api.post(
        f"/consumers/{consumer['id']}/term", json={"ack_ids": ack_ids, "reason": "poison payload"}
    ).json()
    assert termed["termed"] == 2
    console.signed_in("#/consumers")
    row = console.page.get_by_role("row").filter(has_text="fulfilment")
    expect(row.locator(".badge-error")).to_have_text("2")
    console.screenshot("consumers")

    row.get_by_role("link", name="fulfilment").click()
    dead_rows = console.page.get_by_role("region", name="Dead letters").locator("tbody tr")
    expect(dead_rows).to_have_count(2)
    expect(dead_rows.first).to_contain_text("poison payload")
    console.screenshot("consumer")

    # Redrive the first: it leaves the dead letters and is delivered again
    console.page.get_by_role("button", name=f"Redrive {sent[0]}").click()
    expect(console.page.get_by_text("Redriven 1 dead letter; 1 still dead.")).to_be_visible()
    expect(dead_rows).to_have_count(1)
    again = console.api.post(f"/consumers/{consumer['id']}/receive", json={"max_batch_size": 10}).json()
    assert [d["event"]["id"] for d in again["data"]] == [sent[0]]

    # Discard the second, after a confirmation
    console.page.get_by_role("button", name=f"Discard {sent[1]}").click()
    console.page.get_by_role("button", name=f"Confirm discard: Discard {sent[1]}").click()
    expect(console.page.get_by_text("No dead letters")).to_be_visible()
    assert console.api.get(f"/consumers/{consumer['id']}").json()["num_dead"] == 0


# --- records --------------------------------------------------------------------------------------


def _pull(console: Console, subscription_id: str) -> None:
    """A triggered full scan, waited for through the API (a 409 while the last one lets go is retried)."""
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    while (
        started := console.api.post(f"/external-event-subscriptions/{subscription_id}/pull")
    ).status_code == 409:
        assert time.monotonic() < deadline, started.text
        time.sleep(0.1)
    assert started.status_code == 202, started.text
    pull = started.json()
    while (status := console.api.get(f"/external-event-pulls/{pull['id']}").json()["status"]) != "success":
        assert status in ("queued", "running"), status
        assert time.monotonic() < deadline, "the pull did not end"
        time.sleep(0.1)


def test_records_of_a_collection_and_one_record_with_the_events_that_changed_it(
    console: Console, fake: FakeProviderServer
) -> None:
    fake.dataset("stripe", "customers").clear()
    seeded = fake.dataset("stripe", "customers").seed(3)
    subscription = _stripe_subscription(console, fake, "acme-records")
    _pull(console, subscription["id"])
    record_id = sorted(str(customer["id"]) for customer in seeded)[0]
    fake.dataset("stripe", "customers").update(record_id, name="Ada Lovelace")
    _pull(console, subscription["id"])  # its second event: updated
    connection_id = subscription["connection"]["id"]
    console.signed_in("#/records")
    expect(console.page.get_by_text("Pick a connection and a collection")).to_be_visible()

    console.page.get_by_label("Connection").select_option(connection_id)
    console.page.get_by_role("combobox", name="Collection").fill("customers")
    console.page.get_by_role("button", name="Browse").click()

    records = console.page.get_by_role("region", name="Records of customers").locator("tbody tr")
    expect(records).to_have_count(3)
    console.screenshot("records")

    console.page.get_by_role("link", name=record_id, exact=True).click()
    expect(console.page.get_by_role("heading", name=record_id)).to_be_visible()
    shown = json.loads(console.page.locator("pre.json").inner_text())
    assert (shown["id"], shown["name"]) == (record_id, "Ada Lovelace")
    history = console.page.get_by_role("region", name="Events of this record, newest first").locator(
        "tbody tr"
    )
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("customers.updated")
    expect(history.nth(1)).to_contain_text("customers.created")
    console.screenshot("record")


# --- a phone's width ------------------------------------------------------------------------------


def test_every_page_fits_a_phone_and_its_tables_scroll_inside_themselves(
    open_console: Callable[..., Console],
) -> None:
    console = open_console(PHONE)
    connection = console.connection("billing-prod")
    console.webhook(connection, "invoice.paid", {"id": "inv_1001"})
    console.api.post("/consumers", json={"name": "mobile-worker"})
    console.signed_in("#/connections")

    for route, name, ready in (
        ("#/connections", "connections", "billing-prod"),
        ("#/events", "events", "invoice.paid"),
        ("#/pulls", "pulls", "No subscriptions yet"),
        ("#/consumers", "consumers", "mobile-worker"),
        ("#/records", "records", "Pick a connection"),
    ):
        console.go(route)
        expect(console.page.get_by_text(ready).first).to_be_visible()
        page_width = console.page.evaluate("() => document.documentElement.scrollWidth")
        assert page_width <= PHONE["width"], (route, page_width)
        console.screenshot(name)
    expect(
        console.page.get_by_role("navigation", name="Main").get_by_role("link", name="Records")
    ).to_be_visible()
