"""Contract tests: the engine replays the documented API exchange from vcrpy cassettes.

The cassettes (built by cassettes/build.py from the documented examples) replay with
record_mode="none" and the socket guard on: any request the documented exchange does
not hold fails the test instead of reaching the network.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
import vcr
import yaml

from runner.clock import FakeClock
from runner.engine import RunOptions, execute
from runner.manifest import read_state
from runner.probe import probe
from runner.request import Request

from .cassettes.build import CHARGED_CREDITS, CHARGED_USD, CREATE_BODY
from .conftest import FakeSpec

CASSETTES = Path(__file__).parent / "cassettes"
KEY = "sk-contract-test-key-0123456789"
JWT = re.compile(r"(_jwt=)[^\"&\s']+")
BODY = CREATE_BODY  # the cassettes hold exactly this body; vcr matches on it


def scrub_request(request: Any) -> Any:
    """Drop signed tokens from a request URI before it is recorded or matched."""
    request.uri = JWT.sub(r"\1REDACTED", request.uri)
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Drop signed tokens from JSON response bodies before they are recorded."""
    body = response["body"]["string"]
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return response  # a video: nothing signed inside
        response["body"]["string"] = JWT.sub(r"\1REDACTED", text).encode("utf-8")
    elif isinstance(body, str):
        response["body"]["string"] = JWT.sub(r"\1REDACTED", body)
    return response


CONTRACT = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    filter_headers=["authorization"],
    before_record_request=scrub_request,
    before_record_response=scrub_response,
    match_on=["method", "scheme", "host", "port", "path", "query", "body"],
    decode_compressed_response=True,
)


def _spec(body: dict[str, Any]) -> FakeSpec:
    request = Request(
        id="contract" + str(len(body)),
        spec="specs/dragon.yaml",
        spec_name="dragon",
        job="default",
        provider="aimlapi",
        model="runway/gen4_turbo",
        endpoint="/v2/generate/video/runway/generation",
        body=body,
        output="16x9/seed-1.mp4",
        matrix={},
        seed_derived=False,
    )
    return FakeSpec("dragon", "specs/dragon.yaml", (request,), {})


@pytest.fixture(autouse=True)
def _live_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented exchange starts with the price catalog: let the run ask for it."""
    monkeypatch.delenv("RUNNER_PRICES")


def _execute(spec: FakeSpec, tmp_path: Path) -> Any:
    options = RunOptions(output_dir=tmp_path / "outputs", seed=0)
    return asyncio.run(
        execute(
            [(spec, list(spec.requests))],
            options,
            clock=FakeClock(),
            environ={"AIMLAPI_API_KEY": KEY},
        )
    )


def test_documented_exchange_replays_to_a_verified_video(tmp_path: Path) -> None:
    """create → queued → generating → completed (video list) → download gives a probed MP4."""
    spec = _spec(BODY)
    with CONTRACT.use_cassette("runway_happy_path.yaml", allow_playback_repeats=False) as tape:
        summary = _execute(spec, tmp_path)
        assert tape.all_played  # exactly the documented exchange, nothing skipped
        assert tape.play_count == 6
    assert summary.exit_code == 0
    folder = tmp_path / "outputs" / "dragon"
    (state,) = read_state(folder).values()
    assert state.generation_id == "b5ac6e17-6c1a-4b7c-9ad2-62bdb56c9d3e"
    assert state.cost == {"usd": CHARGED_USD, "credits": CHARGED_CREDITS}
    assert summary.spent_usd == summary.estimated_usd == CHARGED_USD  # 5 s at $0.05
    assert probe(folder / "16x9/seed-1.mp4").codec == "h264"


def test_documented_validation_error_fails_the_request(tmp_path: Path) -> None:
    """A documented 400 body fails the request with the server's message, sent once."""
    spec = _spec(dict(BODY, ratio="7:3"))
    with CONTRACT.use_cassette("runway_validation_error.yaml") as tape:
        summary = _execute(spec, tmp_path)
        assert tape.all_played
    (report,) = summary.reports
    assert report.outcome == "failed"
    assert "Body validation error! ratio" in (report.reason or "")


def test_an_undocumented_request_cannot_reach_the_network(tmp_path: Path) -> None:
    """A body the cassette does not hold fails loudly instead of going out."""
    spec = _spec(dict(BODY, seed=2))
    with (
        CONTRACT.use_cassette("runway_happy_path.yaml"),
        pytest.raises(vcr.errors.CannotOverwriteExistingCassetteException),
    ):
        _execute(spec, tmp_path)


@pytest.mark.parametrize("name", ["runway_happy_path.yaml", "runway_validation_error.yaml"])
def test_cassettes_hold_no_credentials_or_signed_tokens(name: str) -> None:
    """No authorization header and no unredacted _jwt token is stored in a cassette."""
    data = yaml.safe_load((CASSETTES / name).read_text(encoding="utf-8"))
    for interaction in data["interactions"]:
        headers = {k.lower() for k in interaction["request"]["headers"]}
        assert "authorization" not in headers
        texts = [interaction["request"]["uri"]]
        body = interaction["response"]["body"]["string"]
        if isinstance(body, str):
            texts.append(body)
        for text in texts:
            for token in re.findall(r"_jwt=([^\"&\s']+)", text):
                assert token == "REDACTED"


def test_scrubbers_remove_signed_tokens() -> None:
    """The recording scrubbers redact _jwt in URIs and JSON bodies, leaving video bytes alone."""
    signed = '{"video": ["https://cdn.test/v.mp4?_jwt=eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl"]}'
    response = scrub_response({"body": {"string": signed.encode()}})
    assert b"eyJhbGciOi" not in response["body"]["string"]
    assert b"_jwt=REDACTED" in response["body"]["string"]
    video = {"body": {"string": b"\x00\x00\x00\x18ftypmp42\xff\xfe"}}
    assert scrub_response(video)["body"]["string"] == b"\x00\x00\x00\x18ftypmp42\xff\xfe"
    request = vcr.request.Request("GET", "https://cdn.test/v.mp4?_jwt=abc.def&x=1", None, {})
    assert scrub_request(request).uri == "https://cdn.test/v.mp4?_jwt=REDACTED&x=1"
