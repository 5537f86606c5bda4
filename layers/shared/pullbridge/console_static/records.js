// Records: browse one connection's collection, and one record with the events that changed it.
import { api, ApiError } from "./api.js";
import { button, details, el, emptyState, errorBox, field, heading, replace, route, table } from "./dom.js";
import { badge, providerName, when } from "./format.js";
import { connectionNames } from "./events.js";

const HISTORY_PAGES = 10;

export async function renderBrowser(ctx) {
  const connectionId = ctx.query.get("connection_id") || "";
  const collection = ctx.query.get("collection") || "";
  const includeDeleted = ctx.query.get("include_deleted") === "true";
  const [names, subscriptions] = await Promise.all([
    connectionNames(ctx.signal),
    api("GET", "external-event-subscriptions", { query: { limit: 100 }, signal: ctx.signal }),
  ]);
  const form = browseForm(ctx, names, subscriptions.data, { connectionId, collection, includeDeleted });
  const results = el("div", { class: "results" });
  replace(
    ctx.container,
    heading("Records"),
    el("p", { class: "lede" }, "The latest known state of each upstream record, kept from pulls, mutations and the webhooks that carry the whole object."),
    form,
    results,
  );
  if (!connectionId || !collection) {
    replace(results, emptyState(names.size ? "Pick a connection and a collection to browse its records." : "No connections yet — create one on the Connections page first."));
    return;
  }
  await loadPage(ctx, results, { connectionId, collection, includeDeleted }, null);
}

async function loadPage(ctx, results, { connectionId, collection, includeDeleted }, cursor) {
  const page = await api("GET", "records", {
    query: { connection_id: connectionId, collection, include_deleted: includeDeleted ? "true" : "", cursor, limit: 100 },
    signal: ctx.signal,
  });
  if (!cursor) results.replaceChildren();
  results.querySelector(".more")?.remove();
  if (!page.data.length && !cursor) {
    replace(results, emptyState(`No records in ${collection} yet — subscribe to it on the Pulls page and run a pull, or wait for webhooks that carry whole objects.`));
    return;
  }
  results.append(
    table(
      [
        { label: "Record", cell: (r) => el("a", { class: "mono", href: route(["records", r.connection_id, r.collection, r.record_id]) }, r.record_id) },
        { label: "State", cell: (r) => (r.deleted ? badge("deleted") : badge("live", "current")) },
        { label: "Changed", cell: (r) => when(r.changed_at) },
        { label: "Upstream updated", cell: (r) => when(r.upstream_updated_at, "unknown") },
        { label: "First seen", cell: (r) => when(r.first_seen_at) },
        { label: "Last event", cell: (r) => el("a", { class: "mono small", href: route(["events", r.last_event_id]) }, r.last_event_id) },
      ],
      page.data,
      { caption: `Records of ${collection}` },
    ),
  );
  if (page.has_more) {
    results.append(
      el("p", { class: "more" }, button("Load more", () => loadPage(ctx, results, { connectionId, collection, includeDeleted }, page.next_cursor))),
    );
  }
}

function browseForm(ctx, names, subscriptions, current) {
  const connection = el(
    "select",
    { name: "connection_id", required: true },
    el("option", { value: "" }, "Choose a connection"),
    [...names].map(([id, name]) => el("option", { value: id, selected: id === current.connectionId }, `${name} (${id})`)),
  );
  const collections = el("datalist", { id: "collection-options" });
  const syncCollections = () => {
    const known = new Set(subscriptions.filter((s) => s.connection_id === connection.value).map((s) => s.collection));
    replace(collections, [...known].map((name) => el("option", { value: name })));
  };
  connection.addEventListener("change", syncCollections);
  syncCollections();
  const collection = el("input", { type: "text", name: "collection", required: true, list: "collection-options", value: current.collection, autocomplete: "off", placeholder: "customers" });
  const deleted = el("input", { type: "checkbox", id: "include-deleted", name: "include_deleted", checked: current.includeDeleted });
  const form = el(
    "form",
    { class: "filters", "aria-label": "Browse a collection" },
    collections,
    field("Connection", connection),
    field("Collection", collection),
    el("div", { class: "field checkbox" }, deleted, el("label", { for: "include-deleted" }, "Include deleted")),
    el("div", { class: "form-actions" }, el("button", { type: "submit", class: "button button-primary" }, "Browse")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(route(["records"], { connection_id: connection.value, collection: collection.value.trim(), include_deleted: deleted.checked ? "true" : "" }));
  });
  return form;
}

