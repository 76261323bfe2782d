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
import math
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


class Identities:
    """Compute `request_id` and `derive_seed` for many bodies, byte for byte the same.

    Canonical JSON of a body is the canonical JSON of each of its values joined in key
    order, so each distinct value is encoded once and remembered: a 100,000-request sweep
    encodes its prompt once per prompt, not once per request. Bodies with keys that are
    not text, or with a value canonical JSON refuses, take `canonical_json` whole.
    """

    LIMIT = 65_536  # remembered texts per key; past that a text is encoded every time

    def __init__(self) -> None:
        self._texts: dict[str, dict[str, str]] = {}  # key -> text value -> its JSON piece
        # Body keys in insertion order -> (key, its JSON prefix, its texts) in sorted order.
        self._order: dict[tuple[str, ...], tuple[tuple[str, str, dict[str, str]], ...]] = {}
        self._tails: dict[tuple[str, str, str], str] = {}

    def request_id(self, provider: str, model: str, endpoint: str, body: Mapping[str, Any]) -> str:
        """Return `request_id(provider, model, endpoint, body)`."""
        return self._hash(provider, model, endpoint, body)[:ID_LENGTH]

    def derive_seed(
        self, provider: str, model: str, endpoint: str, body_without_seed: Mapping[str, Any]
    ) -> int:
        """Return `derive_seed(provider, model, endpoint, body_without_seed)`."""
        if "seed" in body_without_seed:
            msg = "derive_seed() takes the body without its seed"
            raise ValueError(msg)
        return int(self._hash(provider, model, endpoint, body_without_seed)[:8], 16)

    def _hash(self, provider: str, model: str, endpoint: str, body: Mapping[str, Any]) -> str:
        encoded = self._body(body)
        if encoded is None:
            return _identity_hash(provider, model, endpoint, body)
        tail = self._tails.get((provider, model, endpoint))
        if tail is None:
            # {"body":…,"endpoint":…,"model":…,"provider":…}: "body" sorts first.
            rest = canonical_json({"endpoint": endpoint, "model": model, "provider": provider})
            tail = "," + rest.decode("utf-8")[1:]
            self._tails[(provider, model, endpoint)] = tail
        text = '{"body":' + encoded + tail
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _body(self, body: Mapping[str, Any]) -> str | None:
        """Return the canonical JSON of `body` as text, or None to encode it whole."""
        names = tuple(body)
        order = self._order.get(names)
        if order is None:
            if not all(type(name) is str for name in names):
                return None
            order = tuple(
                (name, canonical_json(name).decode("utf-8") + ":", self._texts.setdefault(name, {}))
                for name in sorted(names)
            )
            self._order[names] = order
        parts = []
        for name, key, texts in order:
            value = body[name]
            kind = type(value)
            if kind is str:  # a text key holds a text only: 1, True and "1" stay apart
                piece = texts.get(value)
                if piece is None:
                    piece = key + canonical_json(value).decode("utf-8")
                    if len(texts) < self.LIMIT:
                        texts[value] = piece
            elif kind is int:  # not remembered: json writes int.__repr__, as cheap as a lookup
                piece = key + int.__repr__(value)
            elif kind is bool:
                piece = key + ("true" if value else "false")
            elif value is None:
                piece = key + "null"
            elif kind is float:
                if not math.isfinite(value):
                    return None  # canonical_json refuses it; let it say so
                piece = key + float.__repr__(value)
            else:  # lists and mappings: encoded as they are, nested keys sorted alike
                piece = key + canonical_json(value).decode("utf-8")
            parts.append(piece)
        return "{" + ",".join(parts) + "}"
