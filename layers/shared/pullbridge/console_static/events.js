// Events: a live tail that long-polls GET /events with the filters, and one event's JSON.
import { api, ApiError, listAll, PROVIDERS, SOURCES } from "./api.js";
import { button, copyField, details, el, emptyState, errorBox, field, heading, replace, route } from "./dom.js";
import { badge, providerName, when } from "./format.js";

const FILTERS = ["connection_id", "provider", "collection", "type", "source"];
const SHOWN = 200; // rows kept on screen; older ones scroll away as a terminal's would
const WAIT_SECONDS = 20;

export async function connectionNames(signal) {
  const connections = await listAll("connections", { query: { limit: 100 }, signal, maxPages: 5 });
  return new Map(connections.map((c) => [c.id, c.name]));
}

export async function renderTail(ctx) {
  const names = await connectionNames(ctx.signal);
  const filters = Object.fromEntries(FILTERS.map((name) => [name, ctx.query.get(name) || ""]));
  const status = el("p", { class: "tail-status", role: "status" }, "Connecting…");
  const rows = el("tbody", {});
  const empty = emptyState(
    "No events yet — send a webhook to a connection's URL (see Connections) or trigger a pull (see Pulls); they appear here as they arrive.",
  );
  const tableNode = el(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Live events", hidden: true },
    el(
      "table",
      { class: "tail" },
      el("caption", { class: "visually-hidden" }, "Events, newest first"),
      el("thead", {}, el("tr", {}, ["Received", "Type", "Source", "Connection", "Collection", "Record", "Event"].map((label) => el("th", { scope: "col" }, label)))),
      rows,
    ),
  );
  const tail = new Tail(ctx, filters, { status, rows, empty, tableNode, names });
  const pause = button("Pause", () => {
    if (tail.paused) {
      tail.resume();
      pause.textContent = "Pause";
    } else {
      tail.pause();
      pause.textContent = "Resume";
    }
  });
  replace(
    ctx.container,
    heading("Events", pause),
    filterForm(ctx, filters, names),
    status,
    empty,
    tableNode,
  );
  tail.start();
}