export async function renderRecord(ctx) {
  const [connectionId, collection, ...rest] = ctx.params;
  const recordId = rest.join("/");
  let record;
  try {
    record = await api("GET", ["records", connectionId, collection, recordId], { signal: ctx.signal });
  } catch (failure) {
    if (failure.status !== 404) throw failure;
    replace(ctx.container, heading("Record not found"), errorBox(failure), el("p", {}, el("a", { href: "#/records" }, "Back to records")));
    return;
  }
  const history = await recordEvents(ctx, record);
  replace(
    ctx.container,
    el(
      "p",
      { class: "breadcrumb" },
      el("a", { href: "#/records" }, "Records"),
      " / ",
      el("a", { href: route(["records"], { connection_id: connectionId, collection }) }, collection),
      " / ",
      el("span", { class: "mono" }, record.record_id),
    ),
    heading(record.record_id),
    details([
      ["State", record.deleted ? badge("deleted", "deleted (tombstone)") : badge("live", "current")],
      ["Connection", el("span", { class: "mono" }, record.connection_id)],
      ["Provider", providerName(record.provider)],
      ["Collection", record.collection],
      ["Changed", when(record.changed_at)],
      ["Upstream updated", when(record.upstream_updated_at, "unknown")],
      ["First seen", when(record.first_seen_at)],
      ["Last event", el("a", { class: "mono", href: route(["events", record.last_event_id]) }, record.last_event_id)],
    ]),
    el("h2", {}, "Events that changed it"),
    history.length
      ? table(
          [
            { label: "Received", cell: (e) => when(e.received_at) },
            { label: "Type", cell: (e) => el("span", { class: "mono" }, e.type) },
            { label: "Source", cell: (e) => badge(e.source) },
            { label: "Action", cell: (e) => e.action || "—" },
            { label: "Event", cell: (e) => el("a", { class: "mono small", href: route(["events", e.id]) }, e.id) },
          ],
          history,
          { caption: "Events of this record, newest first" },
        )
      : emptyState("No events of this record are left in the log: they expire after the retention period. Its last event was ", el("a", { href: route(["events", record.last_event_id]) }, record.last_event_id), "."),
    el("h2", {}, "Data"),
    el("pre", { class: "json", tabindex: "0", "aria-label": "The record's data as JSON" }, JSON.stringify(record.data, null, 2)),
  );
}

/** The record's events, newest first, from `GET /events?record_id=` with its connection and collection.
 * An id the filter cannot take (longer than it allows) is looked for in the collection's events. */
async function recordEvents(ctx, record) {
  const scope = { connection_id: record.connection_id, collection: record.collection };
  try {
    return await collectEvents(ctx, { ...scope, record_id: record.record_id }, record.record_id);
  } catch (failure) {
    if (!(failure instanceof ApiError && failure.status === 400)) throw failure;
    return collectEvents(ctx, scope, record.record_id);
  }
}

async function collectEvents(ctx, query, recordId) {
  const found = [];
  let cursor;
  for (let page = 0; page < HISTORY_PAGES; page += 1) {
    const result = await api("GET", "events", { query: { ...query, cursor, limit: 500 }, signal: ctx.signal });
    found.push(...result.data.filter((event) => event.record_id === recordId));
    if (!result.has_more) break;
    cursor = result.next_cursor;
  }
  return found.reverse();
}
