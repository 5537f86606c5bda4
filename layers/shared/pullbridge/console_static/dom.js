// Every node the console shows is built here, and every value from the API goes in as text: nothing
// is ever parsed as HTML, so a webhook payload or a name holding markup stays inert.

/** An element with attributes, listeners (`onclick: fn`) and children (text, nodes, arrays). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${name} takes a function`);
      node.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      node.className = value;
    } else if (name === "href") {
      node.setAttribute("href", pageLink(value));
    } else if (name === "value") {
      node.value = String(value);
    } else if (name === "checked" || name === "selected") {
      node[name] = Boolean(value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

/** Links stay inside the console: only `#/...` routes, never a URL a value could turn into script. */
function pageLink(value) {
  const link = String(value);
  if (!link.startsWith("#/")) throw new TypeError(`not a console link: ${link}`);
  return link;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A `#/...` route with each path segment encoded, and a query of the non-empty values. */
export function route(segments, query = {}) {
  const path = segments.map((segment) => encodeURIComponent(String(segment))).join("/");
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "" && value !== false) params.set(name, value);
  }
  const search = params.toString();
  return `#/${path}${search ? `?${search}` : ""}`;
}

/** A page's heading, focused on each route change so a screen reader announces the new page. */
export function heading(text, ...actions) {
  return el(
    "div",
    { class: "page-head" },
    el("h1", { tabindex: "-1", id: "page-title" }, text),
    actions.length ? el("div", { class: "page-actions" }, actions) : null,
  );
}

export function emptyState(message, ...next) {
  return el("div", { class: "empty" }, el("p", {}, message), next.length ? el("p", {}, next) : null);
}

export function errorBox(error) {
  return el("div", { class: "alert alert-error", role: "alert" }, describeError(error));
}

function describeError(error) {
  if (error && error.status === 0) return error.message;
  if (error && error.type) {
    const status = error.status ? ` (${error.status} ${error.type})` : "";
    return `${error.message}${status}`;
  }
  return String(error && error.message ? error.message : error);
}

/** A table that scrolls sideways on a narrow screen instead of overflowing the page. */
export function table(columns, rows, { caption, rowClass } = {}) {
  return el(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption || "table" },
    el(
      "table",
      {},
      caption ? el("caption", { class: "visually-hidden" }, caption) : null,
      el("thead", {}, el("tr", {}, columns.map((column) => el("th", { scope: "col", class: column.class }, column.label)))),
      el(
        "tbody",
        {},
        rows.map((row) =>
          el(
            "tr",
            { class: rowClass ? rowClass(row) : null },
            columns.map((column) => el("td", { class: column.class, "data-label": column.label }, column.cell(row))),
          ),
        ),
      ),
    ),
  );
}

/** A description list of label/value pairs; values may be nodes. */
export function details(pairs) {
  return el(
    "dl",
    { class: "details" },
    pairs.filter(Boolean).map(([label, value]) => [el("dt", {}, label), el("dd", {}, value ?? "—")]),
  );
}

export function button(label, onclick, { kind = "secondary", type = "button", ...rest } = {}) {
  return el("button", { type, class: `button button-${kind}`, onclick, ...rest }, label);
}

/** A destructive action that asks on its first press and acts on the second (no dialog to dismiss). */
export function confirmButton(label, confirmLabel, action, { kind = "danger", ...rest } = {}) {
  let armed = false;
  let timer = null;
  const name = rest["aria-label"];
  const show = (nowArmed) => {
    armed = nowArmed;
    node.textContent = nowArmed ? confirmLabel : label;
    node.classList.toggle("armed", nowArmed);
    if (name) node.setAttribute("aria-label", nowArmed ? `${confirmLabel}: ${name}` : name);
  };
  const node = button(
    label,
    async () => {
      if (!armed) {
        show(true);
        timer = setTimeout(() => show(false), 5000);
        return;
      }
      clearTimeout(timer);
      node.disabled = true;
      try {
        await action();
      } finally {
        node.disabled = false;
        show(false);
      }
    },
    { kind, ...rest },
  );
  return node;
}

/** A read-only field with a Copy button: the value is selectable even where the clipboard is not. */
export function copyField(value, label) {
  const input = el("input", { type: "text", readonly: true, value, class: "copy-input", "aria-label": label });
  const status = el("span", { class: "visually-hidden", role: "status" });
  const copy = button("Copy", async () => {
    let copied = false;
    try {
      await navigator.clipboard.writeText(value);
      copied = true;
    } catch {
      input.select();
      copied = document.execCommand("copy");
    }
    const result = copied ? "Copied" : "Press Ctrl+C to copy";
    status.textContent = result;
    copy.textContent = copied ? "Copied" : "Copy";
    copy.classList.toggle("done", copied);
    setTimeout(() => {
      status.textContent = "";
      copy.textContent = "Copy";
      copy.classList.remove("done");
    }, 2500);
  }, { class: "button button-small copy-button", "aria-label": `Copy ${label}` });
  return el("div", { class: "copy-field" }, input, copy, status);
}

export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  const hintNode = hint ? el("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintNode) control.setAttribute("aria-describedby", hintNode.id);
  return el("div", { class: "field" }, el("label", { for: id }, label), control, hintNode);
}

/** Password inputs for write-only secrets, with a button to add another; `values()` reads them. */
export function secretInputs(label, { max = 10, required = false, name = "secret" } = {}) {
  const list = el("div", { class: "secret-list" });
  const inputs = [];
  const add = (first) => {
    const input = el("input", {
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      maxlength: "1024",
      required: first && required,
      name,
      "aria-label": inputs.length ? `${label} ${inputs.length + 1}` : label,
      class: "secret-input",
    });
    inputs.push(input);
    list.append(input);
    return input;
  };
  add(true);
  const more = button("Add another", () => {
    if (inputs.length < max) add(false).focus();
    if (inputs.length >= max) more.disabled = true;
  }, { class: "button button-small button-secondary" });
  const group = el("fieldset", { class: "field secret-field" }, el("legend", {}, label), list, more);
  return {
    node: group,
    values: () => inputs.map((input) => input.value).filter((value) => value !== ""),
    clear: () => inputs.forEach((input) => (input.value = "")),
  };
}
