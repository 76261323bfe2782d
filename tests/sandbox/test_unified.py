"""The unified endpoint: every catalog model, the documented shapes, renders per model."""

from __future__ import annotations

import time
from typing import Any

import av
import requests

from runner.sandbox import FaultSpec
from tests.sandbox.conftest import AUTH, Client

UNIFIED = "/v2/video/generations"


def _post(client: Client, body: dict[str, Any]) -> requests.Response:
    return client.session.post(client.base_url + UNIFIED, json=body, headers=AUTH, timeout=10)


def _wait(client: Client, generation_id: str) -> dict[str, Any]:
    end = time.monotonic() + 20
    while time.monotonic() < end:
        result: dict[str, Any] = client.session.get(
            client.base_url + UNIFIED, params={"generation_id": generation_id}, headers=AUTH,
            timeout=10,
        ).json()
        if result["status"] not in ("queued", "generating"):
            return result
        time.sleep(0.02)
    raise AssertionError("the generation did not finish")


def _probe(data: bytes) -> tuple[int, int, float]:
    import io

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        seconds = float(stream.duration * stream.time_base) if stream.duration else 0.0
        return stream.width, stream.height, seconds


def test_unified_create_and_poll_have_the_documented_shapes(client: Client) -> None:
    """Create: {id, status, meta.usage}; poll: video {url}, error null, meta.usage."""
    created = _post(client, {"model": "google/veo3", "prompt": "a lighthouse at dusk",
                             "aspect_ratio": "9:16"})
    assert created.status_code == 200, created.text
    data = created.json()
    assert data["status"] == "queued" and set(data["meta"]["usage"]) == {
        "credits_used", "usd_spent"}
    result = _wait(client, data["id"])
    assert result["status"] == "completed" and result["error"] is None
    assert set(result["video"]) == {"url"} and "meta" in result
    video = client.session.get(result["video"]["url"], timeout=10)
    width, height, seconds = _probe(video.content)
    assert height > width  # 9:16, as asked, for a text-to-video model
    assert abs(seconds - 8) < 0.2  # veo3's default duration when the body names none


def test_minimax_answers_generation_id(client: Client) -> None:
    """MiniMax's create answers `generation_id` rather than `id`, as documented."""
    created = _post(client, {"model": "minimax/hailuo-02", "prompt": "a heron lifts off"})
    assert created.status_code == 200, created.text
    assert "generation_id" in created.json() and "id" not in created.json()


def test_unified_validation_uses_the_model_s_own_schema(client: Client) -> None:
    """A field the model lacks, or a legacy model on the wrong path, is a 400."""
    lacking = _post(client, {"model": "openai/sora-2-t2v", "prompt": "x", "seed": 3})
    assert lacking.status_code == 400 and "seed" in lacking.json()["message"]
    wrong = client.session.post(client.base_url + UNIFIED, json={
        "model": "wan/v2.1/1.3b/text-to-video", "prompt": "x"}, headers=AUTH, timeout=10)
    assert wrong.status_code == 400 and "served at" in wrong.json()["message"]


def test_failed_generation_has_a_name_and_message(make_sandbox: Any) -> None:
    """On the unified endpoint a failed generation reports error {name, message}."""
    _, client = make_sandbox(faults={"failed_generation": FaultSpec(first=1)})
    created = _post(client, {"model": "google/veo3", "prompt": "a storm"}).json()
    result = _wait(client, created["id"])
    assert result["status"] == "error" and set(result["error"]) == {"name", "message"}
    assert result["video"] is None


def test_a_model_without_a_seed_gives_another_video_each_time(client: Client) -> None:
    """The same body to a seedless model twice: two different videos, as a real one gives."""
    body = {"model": "klingai/v2.1-master-text-to-video", "prompt": "waves on a reef"}
    urls = [_wait(client, _post(client, body).json()["id"])["video"]["url"] for _ in range(2)]
    first, second = (client.session.get(u, timeout=10).content for u in urls)
    assert first != second
