"""`Idempotency-Key` on `POST /mutations`, with Powertools' Idempotency utility.

Powertools keeps one record per (tenant, key) in the IdempotencyTable for 24 h: while a request runs it is
`INPROGRESS` (so a racing request with the key waits here, then gets the first one's answer, and the
provider is called once), and once a run returned its outcome is kept and replayed. The request body is
part of the record (`payload_validation_jmespath`), so the key with another body is 409. A run that raises
(a 429, a 5xx, a timeout: worth retrying) leaves no record, and the next request with the key runs again;
`Mutations.run` then finds the key's mutation and recovers it instead of writing blindly.

The persistence layer is injected (`storage.idempotency`: Powertools' DynamoDB layer on the
IdempotencyTable; tests may pass another).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)

from pullbridge.errors import Conflict, StorageUnavailable
from pullbridge.mutations.models import MutationCreate
from pullbridge.mutations.service import Mutations, Outcome

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
else:
    LambdaContext = Any

KEY_WINDOW_SECONDS = 86_400
IN_PROGRESS_WAIT_SECONDS = 10.0
"""How long a request waits for a racing one with its key to finish before answering 409 (retry)."""
IN_PROGRESS_POLL_SECONDS = 0.1


class IdempotentMutations:
    def __init__(
        self,
        mutations: Mutations,
        persistence: BasePersistenceLayer,
        *,
        wait_seconds: float = IN_PROGRESS_WAIT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mutations = mutations
        self._wait_seconds = wait_seconds
        self._sleep = sleep
        self._clock = clock
        self._config = IdempotencyConfig(
            event_key_jmespath="[tenant_id, idempotency_key]",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=KEY_WINDOW_SECONDS,
        )

        def run_once(call: dict[str, Any]) -> Outcome:
            request = MutationCreate.model_validate(call["request"])
            return mutations.run(call["tenant_id"], request, call["idempotency_key"])

        self._run_once: Callable[..., Outcome] = idempotent_function(
            data_keyword_argument="call", config=self._config, persistence_store=persistence
        )(run_once)

    def run(
        self,
        tenant_id: str,
        request: MutationCreate,
        idempotency_key: str | None,
        lambda_context: LambdaContext | None = None,
    ) -> Outcome:
        if not idempotency_key:
            return self._mutations.run(tenant_id, request, None)
        if lambda_context is not None:
            # An INPROGRESS record outlives a run that died only until this invocation's timeout.
            self._config.register_lambda_context(lambda_context)
        call = {
            "tenant_id": tenant_id,
            "idempotency_key": idempotency_key,
            "request": request.model_dump(mode="json"),
        }
        give_up_at = self._clock() + self._wait_seconds
        while True:
            try:
                return self._run_once(call=call)
            except IdempotencyValidationError as exc:
                raise Conflict(
                    "this Idempotency-Key was used with another request body in the last 24 h",
                    key="idempotency_key_reused",
                    data={"field": "Idempotency-Key"},
                ) from exc
            except IdempotencyAlreadyInProgressError as exc:
                if self._clock() >= give_up_at:
                    raise Conflict(
                        "a request with this Idempotency-Key is still in progress; retry it later",
                        key="idempotency_key_in_progress",
                        data={"field": "Idempotency-Key"},
                    ) from exc
                self._sleep(IN_PROGRESS_POLL_SECONDS)
            except IdempotencyPersistenceLayerError as exc:
                raise StorageUnavailable("the idempotency store failed; retry") from exc
