// Connections: health, webhook URLs, and create / rotate secrets / archive. Secrets are write-only:
// they go out in one request and the inputs are emptied; nothing shows them again.
import { api, CREDENTIAL_NAMES, PROVIDERS } from "./api.js";
import {
  button,
  confirmButton,
  copyField,
  el,
  emptyState,
  errorBox,
  field,
  heading,
  replace,
  route,
  secretInputs,
  table,
} from "./dom.js";
import { badge, count, providerName, when } from "./format.js";

export async function renderList(ctx) {
  const page = await api("GET", "connections", { query: { limit: 100, cursor: ctx.query.get("cursor") }, signal: ctx.signal });
  const create = createForm(ctx);
  const panel = el("details", { class: "panel", id: "create-connection", open: page.data.length === 0 }, el("summary", {}, "Create a connection"), create);
  const body = page.data.length
    ? connectionsTable(page.data, ctx)
    : emptyState("No connections yet — create one below, then point your provider's webhooks at its URL.");
  replace(
    ctx.container,
    heading("Connections", button("New connection", () => {
      panel.open = true;
      panel.querySelector("select, input").focus();
    }, { kind: "primary" })),
    el("p", { class: "lede" }, "Each connection is one provider account. Its health shows when its last webhook came and what the last complete scan found that no webhook had delivered."),
    body,
    page.has_more ? el("p", {}, el("a", { class: "button button-secondary", href: route(["connections"], { cursor: page.next_cursor }) }, "Next page")) : null,
    panel,
  );
}

function connectionsTable(connections, ctx) {
  return table(
    [
      {
        label: "Name",
        class: "name-col",
        cell: (c) => [el("strong", { class: "name" }, c.name), el("div", { class: "muted mono small" }, c.id)],
      },
      { label: "Provider", cell: (c) => providerName(c.provider) },
      { label: "Webhook URL", class: "wide", cell: (c) => copyField(c.webhook_url, `webhook URL of ${c.name}`) },
      { label: "Last webhook", cell: (c) => when(c.health.last_webhook_at) },
      {
        label: "Last complete scan",
        cell: (c) => [
          when(c.health.last_full_scan_at),
          c.health.last_full_scan_status ? [" ", badge(c.health.last_full_scan_status)] : null,
        ],
      },
      {
        label: "Missed by webhooks",
        class: "num",
        cell: (c) =>
          c.health.missed_by_webhooks === null || c.health.missed_by_webhooks === undefined
            ? el("span", { class: "muted", title: "Known after the first complete scan" }, "—")
            : el("span", { class: c.health.missed_by_webhooks > 0 ? "warn" : "" }, count(c.health.missed_by_webhooks)),
      },
      { label: "Secrets and actions", cell: (c) => actions(c, ctx) },
    ],
    connections,
    { caption: "Connections" },
  );
}

function actions(connection, ctx) {
  const secrets = connection.webhook_secrets_count;
  const holder = el(
    "div",
    { class: "row-actions stacked" },
    el("span", { class: "muted small nowrap" }, `${count(secrets)} active secret${secrets === 1 ? "" : "s"}`),
  );
  const rotate = button("Rotate secrets", () => {
    const existing = holder.querySelector("form");
    if (existing) {
      existing.remove();
      rotate.setAttribute("aria-expanded", "false");
      return;
    }
    const form = rotateForm(connection, ctx);
    holder.append(form);
    rotate.setAttribute("aria-expanded", "true");
    form.querySelector("input").focus();
  }, { class: "button button-small button-secondary", "aria-expanded": "false" });
  const archive = confirmButton("Archive", "Confirm archive", async () => {
    try {
      await api("DELETE", ["connections", connection.id]);
      ctx.flash(`Archived ${connection.name}: its webhooks now get 404 and its pulls stop.`, "success");
      ctx.reload();
    } catch (failure) {
      ctx.flash(`Could not archive: ${failure.message}`, "error");
    }
  }, { class: "button button-small button-danger" });
  holder.append(rotate, archive);
  return holder;
}

