"""pullbridge-client: the Python client of the pullbridge HTTP API (needs only httpx).

    from pullbridge_client import Client

    with Client("https://api.example.com", api_key) as client:
        for event in client.iter_events():
            print(event.received_at, event.type, event.id)
        client.consume("billing", handle, concurrency=4)  # a worker on a consumer: acks, retries
        client.mutate(connection_id, "customers", "update", record_id="cus_1", data={"name": "Ada"})

The `pullbridge` command is `pullbridge_client.cli` (extra `[cli]`); the admin commands' AWS side is
`pullbridge_client.admin` (extra `[admin]`). Neither is imported here, so importing this package loads
httpx and nothing of click, boto3 or the server.
"""

from pullbridge_client._version import __version__
from pullbridge_client.client import Client, EventSourceFilter
from pullbridge_client.consumer_models import (
    AckResult,
    Consumer,
    ConsumeSummary,
    DeadLetter,
    Delivery,
    ExtendResult,
    NackResult,
    RedriveResult,
    TermResult,
)
from pullbridge_client.errors import (
    BadRequest,
    Conflict,
    ErrorObject,
    Gone,
    NotFound,
    PayloadTooLarge,
    PullbridgeAPIError,
    PullbridgeClientError,
    RateLimited,
    ResumeError,
    ServerError,
    Unauthorized,
    Unprocessable,
)
from pullbridge_client.models import Event, Page
from pullbridge_client.mutation_models import Mutation, MutationKind, MutationStatus
from pullbridge_client.stream import EventStream

__all__ = [
    "AckResult",
    "BadRequest",
    "Client",
    "Conflict",
    "ConsumeSummary",
    "Consumer",
    "DeadLetter",
    "Delivery",
    "ErrorObject",
    "Event",
    "EventSourceFilter",
    "EventStream",
    "ExtendResult",
    "Gone",
    "Mutation",
    "MutationKind",
    "MutationStatus",
    "NackResult",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "PullbridgeAPIError",
    "PullbridgeClientError",
    "RateLimited",
    "RedriveResult",
    "ResumeError",
    "ServerError",
    "TermResult",
    "Unauthorized",
    "Unprocessable",
    "__version__",
]
