"""The API docs' example client, with only the base URL swapped, against `runner sandbox serve`."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import requests

from tests.sandbox.conftest import IMAGE

API_KEY = "<YOUR_AIMLAPI_KEY>"  # the docs' placeholder: the sandbox accepts any bearer key


# --- the docs' example, in their style: module functions, plain requests, print-and-return ---


def generate_video(base_url: str) -> dict[str, Any] | None:
    url = f"{base_url}/v2/generate/video/runway/generation"
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    data = {
        "model": "runway/gen4_turbo",
        "prompt": "A menacing evil dragon rushes toward the camera",
        "image_url": IMAGE,
        "duration": 5,
        "ratio": "16:9",
        "seed": 1,
    }
    response = requests.post(url, json=data, headers=headers)
    if response.status_code >= 400:
        print(f"Error: {response.status_code} - {response.text}")
        return None
    response_data: dict[str, Any] = response.json()
    print(response_data)
    return response_data


def get_video(base_url: str, gen_id: str) -> dict[str, Any]:
    url = f"{base_url}/v2/generate/video/runway/generation"
    params = {"generation_id": gen_id}
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    response = requests.get(url, params=params, headers=headers)
    result: dict[str, Any] = response.json()
    return result


def main(base_url: str, poll_every: float = 10.0, timeout: float = 600.0) -> dict[str, Any] | None:
    gen_response = generate_video(base_url)
    if gen_response is None:
        return None
    gen_id = gen_response.get("id")
    print("Generation ID:  ", gen_id)
    start_time = time.time()
    while time.time() - start_time < timeout:
        response_data = get_video(base_url, str(gen_id))
        if response_data is None:
            print("Error: No response from API")
            break
        status = response_data.get("status")
        if status in ["waiting", "active", "queued", "generating"]:
            print(f"Status: {status}. Checking again in {poll_every} seconds.")
            time.sleep(poll_every)
        else:
            print("Processing complete:/n", response_data)
            return response_data
    print("Timeout reached. Stopping.")
    return None


# --- the test ---------------------------------------------------------------------------


def test_docs_example_client_runs_against_sandbox_serve(
    serve_process: Callable[..., tuple[subprocess.Popen[str], str]], tmp_path: Path
) -> None:
    """The docs' POST-then-poll client gets a completed generation and a playable 16:9 H.264 MP4."""
    _, base_url = serve_process("--latency", "0.2", "--jitter", "0.05")
    result = main(base_url, poll_every=0.05, timeout=30)
    assert result is not None and result["status"] == "completed"
    video = requests.get(result["video"][0], timeout=10)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    path = tmp_path / "dragon.mp4"
    path.write_bytes(video.content)
    with av.open(str(path), "r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 160, 90)
        assert container.duration is not None
        assert abs(container.duration / 1e6 - 5.0) <= 1 / 8
    stats = requests.get(base_url + "/_sandbox/stats", timeout=10).json()
    assert stats["submissions"] == 1 and stats["polls"] >= 2 and stats["downloads"] == 1
