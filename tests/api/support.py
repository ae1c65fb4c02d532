"""What the API suites check alike about a request the broker refuses for its input.

Every bad parameter, body field or header is answered 422 with the `invalid_request` code, the
name of what was wrong in `param`, and a message for a person. The suites check that shape
through `assert_refused` and then add what their own endpoint promises about the message.
"""

from __future__ import annotations

from typing import Any


def assert_refused(response: Any, param: str) -> dict[str, Any]:
    """`response` is a 422 `invalid_request` naming `param`, with a message; returns the error."""
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["param"] == param
    assert isinstance(error["message"], str) and error["message"]
    return error
