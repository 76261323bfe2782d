"""Request identity: canonical JSON, content-hash ids and derived seeds.

The rules are the ones in docs/ARCHITECTURE.md, and they are a promise to users:
ids and derived seeds must never change between versions for the same request.

    id   = sha256(canonical_json({"provider", "model", "endpoint", "body"}))[:16]
    seed = int(sha256(canonical_json({... same, body without "seed" ...}))[:8], 16)

`body` is the exact POST body with each local image replaced by `sha256:<hex>`. The
provider is part of both, so a sandbox result can never satisfy a real request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

ID_LENGTH = 16  # hex characters: 64 bits, plenty for batches of millions


def canonical_json(obj: Any) -> bytes:
    """Serialize `obj` as canonical JSON: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _identity_hash(provider: str, model: str, endpoint: str, body: Mapping[str, Any]) -> str:
    payload = {"provider": provider, "model": model, "endpoint": endpoint, "body": body}
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def request_id(provider: str, model: str, endpoint: str, body: Mapping[str, Any]) -> str:
    """Return the stable id of a request: a content hash of what makes the video."""
    return _identity_hash(provider, model, endpoint, body)[:ID_LENGTH]


def derive_seed(
    provider: str, model: str, endpoint: str, body_without_seed: Mapping[str, Any]
) -> int:
    """Return the seed for a request whose spec gives none (0..4294967295)."""
    if "seed" in body_without_seed:
        msg = "derive_seed() takes the body without its seed"
        raise ValueError(msg)
    return int(_identity_hash(provider, model, endpoint, body_without_seed)[:8], 16)
