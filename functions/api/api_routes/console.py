"""The console's page and assets: public (the page signs in in the browser), kept out of the OpenAPI
document."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from pullbridge import console

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.get(
    "/console", summary="The console: a web page that signs in with an API key", include_in_schema=False
)
def console_page() -> Response[str]:
    return console.respond(console.page(), router.current_event.headers.get("if-none-match"))


@router.get(
    "/console/assets/<name>", summary="The console's scripts, styles and icon", include_in_schema=False
)
def console_asset(name: Annotated[str, Path(max_length=100)]) -> Response[str]:
    return console.respond(console.asset(name), router.current_event.headers.get("if-none-match"))
