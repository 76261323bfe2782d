"""The one rule for `X-Client-Request-Id`, shared by the API client and the sandbox.

The API stores the header and reports it as `client_request_id` in `GET /v2/logs` only
when it is 1-128 characters of `A-Z a-z 0-9 . _ : -`; anything else is dropped without
a word and the request still runs (and is billed). So the client refuses to send an id
the API would drop, and the sandbox drops it exactly as the API does.
"""

from __future__ import annotations

import re

HEADER = "X-Client-Request-Id"
MAX_LENGTH = 128
_ALLOWED = re.compile(rf"[A-Za-z0-9._:\-]{{1,{MAX_LENGTH}}}")


def is_client_request_id(value: str) -> bool:
    """Tell whether the API would keep `value` as a client request id."""
    return _ALLOWED.fullmatch(value) is not None
