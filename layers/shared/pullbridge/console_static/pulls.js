// Pulls: the subscriptions, each one's timeline of pulls with status, stats and errors, and a trigger
// that starts a full scan and watches it until it ends.
import { api, ApiError } from "./api.js";
import { button, details, el, emptyState, errorBox, field, heading, replace, route, table } from "./dom.js";
import { badge, between, count, duration, providerName, when } from "./format.js";
import { connectionNames } from "./events.js";

const POLL_MS = 1000;
const ENDED = new Set(["success", "error"]);
const STATS = ["pages", "requests", "records_seen", "created", "updated", "deleted", "unchanged", "retries"];

export async function renderSubscriptions(ctx) {
  const [page, names] = await Promise.all([
    api("GET", "external-event-subscriptions", { query: { limit: 100, cursor: ctx.query.get("cursor") }, signal: ctx.signal }),
    connectionNames(ctx.signal),
  ]);
  const panel = el(
    "details",
    { class: "panel", id: "create-subscription", open: page.data.length === 0 && names.size > 0 },
    el("summary", {}, "Subscribe to a collection"),
    subscriptionForm(ctx, names),
  );
  let body;
  if (page.data.length) {
    body = table(
      [
        { label: "Collection", cell: (s) => el("a", { href: route(["pulls", s.id]), class: "strong" }, s.collection) },
        { label: "Connection", cell: (s) => [names.get(s.connection_id) || s.connection_id, el("div", { class: "muted small" }, providerName(s.provider))] },
        { label: "Status", cell: (s) => [badge(s.status), s.error ? el("div", { class: "error-text small" }, s.error.message) : null] },
        { label: "Full scan every", cell: (s) => duration(s.full_sync_interval_seconds) },
        { label: "Updates every", cell: (s) => (s.pull_updates_interval_seconds ? duration(s.pull_updates_interval_seconds) : el("span", { class: "muted" }, "off")) },
        { label: "Next pull", cell: (s) => when(s.next_pull_at, "not scheduled") },
        {
          label: "Actions",
          cell: (s) =>
            el(
              "div",
              { class: "row-actions" },
              button("Pull now", () => trigger(ctx, s.id, () => ctx.navigate(route(["pulls", s.id]))), { class: "button button-small button-primary" }),
              el("a", { class: "button button-small button-secondary", href: route(["pulls", s.id]) }, "Timeline"),
            ),
        },
      ],
      page.data,
      { caption: "Subscriptions" },
    );
  } else if (names.size) {
    body = emptyState("No subscriptions yet — subscribe a connection's collection below to pull it on a schedule.");
  } else {
    body = emptyState("No subscriptions yet — ", el("a", { href: "#/connections" }, "create a connection"), " first, then subscribe to one of its collections here.");
  }
  replace(
    ctx.container,
    heading("Pulls"),
    el("p", { class: "lede" }, "A subscription pulls one collection of a connection on a schedule: full scans find what webhooks missed and detect deletes. Open one for its timeline of pulls."),
    body,
    page.has_more ? el("p", {}, el("a", { class: "button button-secondary", href: route(["pulls"], { cursor: page.next_cursor }) }, "Next page")) : null,
    panel,
  );
}

function subscriptionForm(ctx, names) {
  const connection = el("select", { name: "connection_id", required: true }, [...names].map(([id, name]) => el("option", { value: id }, `${name} (${id})`)));
  const collection = el("input", { type: "text", name: "collection", required: true, maxlength: "64", autocomplete: "off", placeholder: "customers" });
  const interval = el("input", { type: "number", name: "full_sync_interval_seconds", min: "60", value: "10800", inputmode: "numeric" });
  const backfill = el("input", { type: "checkbox", id: "backfill", name: "backfill", checked: true });
  const problem = el("div", { role: "alert" });
  const form = el(
    "form",
    { class: "form-grid", "aria-label": "Subscribe to a collection" },
    field("Connection", connection),
    field("Collection", collection, "e.g. customers (Stripe), issues (GitHub), contacts (HubSpot)"),
    field("Full scan every (seconds)", interval),
    el("div", { class: "field checkbox" }, backfill, el("label", { for: "backfill" }, "Backfill: the first scan emits created for every existing record")),
    problem,
    el("div", { class: "form-actions" }, el("button", { type: "submit", class: "button button-primary" }, "Subscribe")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await api("POST", "external-event-subscriptions", {
        body: {
          connection_id: connection.value,
          collection: collection.value.trim(),
          full_sync_interval_seconds: Number(interval.value),
          backfill: backfill.checked,
        },
      });
      ctx.flash(`Subscribed to ${created.collection}.`, "success");
      ctx.navigate(route(["pulls", created.id]));
    } catch (failure) {
      replace(problem, errorBox(failure));
    }
  });
  return form;
}

