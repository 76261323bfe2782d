"""What the sandbox charges, and the price catalog it publishes (`GET /v1/models`).

Every catalog model gets a price per second of video, made up but stable (a hash of its
name picks $0.05–$0.50 a second), and models with resolutions a price per resolution
(1080p costs 1.6 times 720p), published the documented way:

    GET /v1/models?include=pricing      no key; ETag, and 304 for a matching If-None-Match
    {"object": "list", "data": [{"id", "type", "aliases", "tags", "info", "pricing"}]}
    pricing: {"kind": "fixed", "units": [{"name": "second", "price", "per": 1}]}
          or {"kind": "variants", "dimensions": ["resolution"],
              "variants": [{"when": {"resolution": "720p"}, "price", "unit": "second", "per": 1}]}

A generation is billed its price when it is accepted (`x-aimlapi-usd-spent` /
`x-aimlapi-credits-used` on the create, `meta.usage` in the unified body); a failed one is
refunded (its usage-log row costs 0). The MiniMax-derived `video-01*` models publish no
price, as a model without pricing in the real catalog, but are billed all the same: a
client must treat them as unknown, never as free.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from runner.catalog import Model, Route, load_catalog, seconds_of

CREDITS_PER_USD = 2_000_000  # the API's rate: $1 = 2,000,000 credits
UNPUBLISHED = frozenset({"video-01", "video-01-live2d"})  # priced, but not in the catalog
RESOLUTION_FACTOR = {"480p": 0.6, "540p": 0.7, "720p": 1.0, "768p": 1.1, "1080p": 1.6}
DEFAULT_SECONDS = 5


def credits_of(usd: float) -> int:
    """Return the credits an amount in USD is."""
    return round(usd * CREDITS_PER_USD)


def per_second(model: Model, resolution: str | None) -> float:
    """Return the model's price per second of video (at `resolution`, where it has them)."""
    digest = hashlib.sha256(model.name.encode()).digest()
    base = 0.05 + digest[0] % 46 / 100  # $0.05 .. $0.50 a second
    factor = RESOLUTION_FACTOR.get(str(resolution).lower(), 1.0) if resolution else 1.0
    return round(base * factor, 4)


def pricing_block(model: Model) -> dict[str, Any] | None:
    """Return the model's published `pricing` block (None for an unpublished price)."""
    if model.name in UNPUBLISHED:
        return None
    if model.resolutions:
        return {
            "kind": "variants",
            "currency": "USD",
            "dimensions": ["resolution"],
            "variants": [
                {"when": {"resolution": r}, "price": per_second(model, r), "unit": "second",
                 "per": 1}
                for r in model.resolutions
            ],
        }
    return {
        "kind": "fixed",
        "currency": "USD",
        "units": [{"name": "second", "measure": "video", "price": per_second(model, None),
                   "per": 1}],
    }


def charge(model: Model, route: Route, body: Mapping[str, Any]) -> float:
    """Return what accepting `body` bills: price per second times its seconds."""
    field = route.wire_name("duration")
    seconds = seconds_of(body.get(field)) if field else None
    seconds = seconds or model.expected_duration or DEFAULT_SECONDS
    resolution = body.get("resolution", model.default_resolution)
    return round(per_second(model, resolution if isinstance(resolution, str) else None)
                 * seconds, 6)


@cache
def catalog_response() -> tuple[bytes, str]:
    """Return the `GET /v1/models?include=pricing` body and its ETag."""
    data = []
    for model in sorted(load_catalog().models.values(), key=lambda m: m.name):
        item: dict[str, Any] = {
            "id": model.name,
            "type": "video",
            "aliases": [],
            "tags": [f"family:{model.family}"],
            "info": {"name": model.title, "developer": model.family},
        }
        block = pricing_block(model)
        if block is not None:
            item["pricing"] = block
        data.append(item)
    body = json.dumps({"object": "list", "data": data}, sort_keys=True).encode()
    etag = 'W/"' + hashlib.sha256(body).hexdigest()[:27] + '"'
    return body, etag
