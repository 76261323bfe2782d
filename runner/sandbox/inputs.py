"""Read a request's images the way the API does: data: URIs decoded, https URLs noted.

The sandbox is offline, so an https image cannot be fetched; the clip is then rendered
from a generated placeholder frame and the poll result says so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from runner.images import MAX_PIXELS

MIN_ASPECT, MAX_ASPECT = 0.5, 2.0  # the API's documented limits on width / height


class InputError(Exception):
    """Raised when an image field is unusable; `field` names it for the 400 body."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class InputImage:
    """One image field of a request: its bytes, or None for an unfetchable URL."""

    sha256: str  # of the bytes, or of the URL when the bytes are unknown
    data: bytes | None
    aspect: float | None = None  # width / height, when the bytes are known


def read_image(field: str, value: str) -> InputImage:
    """Decode a data: URI and check the image's aspect ratio; note an https URL."""
    if not value.startswith("data:"):
        return InputImage(hashlib.sha256(value.encode()).hexdigest(), None)
    header, sep, payload = value.partition(",")
    if not sep or not header.endswith(";base64"):
        raise InputError(field, "must be a base64 data: URI (data:image/png;base64,...)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(field, "is not valid base64") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # sized below
            with Image.open(io.BytesIO(data)) as img:  # reads the header only
                width, height = img.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InputError(field, "does not hold an image the API can read") from None
    if width * height > MAX_PIXELS:  # decoding it would take gigabytes: refused up front
        msg = (
            f"image is {width}x{height} ({width * height / 1e6:.1f} megapixels); the limit is "
            f"{MAX_PIXELS / 1e6:.1f} megapixels"
        )
        raise InputError(field, msg)
    ratio = width / height if height else 0.0
    if not MIN_ASPECT <= ratio <= MAX_ASPECT:
        msg = (
            f"image is {width}x{height} (width/height {ratio:.2f}); it must lie between "
            f"{MIN_ASPECT} and {MAX_ASPECT}"
        )
        raise InputError(field, msg)
    return InputImage(hashlib.sha256(data).hexdigest(), data, ratio)
