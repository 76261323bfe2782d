"""Draw the example specs' input images with Pillow (run: python specs/images/draw.py).

The images are committed; this script is how they were made, so anyone can check or
regenerate them. Every shape is computed, nothing is downloaded. Output is stable for a
given Pillow version (no randomness, no timestamps in the PNGs).
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent


def _sky(draw: ImageDraw.ImageDraw, width: int, height: int, top: tuple[int, int, int],
         bottom: tuple[int, int, int]) -> None:
    for y in range(height):
        t = y / max(height - 1, 1)
        color = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (width, y)], fill=color)


def mountain(width: int = 640, height: int = 360) -> Image.Image:
    """A barren mountain range at dusk: the dragon shot's empty stage."""
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    _sky(draw, width, height, (38, 52, 92), (236, 170, 120))
    for layer, (shade, base, amp, freq) in enumerate(
        [
            ((96, 84, 104), 0.55, 0.30, 3.1),
            ((64, 56, 70), 0.68, 0.22, 5.3),
            ((34, 30, 38), 0.82, 0.12, 8.7),
        ]
    ):
        points = [(0, height)]
        for x in range(0, width + 8, 8):
            u = x / width
            ridge = (math.sin(u * freq + layer) * 0.6 + math.sin(u * freq * 2.7 + 1.3) * 0.4)
            peak = math.exp(-((u - 0.5 - 0.1 * layer) ** 2) / 0.02) if layer == 0 else 0.0
            y = height * (base - amp * (0.5 + 0.5 * ridge) * 0.6 - 0.28 * peak)
            points.append((x, round(y)))
        points.append((width, height))
        draw.polygon(points, fill=shade)
    draw.ellipse(
        [width * 0.78, height * 0.12, width * 0.78 + 26, height * 0.12 + 26], fill=(250, 232, 200)
    )
    return img


def lighthouse(width: int = 360, height: int = 640) -> Image.Image:
    """A lighthouse on a rock under a night sky (portrait)."""
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    _sky(draw, width, height, (12, 18, 48), (60, 80, 120))
    sea_top = round(height * 0.72)
    draw.rectangle([0, sea_top, width, height], fill=(20, 44, 70))
    for i in range(12):
        y = sea_top + 8 + i * 14
        draw.line([(0, y), (width, y + (i % 3) - 1)], fill=(40, 72, 104), width=2)
    draw.polygon(
        [(40, sea_top + 10), (120, sea_top - 40), (250, sea_top - 30), (320, sea_top + 12)],
        fill=(30, 28, 32),
    )
    cx, base, top = width // 2, sea_top - 36, round(height * 0.30)
    draw.polygon(
        [(cx - 34, base), (cx - 22, top), (cx + 22, top), (cx + 34, base)], fill=(236, 236, 228)
    )
    for k in range(3):
        y = base - (k + 1) * (base - top) // 4
        draw.rectangle([cx - 34 + k * 4, y - 10, cx + 34 - k * 4, y + 4], fill=(196, 40, 44))
    draw.rectangle([cx - 18, top - 34, cx + 18, top], fill=(250, 220, 120))
    draw.polygon([(cx - 24, top - 34), (cx, top - 60), (cx + 24, top - 34)], fill=(60, 60, 66))
    draw.polygon([(cx + 18, top - 28), (width, top - 90), (width, top + 40)], fill=(120, 120, 90))
    for i in range(40):
        x = (i * 97) % width
        y = (i * 53) % (top - 70)
        draw.point((x, y), fill=(240, 240, 255))
    return img


def tea(width: int = 480, height: int = 480) -> Image.Image:
    """A cup of tea on a wooden table, seen from above (square)."""
    img = Image.new("RGB", (width, height), (150, 100, 62))
    draw = ImageDraw.Draw(img)
    for i in range(0, height, 24):
        draw.line([(0, i), (width, i + 6)], fill=(132, 86, 52), width=3)
    cx, cy = width // 2, height // 2
    draw.ellipse([cx - 150, cy - 150, cx + 150, cy + 150], fill=(236, 232, 224))
    draw.ellipse([cx - 100, cy - 100, cx + 100, cy + 100], fill=(250, 248, 244))
    draw.ellipse([cx - 84, cy - 84, cx + 84, cy + 84], fill=(168, 104, 40))
    draw.ellipse([cx - 40, cy - 60, cx + 10, cy - 30], fill=(190, 130, 66))
    draw.rounded_rectangle(
        [cx + 96, cy - 22, cx + 150, cy + 22], radius=18, outline=(250, 248, 244), width=12
    )
    return img


def main() -> None:
    """Write every example image next to this script."""
    for name, draw_image in {"mountain": mountain, "lighthouse": lighthouse, "tea": tea}.items():
        draw_image().save(HERE / f"{name}.png", optimize=True)


if __name__ == "__main__":
    main()
