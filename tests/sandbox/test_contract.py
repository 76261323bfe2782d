"""The HTTP contract: paths, status codes and JSON shapes exactly as the API documents them."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import av
import numpy as np
import pytest
import requests
from PIL import Image

from runner.sandbox import RunningSandbox
from tests.sandbox.conftest import ENDPOINT, Client, body, png_data_uri

ERROR_KEYS = {"message", "path", "requestId", "statusCode", "timestamp"}
Make = Callable[..., tuple[RunningSandbox, Client]]


def assert_error(response: requests.Response, status: int, *words: str) -> dict[str, Any]:
    """Check an error response: status, the documented body, x-inference-id = requestId."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()
    assert set(error) == ERROR_KEYS
    assert error["statusCode"] == status
    assert response.headers["x-inference-id"] == error["requestId"]
    assert error["timestamp"].endswith("Z")
    for word in words:
        assert word in error["message"]
    return error


def test_create_answers_id_and_queued_with_inference_id(client: Client) -> None:
    """POST answers 2xx {"id", "status": "queued"} and x-inference-id equals the id."""
    response = client.create(body())
    assert 200 <= response.status_code < 300
    created = response.json()
    assert set(created) == {"id", "status"} and created["status"] == "queued"
    assert response.headers["x-inference-id"] == created["id"]


def test_poll_progresses_to_completed_with_signed_video_list(client: Client) -> None:
    """A poll ends completed with "video": [one signed .mp4 URL] and x-inference-id = id."""
    gen_id = client.create(body()).json()["id"]
    result = client.wait(gen_id)
    assert result["status"] == "completed" and result["id"] == gen_id
    (url,) = result["video"]
    assert url.startswith(client.base_url + "/files/") and ".mp4?_jwt=" in url
    assert "sandbox" not in result  # only placeholder renders carry the extra note
    assert client.poll(gen_id).headers["x-inference-id"] == gen_id


def test_queueing_beyond_concurrency(make_sandbox: Make) -> None:
    """With one slot the second generation waits queued while the first is generating."""
    _, client = make_sandbox(latency=30.0, concurrency=1)
    first = client.create(body(seed=1)).json()["id"]
    second = client.create(body(seed=2)).json()["id"]
    assert client.poll(first).json()["status"] == "generating"
    assert client.poll(second).json()["status"] == "queued"
    counts = client.stats()["generations"]
    assert counts == {"queued": 1, "generating": 1, "completed": 0, "error": 0}


def test_concurrency_can_grow_at_runtime(make_sandbox: Make) -> None:
    """Raising concurrency via /_sandbox/config lets new generations start at once."""
    _, client = make_sandbox(latency=30.0, concurrency=1)
    client.create(body(seed=1))
    assert client.configure(concurrency=2).json()["concurrency"] == 2
    later = client.create(body(seed=2)).json()["id"]
    assert client.poll(later).json()["status"] == "generating"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"ratio": "2:1"}, ["ratio", "is not one of"]),
        ({"duration": 7}, ["duration"]),
        ({"seed": -1}, ["seed"]),
        ({"seed": 2**32}, ["seed"]),
        ({"image_url": None}, ["image_url", "required"]),
        ({"image_url": "http://example.com/a.png"}, ["image_url", "does not match"]),
        ({"prompt": "🐉" * 501}, ["prompt", "UTF-16"]),
        ({"watermark": True}, ["watermark"]),
        ({"model": "runway/gen9"}, ["unknown model", "runway/gen4_turbo"]),
        ({"model": None}, ["unknown model"]),
        ({"model": "gen3a_turbo", "ratio": "1:1"}, ["ratio"]),
        ({"image_url": "data:image/png;base64,@@@"}, ["image_url", "base64"]),
        ({"image_url": "data:image/png;base64,aGVsbG8="}, ["image_url", "image"]),
        ({"image_url": png_data_uri((300, 100))}, ["image_url", "between 0.5 and 2"]),
    ],
)
def test_validation_errors_are_400_with_the_error_body(
    client: Client, changes: dict[str, Any], words: list[str]
) -> None:
    """Every schema or image problem is a 400 naming the field, and nothing is created."""
    error = assert_error(client.create(body(**changes)), 400, "Body validation error", *words)
    assert error["path"] == ENDPOINT
    assert client.stats()["submissions"] == 0


def test_prompt_of_exactly_1000_utf16_units_is_accepted(client: Client) -> None:
    """The prompt limit counts UTF-16 code units: 500 emoji (1000 units) pass."""
    assert client.create(body(prompt="🐉" * 500)).status_code == 200


