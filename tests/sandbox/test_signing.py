"""Signed download URLs: valid until their expiry, for their own file, unforgeable."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import requests

from runner.sandbox import RunningSandbox
from runner.sandbox.signing import TokenCheck, UrlSigner
from tests.sandbox.conftest import Client, body
from tests.sandbox.test_contract import assert_error

SIGNER = UrlSigner(b"k" * 32)


def test_token_is_valid_until_expiry_then_expired() -> None:
    """A token checks VALID before `exp` and EXPIRED from `exp` on."""
    token = SIGNER.token("a.mp4", expires_at=1000.0)
    assert SIGNER.check(token, "a.mp4", now=999.9) is TokenCheck.VALID
    assert SIGNER.check(token, "a.mp4", now=1000.0) is TokenCheck.EXPIRED


def test_token_for_another_file_forged_or_garbage_is_invalid() -> None:
    """Another file's token, another key's token, edited claims and junk are INVALID."""
    token = SIGNER.token("a.mp4", expires_at=1000.0)
    header, payload, signature = token.split(".")
    longer = UrlSigner(b"k" * 32).token("a.mp4", expires_at=9999.0).split(".")[1]
    assert SIGNER.check(token, "b.mp4", now=0) is TokenCheck.INVALID
    assert SIGNER.check(UrlSigner(b"x" * 32).token("a.mp4", 1000.0), "a.mp4", 0) is (
        TokenCheck.INVALID)
    assert SIGNER.check(f"{header}.{longer}.{signature}", "a.mp4", 0) is TokenCheck.INVALID
    for junk in ("", "a.b", "a.b.c.d", "...", "x.y.z"):
        assert SIGNER.check(junk, "a.mp4", 0) is TokenCheck.INVALID


def test_download_refuses_missing_or_tampered_tokens(client: Client) -> None:
    """Over HTTP, a URL without its token, or with an edited one, is a 403."""
    result, _ = client.generate(body())
    url = result["video"][0]
    bare = url.split("?")[0]
    assert_error(requests.get(bare, timeout=10), 403, "invalid")
    assert_error(requests.get(url[:-2] + "xx", timeout=10), 403, "invalid")
    other = client.generate(body(seed=5))[0]["video"][0]
    swapped = bare + "?" + other.split("?")[1]
    assert_error(requests.get(swapped, timeout=10), 403, "invalid")


def test_url_ttl_knob_sets_the_expiry(
    make_sandbox: Callable[..., tuple[RunningSandbox, Client]],
) -> None:
    """The token's exp claim is the moment it was issued plus url_ttl."""
    _, client = make_sandbox(url_ttl=120.0)
    before = time.time()
    result, _ = client.generate(body())
    after = time.time()
    payload = result["video"][0].split("_jwt=")[1].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    # Issued between `before` and `after`; exp is rounded to the millisecond.
    assert before + 120 - 0.001 <= claims["exp"] <= after + 120 + 0.001
