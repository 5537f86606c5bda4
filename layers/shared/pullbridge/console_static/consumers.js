// Consumers: pending, ack pending, lag and dead letters, with redrive and discard.
import { api } from "./api.js";
import { button, confirmButton, details, el, emptyState, errorBox, heading, replace, route, table } from "./dom.js";
import { badge, count, duration, when } from "./format.js";

function filtersText(filters) {
  const parts = Object.entries(filters || {}).filter(([, value]) => value);
  return parts.length ? parts.map(([name, value]) => `${name}=${value}`).join(", ") : "every event";
}

export async function renderList(ctx) {
  const page = await api("GET", "consumers", { query: { limit: 100, cursor: ctx.query.get("cursor") }, signal: ctx.signal });
  const body = page.data.length
    ? table(
        [
          { label: "Name", cell: (c) => [el("a", { href: route(["consumers", c.name]), class: "strong" }, c.name), el("div", { class: "muted mono small" }, c.id)] },
          { label: "Filters", cell: (c) => el("span", { class: "small" }, filtersText(c.filters)) },
          { label: "Pending", class: "num", cell: (c) => count(c.num_pending) },
          { label: "Ack pending", class: "num", cell: (c) => count(c.num_ack_pending) },
          { label: "Lag", class: "num", cell: (c) => (c.num_pending ? duration(c.lag_seconds) : el("span", { class: "muted" }, "none")) },
          { label: "Dead letters", class: "num", cell: (c) => (c.num_dead ? badge("dead", count(c.num_dead)) : el("span", { class: "muted" }, "0")) },
          { label: "Ordering", cell: (c) => c.ordering },
          { label: "Max deliveries", class: "num", cell: (c) => (c.max_deliveries === null ? "no limit" : count(c.max_deliveries)) },
        ],
        page.data,
        { caption: "Consumers", rowClass: (c) => (c.num_dead ? "has-dead" : null) },
      )
    : emptyState(
        "No consumers yet — create one with POST /consumers or `pullbridge consumers create NAME`, then run workers that receive and ack its events.",
      );
  replace(
    ctx.container,
    heading("Consumers", button("Refresh", () => ctx.reload())),
    el("p", { class: "lede" }, "A consumer is a shared position in the log: workers receive leased batches and ack them. What is delivered too often without an ack, or termed, becomes a dead letter."),
    body,
    page.has_more ? el("p", {}, el("a", { class: "button button-secondary", href: route(["consumers"], { cursor: page.next_cursor }) }, "Next page")) : null,
  );
}

export async function renderConsumer(ctx) {
  const [ref] = ctx.params;
  let consumer;
  try {
    consumer = await api("GET", ["consumers", ref], { signal: ctx.signal });
  } catch (failure) {
    if (failure.status !== 404) throw failure;
    replace(ctx.container, heading("Consumer not found"), errorBox(failure), el("p", {}, el("a", { href: "#/consumers" }, "Back to consumers")));
    return;
  }
  const dead = await api("GET", ["consumers", consumer.id, "dead-letters"], { query: { limit: 100 }, signal: ctx.signal });
  const redrive = async (body, what) => {
    try {
      const result = await api("POST", ["consumers", consumer.id, "dead-letters", "redrive"], { body });
      ctx.flash(`Redriven ${result.redriven} ${what}; ${result.remaining} still dead.`, "success");
      ctx.reload();
    } catch (failure) {
      ctx.flash(`Could not redrive: ${failure.message}`, "error");
    }
  };
  const deadLetters = dead.data.length
    ? table(
        [
          { label: "Event", cell: (d) => el("a", { class: "mono small", href: route(["events", d.event_id]) }, d.event_id) },
          { label: "Type", cell: (d) => (d.event ? el("span", { class: "mono" }, d.event.type) : el("span", { class: "muted" }, "expired")) },
          { label: "Deliveries", class: "num", cell: (d) => count(d.delivery_count) },
          { label: "Reason", cell: (d) => d.reason || el("span", { class: "muted" }, "—") },
          { label: "Dead since", cell: (d) => when(d.dead_at) },
          {
            label: "Actions",
            cell: (d) =>
              el(
                "div",
                { class: "row-actions" },
                button("Redrive", () => redrive({ event_ids: [d.event_id] }, "dead letter"), { class: "button button-small button-primary", "aria-label": `Redrive ${d.event_id}` }),
                confirmButton("Discard", "Confirm discard", async () => {
                  try {
                    await api("DELETE", ["consumers", consumer.id, "dead-letters", d.event_id]);
                    ctx.flash(`Discarded ${d.event_id}.`, "success");
                    ctx.reload();
                  } catch (failure) {
                    ctx.flash(`Could not discard: ${failure.message}`, "error");
                  }
                }, { class: "button button-small button-danger", "aria-label": `Discard ${d.event_id}` }),
              ),
          },
        ],
        dead.data,
        { caption: "Dead letters" },
      )
    : emptyState("No dead letters — every event was acked or is still in rotation.");
  replace(
    ctx.container,
    el("p", { class: "breadcrumb" }, el("a", { href: "#/consumers" }, "Consumers"), " / ", consumer.name),
    heading(consumer.name, button("Refresh", () => ctx.reload())),
    el(
      "div",
      { class: "cards" },
      stat("Pending", count(consumer.num_pending), "matching events not yet delivered"),
      stat("Ack pending", count(consumer.num_ack_pending), "leased, not yet acked"),
      stat("Lag", consumer.num_pending ? duration(consumer.lag_seconds) : "none", "age of the oldest undelivered event"),
      stat("Dead letters", count(consumer.num_dead), "out of rotation until redriven", consumer.num_dead ? "stat-dead" : null),
    ),
    details([
      ["Id", el("span", { class: "mono" }, consumer.id)],
      ["Filters", filtersText(consumer.filters)],
      ["Ordering", consumer.ordering],
      ["Ack wait", duration(consumer.ack_wait_seconds)],
      ["Max deliveries", consumer.max_deliveries === null ? "no limit" : count(consumer.max_deliveries)],
      ["Max ack pending", count(consumer.max_ack_pending)],
      ["Created", when(consumer.created_at)],
    ]),
    el(
      "div",
      { class: "section-head" },
      el("h2", {}, "Dead letters"),
      dead.data.length ? button("Redrive all", () => redrive({ all: true }, "dead letters"), { class: "button button-primary", id: "redrive-all" }) : null,
    ),
    deadLetters,
  );
}

function stat(label, value, hint, extra) {
  return el("div", { class: `card stat ${extra || ""}` }, el("div", { class: "stat-label" }, label), el("div", { class: "stat-value" }, value), el("div", { class: "hint" }, hint));
}
