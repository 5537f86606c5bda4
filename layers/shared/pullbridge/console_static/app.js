// The console's shell: sign-in, navigation and the hash router. Each page is a module with `render(ctx)`.
import { api, session } from "./api.js";
import { el, replace } from "./dom.js";
import { refreshTimes } from "./format.js";
import * as connections from "./connections.js";
import * as events from "./events.js";
import * as pulls from "./pulls.js";
import * as consumers from "./consumers.js";
import * as records from "./records.js";

const PAGES = {
  connections: { title: "Connections", list: connections.renderList },
  events: { title: "Events", list: events.renderTail, one: events.renderEvent },
  pulls: { title: "Pulls", list: pulls.renderSubscriptions, one: pulls.renderTimeline },
  consumers: { title: "Consumers", list: consumers.renderList, one: consumers.renderConsumer },
  records: { title: "Records", list: records.renderBrowser, one: records.renderRecord },
};
const DEFAULT_PAGE = "connections";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOutButton = document.getElementById("sign-out");
const flashRegion = document.getElementById("flash");
let current = null; // the AbortController of the page on screen: aborting stops its polls and tails

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, search = ""] = raw.split("?");
  const segments = path.split("/").filter(Boolean).map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return segment;
    }
  });
  return { segments, query: new URLSearchParams(search) };
}

function flash(message, kind = "info") {
  const note = el("div", { class: `alert alert-${kind}` }, message);
  replace(flashRegion, note);
  setTimeout(() => note.remove(), 6000);
}

function showSignIn(message) {
  if (current) current.abort();
  current = null;
  nav.hidden = true;
  signOutButton.hidden = true;
  document.title = "Sign in · pullbridge";
  const input = el("input", {
    id: "api-key",
    name: "api_key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "api-key-hint",
  });
  const error = el("p", { class: "alert alert-error", role: "alert", id: "sign-in-error", hidden: !message }, message || "");
  const submit = el("button", { type: "submit", class: "button button-primary" }, "Sign in");
  const form = el(
    "form",
    { class: "card sign-in", "aria-labelledby": "page-title", novalidate: true },
    el("h1", { id: "page-title", tabindex: "-1" }, "Sign in to pullbridge"),
    el(
      "p",
      { class: "muted", id: "api-key-hint" },
      "Paste an API key of your tenant. It stays in this tab's session storage and is sent only to this API; closing the tab or signing out forgets it.",
    ),
    el("div", { class: "field" }, el("label", { for: "api-key" }, "API key"), input),
    error,
    el("div", { class: "form-actions" }, submit),
  );
  form.addEventListener("submit", async (submitEvent) => {
    submitEvent.preventDefault();
    const key = input.value.trim();
    if (!key) {
      showError("Enter an API key.");
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    try {
      await api("GET", "connections", { query: { limit: 1 }, key });
      session.signIn(key);
      input.value = "";
      if (!window.location.hash.startsWith("#/")) window.location.hash = `#/${DEFAULT_PAGE}`;
      showApp();
    } catch (failure) {
      showError(
        failure.status === 401
          ? "That API key was refused (401 unauthorized). Check that you pasted the whole key, and that it has not been revoked."
          : `Could not sign in: ${failure.message}`,
      );
    } finally {
      submit.disabled = false;
      submit.textContent = "Sign in";
    }
  });
  function showError(text) {
    error.textContent = text;
    error.hidden = false;
    input.focus();
  }
  replace(main, form);
  input.focus();
}

function showApp({ focusTitle = true } = {}) {
  nav.hidden = false;
  signOutButton.hidden = false;
  render({ focusTitle });
}

/** Renders the route in the hash. A navigation moves the focus to the new page's title, as a page
 * load would announce it; the first load leaves the focus at the top of the document. */
async function render({ focusTitle = true } = {}) {
  if (!session.key()) {
    showSignIn();
    return;
  }
  const { segments, query } = parseHash();
  const name = PAGES[segments[0]] ? segments[0] : DEFAULT_PAGE;
  const page = PAGES[name];
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  const params = segments.slice(1);
  const view = params.length && page.one ? page.one : page.list;
  document.title = `${page.title} · pullbridge`;
  const container = el("div", { class: "page", "aria-busy": "true" }, el("p", { class: "muted loading" }, "Loading…"));
  replace(main, container);
  const ctx = {
    container,
    params,
    query,
    signal: controller.signal,
    flash,
    reload: () => render(),
    navigate: (hash) => {
      if (window.location.hash === hash) render();
      else window.location.hash = hash;
    },
  };
  try {
    await view(ctx);
  } catch (failure) {
    if (failure.name === "AbortError" || controller.signal.aborted) return;
    replace(
      container,
      el("h1", { id: "page-title", tabindex: "-1" }, page.title),
      el("div", { class: "alert alert-error", role: "alert" }, `Could not load this page: ${failure.message}`),
    );
  }
  container.removeAttribute("aria-busy");
  const title = container.querySelector("#page-title");
  if (focusTitle && title && !controller.signal.aborted) title.focus({ preventScroll: true });
}

session.onUnauthorized(() => {
  session.signOut();
  showSignIn("Your API key was refused (401): it may have been revoked. Sign in again.");
});

signOutButton.addEventListener("click", () => {
  session.signOut();
  showSignIn();
  flash("Signed out: the key is forgotten.");
});

window.addEventListener("hashchange", () => {
  if (session.key()) render();
});
setInterval(() => refreshTimes(main), 30000);

if (session.key()) showApp({ focusTitle: false });
else showSignIn();
