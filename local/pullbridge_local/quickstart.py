"""The demo connection `make dev` creates, and the copy-paste shell commands it prints to use it."""

from __future__ import annotations

import base64
import secrets
import shlex
import time
from dataclasses import dataclass

import httpx

from pullbridge.providers.standard import SECRET_PREFIX

_CREATE_ATTEMPTS = 5


@dataclass(frozen=True)
class StandardConnection:
    id: str
    webhook_secret: str
    webhook_url: str


def new_webhook_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def create_standard_connection(base_url: str, api_key: str, *, name: str = "demo") -> StandardConnection:
    """Creates a `standard` connection through the stack's own API, as a client would: a 5xx (which the
    fault switch, `PULLBRIDGE_FAULTS`, may cause) is retried."""
    webhook_secret = new_webhook_secret()
    for attempt in range(_CREATE_ATTEMPTS):
        response = httpx.post(
            f"{base_url}/connections",
            headers={"authorization": f"Bearer {api_key}"},
            json={"provider": "standard", "name": name, "webhook_secrets": [webhook_secret]},
            timeout=30,
        )
        if response.status_code < 500 or attempt + 1 == _CREATE_ATTEMPTS:
            break
        time.sleep(0.2 * 2**attempt)
    response.raise_for_status()
    created = response.json()
    return StandardConnection(
        id=created["id"], webhook_secret=webhook_secret, webhook_url=created["webhook_url"]
    )


def shell_commands(base_url: str, api_key: str, connection: StandardConnection) -> str:
    """Runnable bash (curl + openssl): create a connection, send a signed webhook, poll the events."""
    new_connection = shlex.quote(
        f'{{"provider":"standard","name":"another","webhook_secrets":["{new_webhook_secret()}"]}}'
    )
    return f"""\
export PB_URL={shlex.quote(base_url)} PB_KEY={shlex.quote(api_key)}
export PB_CONNECTION={shlex.quote(connection.id)} PB_SECRET={shlex.quote(connection.webhook_secret)}

# Create a Standard Webhooks connection (the demo one above already exists):
curl -sS -w '\\n' "$PB_URL/connections" -H "authorization: Bearer $PB_KEY" \\
  -H 'content-type: application/json' -d {new_connection}

# Send the demo connection a signed delivery: base64 HMAC-SHA256 of "id.timestamp.body".
body=$(printf '{{"type":"invoice.paid","timestamp":"%s","data":{{"id":"inv_1"}}}}' \\
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)")
msg_id="msg_$(openssl rand -hex 12)"; ts=$(date +%s)
key_hex=$(printf %s "${{PB_SECRET#whsec_}}" | base64 -d | od -An -v -tx1 | tr -d ' \\n')
sig=$(printf %s "$msg_id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key_hex" -binary | base64)
curl -sS -w '\\n' "$PB_URL/webhooks/$PB_CONNECTION" -H 'content-type: application/json' \\
  -H "webhook-id: $msg_id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" \\
  --data-binary "$body"

# Poll the events (held up to 5 s while there is nothing new):
curl -sS -w '\\n' "$PB_URL/events?wait=5" -H "authorization: Bearer $PB_KEY"
"""


def console_url(base_url: str) -> str:
    """The web console; the key is typed into its sign-in form, never put in its URL."""
    return f"{base_url}/console"


def banner(base_url: str, api_key: str, dynamodb: str, connection: StandardConnection) -> str:
    return f"""\
pullbridge is running on {base_url} (Ctrl-C stops it)
  API key:    {api_key}  (tenant "local")
  Console:    {console_url(base_url)}  (open it and sign in with the API key above)
  DynamoDB:   {dynamodb}
  Connection: {connection.id} ("standard"), webhook secret {connection.webhook_secret}
  Webhooks:   {connection.webhook_url}

Try it in bash:

{shell_commands(base_url, api_key, connection)}"""
