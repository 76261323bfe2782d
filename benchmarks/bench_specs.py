"""Write the benchmark's spec files: one tiny image, one seed range (or the planning grid)."""

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


# Issue 15's planning spec: seeds x 5 ratios x 20 subjects; the prompt reads only the
# subject (20 distinct values), the output path all three axes.
SUBJECTS = ("dragon", "tiger", "wolf", "bear", "eagle", "shark", "lion", "owl", "fox", "horse",
            "whale", "raven", "cobra", "bison", "lynx", "stag", "boar", "hawk", "moose", "orca")
RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
SCALE_SPEC = """\
version: 1
name: {name}
provider: aimlapi
model: runway/gen4_turbo
max_requests: {count}
matrix:
  seed: {{range: [1, {seeds}]}}
  ratio: [{ratios}]
  subject: [{subjects}]
params:
  image_url: images/frame.png
  prompt: "A menacing {{{{ subject }}}} rushes toward the camera"
  duration: 5
output: "{{{{ subject }}}}/{{{{ ratio | replace(':', 'x') }}}}/seed-{{{{ seed }}}}.mp4"
"""


def write_scale_spec(folder: Path, name: str, count: int) -> Path:
    """Write the planning grid with `count` requests (rounded down to whole seeds of 100)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    image = folder / "images" / "frame.png"
    if not image.exists():
        Image.new("RGB", (64, 36), (90, 120, 160)).save(image)
    seeds = max(1, count // (len(RATIOS) * len(SUBJECTS)))
    path = folder / f"{name}.yaml"
    path.write_text(SCALE_SPEC.format(
        name=name, count=seeds * len(RATIOS) * len(SUBJECTS), seeds=seeds,
        ratios=", ".join(f'"{r}"' for r in RATIOS), subjects=", ".join(SUBJECTS),
    ), encoding="utf-8")
    return path
