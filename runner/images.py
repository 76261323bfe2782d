"""Images named by a spec: local files become checked `LocalImage`s; URLs are vetted.

Accepted forms of an image field (`image_url`, `last_image_url`):

- a path relative to the spec file: must exist, be a regular file inside the spec's
  tree (its git repository, else its folder; no `../` escape, no symlink leaving it),
  be a PNG, JPEG or WebP that Pillow can read, have width/height in [0.5, 2], and fit
  in `MAX_DATA_URI` characters once base64-encoded (Runway's 5 MB data-URI limit);
- an `https://` URL (at most 2048 characters, no credentials), passed through as is;
- a literal `data:image/...;base64,...` URI, checked and hashed like a local file.

Every other scheme (`http:`, `file:`, `ftp:`, ...) is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

from runner.request import LocalImage

MAX_DATA_URI = 5_000_000  # characters of the data: URI (Runway: 5 MB)
MAX_URL = 2048  # characters of an https URL (Runway's limit)
MIN_RATIO, MAX_RATIO = 0.5, 2.0  # width / height, from the API docs
# Pixels an input image may have: Pillow's own guard against decompression bombs (an
# 8K frame is 33 MP). The sandbox refuses the same, as a provider would a huge upload.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
MIME_BY_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):")
_DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*),(?P<payload>.*)$", re.DOTALL
)


class ImageProblem(Exception):
    """An image reference that cannot be used; the message says why and what to do."""


def max_file_bytes(mime: str) -> int:
    """Return the largest file whose data: URI still fits `MAX_DATA_URI`."""
    room = MAX_DATA_URI - len(f"data:{mime};base64,")
    return room // 4 * 3


def find_root(spec_path: Path) -> Path:
    """Return the folder a spec's images must stay in: its git repository, else its folder."""
    folder = spec_path.resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


@dataclass
class ImageResolver:
    """Resolve the image fields of one spec file, caching each distinct value."""

    spec_path: Path

    def __post_init__(self) -> None:
        self.root = find_root(self.spec_path)
        self.folder = self.spec_path.resolve().parent
        self._cache: dict[str, str | LocalImage | ImageProblem] = {}
        self._labels: dict[str, str] = {}

    def resolve(self, value: str) -> str | LocalImage:
        """Return the https URL unchanged, or the checked `LocalImage`; else raise."""
        cached = self._cache.get(value)
        if cached is None:
            try:
                cached = self._resolve(value)
            except ImageProblem as exc:
                cached = exc
            self._cache[value] = cached
        if isinstance(cached, ImageProblem):
            raise cached
        return cached

    def resolve_labelled(self, value: str) -> tuple[str | LocalImage, str]:
        """Return what `resolve` returns, and the image's short name for output paths."""
        resolved = self.resolve(value)
        label = self._labels.get(value)
        if label is None:
            label = image_label(value, resolved)
            self._labels[value] = label
        return resolved, label

    def _resolve(self, value: str) -> str | LocalImage:
        if not value.strip():
            msg = "the image is empty — give a path relative to the spec, or an https:// URL"
            raise ImageProblem(msg)
        match = _SCHEME.match(value)
        if match is None:
            return self._local(value)
        scheme = match["scheme"].lower()
        if scheme == "https":
            return _check_https(value)
        if scheme == "data":
            return self._data_uri(value)
        if scheme == "http":
            msg = (
                "http:// image URLs are refused (the API needs https) — use https:// or a "
                "local file"
            )
        elif scheme == "file":
            msg = "file: URLs are refused — write the image path relative to the spec file instead"
        else:
            msg = (
                f"{scheme}: image URLs are not supported — use a path relative to the spec, "
                "an https:// URL, or a data: URI"
            )
        raise ImageProblem(msg)

    def _local(self, value: str) -> LocalImage:
        if os.path.isabs(value):
            msg = f"image path {value!r} is absolute — write it relative to the spec file"
            raise ImageProblem(msg)
        candidate = self.folder / value
        # Refuse a '..' escape before looking at the disk, so a spec cannot probe which
        # files exist outside its tree; symlinks are checked again after resolving.
        if not Path(os.path.normpath(candidate)).is_relative_to(self.root):
            raise ImageProblem(self._outside(value))
        try:
            resolved = candidate.resolve(strict=True)
        except FileNotFoundError:
            msg = (
                f"image file {value!r} not found (looked for {candidate}) — "
                "paths are relative to the spec file"
            )
            raise ImageProblem(msg) from None
        except (OSError, RuntimeError) as exc:  # symlink loops, permissions
            msg = f"image file {value!r} cannot be opened ({exc}) — check the path"
            raise ImageProblem(msg) from None
        if not resolved.is_relative_to(self.root):
            raise ImageProblem(self._outside(value))
        try:
            info = resolved.stat()
        except OSError as exc:
            msg = f"image file {value!r} cannot be read ({exc.strerror}) — check its permissions"
            raise ImageProblem(msg) from None
        if not stat.S_ISREG(info.st_mode):
            msg = f"image path {value!r} is not a regular file — point it at an image file"
            raise ImageProblem(msg)
        if info.st_size > max_file_bytes("image/jpeg"):
            msg = (
                f"image file {value!r} is {info.st_size:,} bytes; as a data: URI it would pass "
                f"the API's {MAX_DATA_URI:,}-character limit — shrink or recompress it"
            )
            raise ImageProblem(msg)
        try:
            data = resolved.read_bytes()
        except OSError as exc:
            msg = f"image file {value!r} cannot be read ({exc.strerror}) — check its permissions"
            raise ImageProblem(msg) from None
        return _checked(data, resolved, value, keep_bytes=False)

    def _outside(self, value: str) -> str:
        return (
            f"image path {value!r} leads outside {self.root} (via '..' or a symlink) — "
            "keep images inside the spec's repository (or its folder, outside git)"
        )

    def _data_uri(self, value: str) -> LocalImage:
        match = _DATA_URI.match(value)
        if match is None or ";base64" not in match["params"]:
            msg = "the data: URI is not base64 — use data:image/png;base64,<...> or a local file"
            raise ImageProblem(msg)
        if len(value) > MAX_DATA_URI:
            msg = (
                f"the data: URI is {len(value):,} characters; the API's limit is "
                f"{MAX_DATA_URI:,} — use a smaller image"
            )
            raise ImageProblem(msg)
        try:
            data = base64.b64decode(match["payload"], validate=True)
        except (binascii.Error, ValueError):
            msg = "the data: URI holds invalid base64 — re-encode the image"
            raise ImageProblem(msg) from None
        return _checked(data, self.spec_path, "the data: URI", keep_bytes=True)


