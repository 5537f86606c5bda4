// Times, durations and statuses as people read them; the exact value stays one hover away.
import { el } from "./dom.js";

const RELATIVE = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const UNITS = [
  ["year", 365 * 86400],
  ["month", 30 * 86400],
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

function relativeText(iso, now = Date.now()) {
  const seconds = (Date.parse(iso) - now) / 1000;
  if (!Number.isFinite(seconds)) return String(iso);
  if (Math.abs(seconds) < 5) return "just now";
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") return RELATIVE.format(Math.round(seconds / size), unit);
  }
  return String(iso);
}

/** `<time>` showing "3 minutes ago", with the exact ISO time on hover; kept fresh by `refreshTimes`. */
export function when(iso, empty = "never") {
  if (!iso) return el("span", { class: "muted" }, empty);
  return el("time", { datetime: iso, title: iso, "data-relative": "" }, relativeText(iso));
}

export function refreshTimes(root = document) {
  for (const node of root.querySelectorAll("time[data-relative]")) {
    node.textContent = relativeText(node.getAttribute("datetime"));
  }
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const value = Number(seconds);
  if (value < 1) return value > 0 ? `${Math.round(value * 1000)} ms` : "0 s";
  if (value < 120) return `${Math.round(value)} s`;
  if (value < 7200) return `${Math.round(value / 60)} min`;
  if (value < 172800) return `${Math.round(value / 3600)} h`;
  return `${Math.round(value / 86400)} d`;
}

export function between(startIso, endIso) {
  if (!startIso) return "—";
  const end = endIso ? Date.parse(endIso) : Date.now();
  return duration(Math.max(0, (end - Date.parse(startIso)) / 1000));
}

const STATUS_KINDS = {
  success: "success",
  succeeded: "success",
  active: "success",
  subscribed: "success",
  live: "success",
  error: "error",
  failed: "error",
  dead: "error",
  deleted: "error",
  archived: "muted",
  running: "running",
  queued: "queued",
  paused: "queued",
  unknown: "queued",
  webhook: "info",
  pull: "info",
  mutation: "info",
};

/** A coloured status pill; the class comes from a fixed table, never from the value itself. */
export function badge(status, label = status) {
  const kind = STATUS_KINDS[status] || "neutral";
  return el("span", { class: `badge badge-${kind}` }, label);
}

export function count(value) {
  return Number(value ?? 0).toLocaleString("en");
}

const PROVIDER_NAMES = {
  stripe: "Stripe",
  github: "GitHub",
  shopify: "Shopify",
  hubspot: "HubSpot",
  standard: "Standard Webhooks",
  generic: "Generic",
};

export function providerName(provider) {
  return PROVIDER_NAMES[provider] || provider;
}
