"""/mutations: writes to the provider, logged and in the records when they answer, with Idempotency-Key."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from api_routes import wiring
from pullbridge.mutations import service as mutation_service
from pullbridge.mutations.models import Mutation, MutationCreate, MutationPage, MutationStatus
from pullbridge.openapi import responses

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.post(
    "/mutations",
    summary="Write to the provider; the change is logged and in the records when this answers",
    responses=responses(200, "The mutation, succeeded", 404, 409, 413, 422, 429, 502, 504),
)
def create_mutation(
    request: Annotated[MutationCreate, Body()],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="idempotency-key",
            min_length=1,
            max_length=255,
            description="The same key within 24 h answers the first request again; with another body, 409.",
        ),
    ] = None,
) -> Mutation:
    runs = wiring.idempotent_mutations()
    outcome = runs.run(wiring.tenant(router), request, idempotency_key, router.lambda_context)
    return mutation_service.answer(outcome)


@router.get("/mutations", summary="Mutations, newest first", responses=responses(200, "A page", 410))
def list_mutations(
    connection_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[MutationStatus | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MutationPage:
    return mutation_service.list_mutations(
        wiring.store,
        wiring.codec,
        wiring.tenant(router),
        connection_id=connection_id,
        status=status,
        cursor=cursor,
        limit=limit,
    )


@router.get("/mutations/<mutation_id>", summary="One mutation", responses=responses(200, "The mutation", 404))
def get_mutation(mutation_id: Annotated[str, Path(max_length=64)]) -> Mutation:
    return mutation_service.get_mutation(wiring.store, wiring.tenant(router), mutation_id)
