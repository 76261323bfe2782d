"""Signed, expiring download URLs, like the CDN's `?_jwt=` links.

The token is a compact JWT (HS256) whose claims name the file and its expiry, so a
client can decode it the way it would a real one; only the server's key can mint it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from enum import Enum


class TokenCheck(Enum):
    """The outcome of checking a download token."""

    VALID = "valid"
    EXPIRED = "expired"  # well signed, past its `exp`
    INVALID = "invalid"  # malformed, forged, or for another file


class UrlSigner:
    """Mint and check download tokens with one secret key."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def token(self, file: str, expires_at: float) -> str:
        """Return a token allowing `file` to be fetched until `expires_at` (epoch seconds)."""
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        claims = {"file": file, "exp": round(expires_at, 3)}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{payload}.{self._sign(header, payload)}"

    def check(self, token: str, file: str, now: float) -> TokenCheck:
        """Tell whether `token` lets `file` be fetched at `now`."""
        parts = token.split(".")
        if len(parts) != 3:
            return TokenCheck.INVALID
        header, payload, signature = parts
        if not hmac.compare_digest(signature, self._sign(header, payload)):
            return TokenCheck.INVALID
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return TokenCheck.INVALID
        if not isinstance(claims, dict) or claims.get("file") != file:
            return TokenCheck.INVALID
        expires_at = claims.get("exp")
        if not isinstance(expires_at, int | float):
            return TokenCheck.INVALID
        return TokenCheck.VALID if now < expires_at else TokenCheck.EXPIRED

    def _sign(self, header: str, payload: str) -> str:
        mac = hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256)
        return _b64(mac.digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