/** POST …/pull; a 409 means one is running already, which is then the one to watch. */
async function trigger(ctx, subscriptionId, then) {
  try {
    const pull = await api("POST", ["external-event-subscriptions", subscriptionId, "pull"]);
    ctx.flash("Pull started.", "success");
    then(pull.id);
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 409 && failure.data.pull_id) {
      ctx.flash("A pull of this subscription is already running: watching it.", "info");
      then(failure.data.pull_id);
      return;
    }
    ctx.flash(`Could not start a pull: ${failure.message}`, "error");
  }
}

export async function renderTimeline(ctx) {
  const [id] = ctx.params;
  let subscription;
  try {
    subscription = await api("GET", ["external-event-subscriptions", id], { signal: ctx.signal });
  } catch (failure) {
    if (failure.status !== 404) throw failure;
    replace(ctx.container, heading("Subscription not found"), errorBox(failure), el("p", {}, el("a", { href: "#/pulls" }, "Back to pulls")));
    return;
  }
  const [page, names] = await Promise.all([
    api("GET", "external-event-pulls", { query: { external_event_subscription_id: id, limit: 50 }, signal: ctx.signal }),
    connectionNames(ctx.signal),
  ]);
  const timeline = el("ol", { class: "timeline", "aria-label": "Pulls, newest first" });
  const empty = emptyState("No pulls yet — press Pull now to start a full scan, or wait for the schedule.");
  empty.hidden = page.data.length > 0;
  const watched = new Set();
  const watch = (pullId) => {
    if (watched.has(pullId)) return;
    watched.add(pullId);
    followPull(ctx, pullId, (pull) => {
      empty.hidden = true;
      const item = pullItem(pull);
      const existing = timeline.querySelector(`[data-pull-id="${CSS.escape(pull.id)}"]`);
      if (existing) existing.replaceWith(item);
      else timeline.prepend(item);
    });
  };
  for (const pull of page.data) {
    timeline.append(pullItem(pull));
    if (!ENDED.has(pull.status)) watch(pull.id);
  }
  replace(
    ctx.container,
    el("p", { class: "breadcrumb" }, el("a", { href: "#/pulls" }, "Pulls"), " / ", subscription.collection),
    heading(
      `${subscription.collection} of ${names.get(subscription.connection_id) || subscription.connection_id}`,
      button("Pull now", () => trigger(ctx, id, watch), { kind: "primary", id: "pull-now" }),
    ),
    details([
      ["Status", [badge(subscription.status), subscription.error ? el("span", { class: "error-text" }, ` ${subscription.error.message}`) : null]],
      ["Provider", providerName(subscription.provider)],
      ["Full scan every", duration(subscription.full_sync_interval_seconds)],
      ["Updates every", subscription.pull_updates_interval_seconds ? duration(subscription.pull_updates_interval_seconds) : "off"],
      ["Next pull", when(subscription.next_pull_at, "not scheduled")],
      ["Records", el("a", { href: route(["records"], { connection_id: subscription.connection_id, collection: subscription.collection }) }, "Browse this collection")],
    ]),
    el("h2", {}, "Timeline"),
    empty,
    timeline,
  );
}

/** Polls one pull until it ends (or the page goes), calling `update` with each state. */
async function followPull(ctx, pullId, update) {
  while (!ctx.signal.aborted) {
    let pull;
    try {
      pull = await api("GET", ["external-event-pulls", pullId], { signal: ctx.signal });
    } catch (failure) {
      if (failure.name === "AbortError" || failure.status === 401) return;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS * 3));
      continue;
    }
    update(pull);
    if (ENDED.has(pull.status)) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function pullItem(pull) {
  const stats = pull.stats || {};
  return el(
    "li",
    { class: `timeline-item status-${ENDED.has(pull.status) || pull.status === "running" || pull.status === "queued" ? pull.status : "unknown"}`, "data-pull-id": pull.id },
    el(
      "div",
      { class: "timeline-head" },
      badge(pull.status),
      el("strong", {}, pull.is_full_scan ? "Full scan" : "Incremental"),
      el("span", { class: "muted" }, "started ", when(pull.start_datetime), pull.end_datetime ? ` · took ${between(pull.start_datetime, pull.end_datetime)}` : ` · running for ${between(pull.start_datetime)}`),
      el("span", { class: "mono small muted" }, pull.id),
    ),
    el(
      "dl",
      { class: "stats" },
      el("div", {}, el("dt", {}, "events"), el("dd", {}, count(pull.collected_events_count))),
      STATS.map((name) => el("div", {}, el("dt", {}, name.replace("_", " ")), el("dd", {}, count(stats[name])))),
    ),
    pull.error
      ? el(
          "div",
          { class: "alert alert-error pull-error" },
          el("strong", {}, pull.error.type), ": ", pull.error.message,
          pull.error.key ? el("span", { class: "mono small" }, ` (${pull.error.key})`) : null,
        )
      : null,
    pull.collected_events_count
      ? el("p", { class: "small" }, el("a", { href: route(["events"], { connection_id: pull.connection_id, collection: pull.collection, source: "pull" }) }, "See this collection's pulled events"))
      : null,
  );
}
