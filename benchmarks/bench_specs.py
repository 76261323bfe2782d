"""Write the benchmark's spec files: one tiny image, one seed range."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

SPEC = """\
version: 1
name: {name}
provider: {provider}
model: runway/gen4_turbo
max_requests: {count}
matrix:
  seed: {{range: [1, {count}]}}
params:
  image_url: images/frame.png
  prompt: "A slow dolly shot over a misty lake at dawn"
  ratio: "16:9"
  duration: 5
output: "{output}"
"""

# Spread 100,000 files over folders of 1,000, as a large sweep would be laid out.
OUTPUT = "{{ seed // 1000 }}/seed-{{ seed }}.mp4"


def write_spec(folder: Path, name: str, count: int, *, provider: str = "sandbox") -> Path:
    """Write `<folder>/<name>.yaml` with `count` requests (seeds 1..count) and its image."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    image = folder / "images" / "frame.png"
    if not image.exists():
        Image.new("RGB", (64, 36), (90, 120, 160)).save(image)
    path = folder / f"{name}.yaml"
    text = SPEC.format(name=name, count=count, output=OUTPUT, provider=provider)
    path.write_text(text, encoding="utf-8")
    return path