def test_body_that_is_not_a_json_object_is_400(client: Client) -> None:
    """A body that is not JSON, or JSON but not an object, is a 400."""
    url = client.base_url + ENDPOINT
    auth = {"Authorization": "Bearer k"}
    assert_error(requests.post(url, data=b"{nope", headers=auth, timeout=10), 400, "not JSON")
    assert_error(requests.post(url, json=[1], headers=auth, timeout=10), 400, "object")
    nan = b'{"model": "runway/gen4_turbo", "image_url": "https://a.b/c.png", "seed": NaN}'
    assert_error(requests.post(url, data=nan, headers=auth, timeout=10), 400, "not JSON")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "bearer"])
def test_missing_or_empty_bearer_key_is_401(client: Client, header: str | None) -> None:
    """Without a non-empty bearer key both POST and GET answer 401 and create nothing."""
    headers = {} if header is None else {"Authorization": header}
    assert_error(client.create(body(), headers=headers), 401, "Bearer")
    assert_error(client.poll("anything", headers=headers), 401)
    assert client.stats()["submissions"] == 0


def test_any_bearer_key_is_accepted(client: Client) -> None:
    """The sandbox takes any non-empty key (there is no real account behind it)."""
    response = client.create(body(), headers={"Authorization": "bearer whatever"})
    assert response.status_code == 200


def test_unknown_generation_is_404(client: Client) -> None:
    """Polling an id the server never issued answers 404 with the error body."""
    assert_error(client.poll("no-such-id"), 404, "no-such-id")


def test_poll_without_generation_id_is_400(client: Client) -> None:
    """GET without ?generation_id= is a 400 saying how to call it."""
    response = client.session.get(client.base_url + ENDPOINT, headers={"Authorization": "Bearer k"})
    assert_error(response, 400, "generation_id")


def test_unknown_path_and_method_use_the_error_body(client: Client) -> None:
    """aiohttp's own 404 and 405 answers are reshaped into the API's error body."""
    assert_error(requests.get(client.base_url + "/v2/nothing", timeout=10), 404)
    assert_error(requests.put(client.base_url + ENDPOINT, timeout=10), 405)


def test_gen3a_turbo_renders_at_its_own_size_and_crossfades_to_the_last_frame(
    client: Client,
) -> None:
    """gen3a_turbo (768 high) is served at the same path and accepts last_image_url."""
    green = png_data_uri(size=(36, 64), color=(0, 200, 0))
    result, video = client.generate(body(model="gen3a_turbo", ratio="9:16", last_image_url=green))
    assert result["status"] == "completed"
    with av.open(io.BytesIO(video), "r") as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (96, 160)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    last = frames[-1].reshape(-1, 3).mean(axis=0)
    assert last[1] > 2 * last[0]  # ends on the green last frame, not the red first one


def test_https_image_renders_a_placeholder_and_says_so(client: Client) -> None:
    """An https image (unfetchable offline) still completes, with a note in an extra field."""
    result, video = client.generate(body(image_url="https://example.com/mountain.png"))
    assert result["sandbox"]["placeholder_image"] is True
    assert "placeholder" in result["sandbox"]["message"]
    assert video[4:8] == b"ftyp"


def test_range_request_returns_206_with_the_requested_bytes(client: Client) -> None:
    """A download honours Range: bytes=N- (206, Content-Range) so clients can resume."""
    result, video = client.generate(body())
    partial = requests.get(result["video"][0], headers={"Range": "bytes=100-"}, timeout=10)
    assert partial.status_code == 206
    assert partial.content == video[100:]
    assert partial.headers["Content-Range"] == f"bytes 100-{len(video) - 1}/{len(video)}"


def test_every_response_carries_an_inference_id(client: Client) -> None:
    """Downloads, HEAD requests and the sandbox's own routes carry x-inference-id too."""
    result, video = client.generate(body())
    download = requests.get(result["video"][0], timeout=10)
    assert download.headers["x-inference-id"] == result["id"]
    head = requests.head(result["video"][0], timeout=10)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(video)
    assert requests.get(client.base_url + "/_sandbox/stats", timeout=10).headers["x-inference-id"]
    assert client.stats()["downloads"] == 2  # two GETs; the HEAD is not a download


def test_multi_megabyte_data_uri_is_accepted(client: Client) -> None:
    """A data: URI of several MB (the API allows ~5 MB images) is not refused for its size."""
    noise = np.random.default_rng(0).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG", compress_level=0)
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert len(uri) > 4_000_000
    result, video = client.generate(body(image_url=uri))
    assert result["status"] == "completed" and video[4:8] == b"ftyp"