function filterForm(ctx, filters, names) {
  const options = el("datalist", { id: "connection-options" }, [...names].map(([id, name]) => el("option", { value: id, label: name })));
  const controls = {
    connection_id: el("input", { type: "text", name: "connection_id", list: "connection-options", value: filters.connection_id, autocomplete: "off", placeholder: "any" }),
    provider: el("select", { name: "provider" }, el("option", { value: "" }, "any"), PROVIDERS.map((p) => el("option", { value: p, selected: p === filters.provider }, providerName(p)))),
    collection: el("input", { type: "text", name: "collection", value: filters.collection, autocomplete: "off", placeholder: "any" }),
    type: el("input", { type: "text", name: "type", value: filters.type, autocomplete: "off", placeholder: "any, e.g. invoice.paid" }),
    source: el("select", { name: "source" }, el("option", { value: "" }, "any"), SOURCES.map((s) => el("option", { value: s, selected: s === filters.source }, s))),
  };
  const form = el(
    "form",
    { class: "filters", "aria-label": "Filter events" },
    options,
    field("Connection", controls.connection_id),
    field("Provider", controls.provider),
    field("Collection", controls.collection),
    field("Type", controls.type),
    field("Source", controls.source),
    el(
      "div",
      { class: "form-actions" },
      el("button", { type: "submit", class: "button button-primary" }, "Apply"),
      el("a", { class: "button button-secondary", href: "#/events" }, "Clear"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = Object.fromEntries(FILTERS.map((name) => [name, controls[name].value.trim()]));
    ctx.navigate(route(["events"], query));
  });
  return form;
}

/** Follows next_cursor from the log's start to its end, then long-polls for what comes next. */
class Tail {
  constructor(ctx, filters, view) {
    this.ctx = ctx;
    this.filters = filters;
    this.view = view;
    this.cursor = null;
    this.caughtUp = false;
    this.seen = 0;
    this.paused = false;
    this.request = null;
    this.failures = 0;
    this.run = 0; // each start, pause or resume ends the loop before it, even one asleep after an error
  }

  start() {
    this.loop();
  }

  pause() {
    this.paused = true;
    this.run += 1;
    if (this.request) this.request.abort();
    this.setStatus("Paused. Resume to continue from where the tail stopped.", "paused");
  }

  resume() {
    this.paused = false;
    this.loop();
  }

  setStatus(text, state) {
    this.view.status.textContent = text;
    this.view.status.dataset.state = state;
  }

  async loop() {
    const signal = this.ctx.signal;
    this.run += 1;
    const run = this.run;
    while (!signal.aborted && !this.paused && run === this.run) {
      this.request = new AbortController();
      const stop = () => this.request.abort();
      signal.addEventListener("abort", stop, { once: true });
      try {
        if (!this.caughtUp) this.setStatus(this.seen ? `Catching up: ${this.seen} events read…` : "Loading events…", "loading");
        const page = await api("GET", "events", {
          query: { ...this.filters, cursor: this.cursor, limit: this.caughtUp ? 100 : 500, wait: this.caughtUp ? WAIT_SECONDS : 0 },
          signal: this.request.signal,
        });
        this.failures = 0;
        this.show(page.data);
        this.cursor = page.next_cursor;
        if (!page.has_more && !this.caughtUp) this.caughtUp = true;
        if (this.caughtUp) this.setStatus("Live: new events appear at the top as they arrive.", "live");
      } catch (failure) {
        if (failure.name === "AbortError") return;
        if (failure instanceof ApiError && failure.status === 410) {
          this.cursor = null; // older than the retention: start again from the oldest event kept
          this.caughtUp = false;
          continue;
        }
        if (failure instanceof ApiError && failure.status === 401) return;
        if (failure instanceof ApiError && failure.status >= 400 && failure.status < 500) {
          this.setStatus(`The filters were refused: ${failure.message}`, "error");
          return;
        }
        this.failures += 1;
        const delay = Math.min(30, 2 ** this.failures);
        this.setStatus(`${failure.message} Retrying in ${delay} s…`, "error");
        await sleep(delay * 1000, signal);
      } finally {
        signal.removeEventListener("abort", stop);
      }
    }
  }

  show(events) {
    if (!events.length) return;
    this.seen += events.length;
    const { rows, empty, tableNode, names } = this.view;
    empty.hidden = true;
    tableNode.hidden = false;
    for (const event of events) {
      rows.prepend(eventRow(event, names, this.caughtUp));
    }
    while (rows.children.length > SHOWN) rows.lastElementChild.remove();
  }
}

function eventRow(event, names, fresh) {
  const recordLink =
    event.record_id && event.collection
      ? el("a", { href: route(["records", event.connection_id, event.collection, event.record_id]) }, event.record_id)
      : el("span", { class: "muted" }, event.record_id || "—");
  return el(
    "tr",
    { class: fresh ? "fresh" : null, "data-event-id": event.id },
    el("td", {}, when(event.received_at)),
    el("td", {}, el("span", { class: "mono" }, event.type), event.stale ? [" ", el("span", { class: "badge badge-queued", title: "Older than the record already held" }, "stale")] : null),
    el("td", {}, badge(event.source)),
    el("td", {}, names.get(event.connection_id) || el("span", { class: "mono small" }, event.connection_id)),
    el("td", {}, event.collection || el("span", { class: "muted" }, "—")),
    el("td", {}, recordLink),
    el("td", {}, el("a", { class: "mono small", href: route(["events", event.id]) }, event.id)),
  );
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

export async function renderEvent(ctx) {
  const [id] = ctx.params;
  let event;
  try {
    event = await api("GET", ["events", id], { signal: ctx.signal });
  } catch (failure) {
    if (failure.status !== 404) throw failure;
    replace(ctx.container, heading("Event not found"), errorBox(failure), el("p", {}, el("a", { href: "#/events" }, "Back to events")));
    return;
  }
  const json = JSON.stringify(event, null, 2);
  replace(
    ctx.container,
    el("p", { class: "breadcrumb" }, el("a", { href: "#/events" }, "Events"), " / ", el("span", { class: "mono" }, event.id)),
    heading(event.type),
    details([
      ["Id", copyField(event.id, "event id")],
      ["Source", [badge(event.source), event.pull_id ? [" ", el("span", { class: "mono small" }, event.pull_id)] : null]],
      ["Connection", el("a", { href: route(["events"], { connection_id: event.connection_id }) }, event.connection_id)],
      ["Provider", providerName(event.provider)],
      ["Collection", event.collection],
      ["Action", event.action],
      ["Record", event.record_id && event.collection ? el("a", { href: route(["records", event.connection_id, event.collection, event.record_id]) }, event.record_id) : event.record_id],
      ["Occurred", when(event.occurred_at, "unknown")],
      ["Received", when(event.received_at)],
      ["Stale", event.stale ? badge("queued", "stale: older than the record held") : "no"],
    ]),
    el("h2", {}, "JSON"),
    el("pre", { class: "json", tabindex: "0", "aria-label": "The event as JSON" }, json),
  );
}
