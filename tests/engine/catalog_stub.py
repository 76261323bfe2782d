"""The documented price catalog, for scripted stand-ins of the remote API.

`GET /v1/models?include=pricing` needs no key and answers whatever the key is
(api-facts.md), so a stand-in that scripts creates and polls answers it too, like the
API does. `with_catalog(handler)` wraps any httpx.MockTransport handler, sync or async.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import httpx

RUNWAY_PER_SECOND = 0.05  # USD: runway/gen4_turbo, 5 s = $0.25
CATALOG: dict[str, Any] = {
    "object": "list",
    "data": [
        {
            "id": "runway/gen4_turbo",
            "type": "video",
            "pricing": {
                "kind": "fixed",
                "currency": "USD",
                "units": [{"name": "second", "price": RUNWAY_PER_SECOND, "per": 1}],
            },
        }
    ],
}
BODY = json.dumps(CATALOG).encode()
ETAG = '"' + hashlib.sha256(BODY).hexdigest()[:16] + '"'


def is_catalog(request: httpx.Request) -> bool:
    """Tell whether `request` asks for the price catalog."""
    return request.method == "GET" and request.url.path in ("/v1/models", "/models")


def catalog_response(request: httpx.Request) -> httpx.Response:
    """Answer the catalog (304 when the client's ETag is current)."""
    if request.headers.get("If-None-Match") == ETAG:
        return httpx.Response(304, headers={"ETag": ETAG})
    return httpx.Response(200, content=BODY, headers={
        "content-type": "application/json", "ETag": ETAG,
    })


def with_catalog(handler: Callable[[httpx.Request], Any]) -> Callable[[httpx.Request], Any]:
    """Wrap a scripted API handler so it also serves the price catalog."""

    def answer(request: httpx.Request) -> Any:
        if is_catalog(request):
            return catalog_response(request)
        return handler(request)

    return answer
