"""Write the contract cassettes from the API's documented examples (not from a recording).

Run `python tests/engine/cassettes/build.py` to regenerate them. Each exchange follows
../../../../shared/DESIGN.md and api-facts.md: the documented create body, the create
answer (`{"id", "status": "queued"}`, HTTP 201 as the older schema documents), polls that
go queued → generating → completed with a `video` list of one signed URL, then the
download. The MP4 is a real H.264 clip rendered by the sandbox so the engine can probe it. Before
submitting, a run reads the price catalog (`GET /v1/models?include=pricing`, no key); the
create answer carries the documented cost headers.
No authorization header is stored and every `_jwt` token reads REDACTED, exactly what
the recording scrubbers in conftest.py leave behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from runner.sandbox.render import RenderJob, render_clip

HERE = Path(__file__).resolve().parent
API = "https://api.aimlapi.com/v2/generate/video/runway/generation"
CATALOG = "https://api.aimlapi.com/v1/models?include=pricing"
PRICE_PER_SECOND = 0.05  # USD, runway/gen4_turbo
CHARGED_USD = 0.25  # 5 s
CHARGED_CREDITS = 500_000  # $1 = 2,000,000 credits
GENERATION_ID = "b5ac6e17-6c1a-4b7c-9ad2-62bdb56c9d3e"
VIDEO_URL = f"https://cdn.aimlapi.com/generations/{GENERATION_ID}.mp4?_jwt=REDACTED"

# The documented example body (DESIGN.md), with the docs' public first-frame image.
CREATE_BODY = {
    "model": "runway/gen4_turbo",
    "image_url": (
        "https://upload.wikimedia.org/wikipedia/commons/thumb/3/3f/"
        "Fronalpstock_big.jpg/800px-Fronalpstock_big.jpg"
    ),
    "prompt": "A menacing evil dragon appears in a distance above the tallest mountain",
    "duration": 5,
    "ratio": "16:9",
    "seed": 1,
}


def _json_response(code: int, message: str, body: Any, **headers: str) -> dict[str, Any]:
    return {
        "status": {"code": code, "message": message},
        "headers": {
            "content-type": ["application/json; charset=utf-8"],
            "x-inference-id": [GENERATION_ID],
            **{k: [v] for k, v in headers.items()},
        },
        "body": {"string": json.dumps(body)},
    }


def _request(method: str, uri: str, body: str | None = None) -> dict[str, Any]:
    headers = {"accept": ["application/json"], "user-agent": ["runner/0.1.0"]}
    if body is not None:
        headers["content-type"] = ["application/json"]
    return {"method": method, "uri": uri, "body": body or "", "headers": headers}


def _catalog() -> dict[str, Any]:
    """The price catalog a run reads before it submits (no key, no authorization)."""
    body = {"object": "list", "data": [{
        "id": "runway/gen4_turbo", "type": "video",
        "pricing": {"kind": "fixed", "currency": "USD",
                    "units": [{"name": "second", "price": PRICE_PER_SECOND, "per": 1}]},
    }]}
    return {
        "request": _request("GET", CATALOG),
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["application/json"], "etag": ['"catalog-1"']},
            "body": {"string": json.dumps(body)},
        },
    }


def _poll(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "request": _request("GET", f"{API}?generation_id={GENERATION_ID}"),
        "response": _json_response(200, "OK", {"id": GENERATION_ID, "status": status, **extra}),
    }


def _clip() -> bytes:
    job = RenderJob(
        model="runway/gen4_turbo", width=160, height=90, fps=8, duration=5, seed=1,
        prompt=CREATE_BODY["prompt"], image_sha256="documented-example", image=None,
    )
    return render_clip(job)


def happy_path() -> dict[str, Any]:
    """create → queued → generating → completed (video list) → download."""
    clip = _clip()
    create = {
        "request": _request("POST", API, json.dumps(CREATE_BODY)),
        "response": _json_response(
            201, "Created", {"id": GENERATION_ID, "status": "queued"},
            **{"x-aimlapi-usd-spent": str(CHARGED_USD),
               "x-aimlapi-credits-used": str(CHARGED_CREDITS)},
        ),
    }
    download = {
        "request": {"method": "GET", "uri": VIDEO_URL, "body": "",
                    "headers": {"user-agent": ["runner/0.1.0"]}},
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["video/mp4"], "content-length": [str(len(clip))]},
            "body": {"string": clip},
        },
    }
    return {
        "version": 1,
        "interactions": [
            _catalog(),
            create,
            _poll("queued"),
            _poll("generating"),
            _poll("completed", video=[VIDEO_URL]),
            download,
        ],
    }


def validation_error() -> dict[str, Any]:
    """create answered 400 with the documented error body."""
    body = dict(CREATE_BODY, ratio="7:3")
    error = {
        "message": "Body validation error! ratio: must be one of 16:9, 9:16, 4:3, 3:4, 1:1, 21:9",
        "path": "/v2/generate/video/runway/generation",
        "requestId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "statusCode": 400,
        "timestamp": "2025-06-01T12:00:00.000Z",
    }
    return {
        "version": 1,
        "interactions": [
            _catalog(),
            {
                "request": _request("POST", API, json.dumps(body)),
                "response": _json_response(400, "Bad Request", error),
            }
        ],
    }


def main() -> None:
    for name, cassette in {
        "runway_happy_path.yaml": happy_path(),
        "runway_validation_error.yaml": validation_error(),
    }.items():
        text = yaml.safe_dump(cassette, sort_keys=False, width=100, allow_unicode=True)
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