def image_label(value: str, resolved: str | LocalImage) -> str:
    """Return a short name for an image: its file stem, else part of its hash."""
    if isinstance(resolved, LocalImage):
        if resolved.data is not None:
            return "data-" + resolved.sha256[:8]
        return PurePosixPath(value).stem or resolved.sha256[:8]
    stem = PurePosixPath(urlsplit(value).path).stem
    return stem or "url"


def _check_https(value: str) -> str:
    if len(value) > MAX_URL:
        msg = f"the image URL is {len(value):,} characters; the API's limit is {MAX_URL:,}"
        raise ImageProblem(msg)
    if any(ch.isspace() for ch in value):
        msg = "the image URL contains whitespace — percent-encode it (%20)"
        raise ImageProblem(msg)
    parts = urlsplit(value)
    if not parts.hostname:
        msg = "the image URL has no host — write https://host/path"
        raise ImageProblem(msg)
    if parts.username or parts.password:
        msg = "the image URL contains credentials — they would be sent and recorded; remove them"
        raise ImageProblem(msg)
    return value


def _checked(data: bytes, path: Path, label: str, *, keep_bytes: bool) -> LocalImage:
    """Check that `data` is a usable image and return it as a `LocalImage`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # sized below
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                width, height = img.size
                if width * height <= MAX_PIXELS:
                    img.verify()
    except Image.DecompressionBombError:
        msg = f"{label} has over {2 * MAX_PIXELS / 1e6:.0f} megapixels — scale it down"
        raise ImageProblem(msg) from None
    except UnidentifiedImageError:
        msg = f"{label} is not an image Pillow can read — use a PNG, JPEG or WebP file"
        raise ImageProblem(msg) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = f"{label} is a damaged image ({exc}) — re-export it"
        raise ImageProblem(msg) from None
    if width * height > MAX_PIXELS:
        msg = (
            f"{label} is {width}x{height} ({width * height / 1e6:.1f} megapixels); the limit "
            f"is {MAX_PIXELS / 1e6:.1f} megapixels — scale it down (the videos are at most "
            "1584 px wide)"
        )
        raise ImageProblem(msg)
    mime = MIME_BY_FORMAT.get(fmt)
    if mime is None:
        msg = f"{label} is a {fmt or 'unknown'} image — the API takes PNG, JPEG or WebP; convert it"
        raise ImageProblem(msg)
    ratio = width / height if height else 0.0
    if not MIN_RATIO <= ratio <= MAX_RATIO:
        msg = (
            f"{label} is {width}x{height} (width/height {ratio:.2f}); the API needs a ratio "
            f"between {MIN_RATIO} and {MAX_RATIO} — crop or pad it"
        )
        raise ImageProblem(msg)
    encoded = len(f"data:{mime};base64,") + 4 * ((len(data) + 2) // 3)
    if encoded > MAX_DATA_URI:
        msg = (
            f"{label} would be a {encoded:,}-character data: URI; the API's limit is "
            f"{MAX_DATA_URI:,} — shrink or recompress it"
        )
        raise ImageProblem(msg)
    return LocalImage(
        sha256=hashlib.sha256(data).hexdigest(),
        path=path,
        mime=mime,
        width=width,
        height=height,
        size=len(data),
        data=data if keep_bytes else None,
    )