function rotateForm(connection, ctx) {
  const secrets = secretInputs("New webhook secrets", { required: true, name: "webhook_secret" });
  const problem = el("div", { role: "alert" });
  const form = el(
    "form",
    { class: "inline-form", "aria-label": `Rotate the secrets of ${connection.name}` },
    el("p", { class: "hint" }, "These replace every active secret. To switch with no downtime, enter the new secret and the current one, then remove the current one once the provider signs with the new."),
    secrets.node,
    problem,
    el("div", { class: "form-actions" }, el("button", { type: "submit", class: "button button-primary button-small" }, "Save secrets")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = secrets.values();
    if (!values.length) {
      replace(problem, errorBox({ message: "Enter at least one secret." }));
      return;
    }
    try {
      const updated = await api("PATCH", ["connections", connection.id], { body: { webhook_secrets: values } });
      secrets.clear();
      ctx.flash(`Secrets of ${updated.name} replaced: ${updated.webhook_secrets_count} active.`, "success");
      ctx.reload();
    } catch (failure) {
      replace(problem, errorBox(failure));
    }
  });
  return form;
}

function createForm(ctx) {
  const provider = el("select", { name: "provider", required: true }, PROVIDERS.map((name) => el("option", { value: name, selected: name === "standard" }, providerName(name))));
  const name = el("input", { type: "text", name: "name", required: true, maxlength: "200", autocomplete: "off" });
  const secrets = secretInputs("Webhook secrets", { name: "webhook_secret" });
  const baseUrl = el("input", { type: "url", name: "api_base_url", autocomplete: "off", placeholder: "https://api.example.com" });
  const credentialName = el("input", { type: "text", name: "credential_name", autocomplete: "off", value: "" });
  const credentialValue = el("input", { type: "password", name: "credential_value", autocomplete: "off" });
  const settings = el("textarea", { name: "settings", rows: "3", spellcheck: "false", placeholder: '{"repository": "owner/name"}' });
  const problem = el("div", { role: "alert" });
  const syncCredentialName = () => {
    credentialName.placeholder = CREDENTIAL_NAMES[provider.value] || "name";
  };
  provider.addEventListener("change", syncCredentialName);
  syncCredentialName();
  const form = el(
    "form",
    { class: "form-grid", "aria-label": "Create a connection" },
    field("Provider", provider),
    field("Name", name, "Shown in this console and in events' connection."),
    secrets.node,
    field("API base URL (optional)", baseUrl, "Where pulls list records; the provider's public API when empty."),
    el(
      "fieldset",
      { class: "field credential-field" },
      el("legend", {}, "Credential for pulls (optional)"),
      field("Credential name", credentialName),
      field("Credential value", credentialValue),
    ),
    field("Settings, as JSON (optional)", settings, "GitHub's repository, a generic source's scheme, a rate limit."),
    problem,
    el("div", { class: "form-actions" }, el("button", { type: "submit", class: "button button-primary" }, "Create connection")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(problem);
    const body = { provider: provider.value, name: name.value, webhook_secrets: secrets.values() };
    if (baseUrl.value) body.api_base_url = baseUrl.value;
    const credential = credentialName.value || credentialName.placeholder;
    if (credentialValue.value) body.credentials = { [credential]: credentialValue.value };
    if (settings.value.trim()) {
      try {
        body.settings = JSON.parse(settings.value);
      } catch (failure) {
        replace(problem, errorBox({ message: `Settings are not valid JSON: ${failure.message}` }));
        settings.focus();
        return;
      }
    }
    try {
      const created = await api("POST", "connections", { body });
      // Write-only: once sent, the secrets leave the page (a refused form keeps them, masked, to fix).
      secrets.clear();
      credentialValue.value = "";
      ctx.flash(`Created ${created.name}. Send its webhooks to ${created.webhook_url}`, "success");
      ctx.reload();
    } catch (failure) {
      replace(problem, errorBox(failure));
    }
  });
  return form;
}
