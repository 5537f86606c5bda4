"""The API's cursor key from Secrets Manager: read once, and a failure that names the secret, not a value."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from pullbridge.secrets import fetch_secret

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cursor-AbCdEf"


def _stubbed(response: dict[str, Any] | None = None, error: str | None = None) -> Any:
    client = botocore.session.get_session().create_client(
        "secretsmanager", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    if error is not None:
        stubber.add_client_error(
            "get_secret_value", service_error_code=error, expected_params={"SecretId": ARN}
        )
    else:
        stubber.add_response("get_secret_value", response or {}, expected_params={"SecretId": ARN})
    stubber.activate()
    return client


def test_the_secret_string_is_the_cursor_key() -> None:
    key = "k" * 64
    assert fetch_secret(ARN, lambda: _stubbed({"ARN": ARN, "Name": "cursor", "SecretString": key})) == key


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (None, "AccessDeniedException", "cannot read the cursor signing key"),
        (None, "ResourceNotFoundException", "cannot read the cursor signing key"),
        ({"ARN": ARN, "Name": "cursor", "SecretBinary": b"\x00"}, None, "holds no string value"),
    ],
)
def test_a_secret_that_cannot_be_read_fails_the_cold_start_with_the_reason(
    response: dict[str, Any] | None, error: str | None, message: str
) -> None:
    with pytest.raises(RuntimeError, match=message) as failed:
        fetch_secret(ARN, lambda: _stubbed(response, error))
    assert ARN in str(failed.value)
