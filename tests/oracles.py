"""Independent judges of what a run left on disk: the manifest, checksums, MP4 files.

Tests that judge results with the code under test (`runner.manifest.read_state`,
`sha256_file`, `runner.probe`) cannot see a bug in that code: a loader that misreads the
file agrees with itself. So this module is written from the documented formats only and
imports nothing from `runner`:

- the manifest, from the `runner/manifest.py` docstring: JSON Lines, one complete object
  `{"v": 1, "event", "id", "ts", ...}` per line; a final line without its newline is a
  torn tail (it was never acknowledged: the next append would glue onto it), as is an
  unparseable tail; an unparseable line followed by good ones is corruption; the events
  fold into `pending | done | failed | unknown` as the docstring lists them;
- checksums with hashlib;
- MP4s from ISO/IEC 14496-12 (the box structure): the top-level boxes must tile the file
  exactly (a truncated file fails), `ftyp` first, `moov` and a non-empty `mdat` present,
  and an `avc1` (H.264) sample entry under `moov/trak/mdia/minf/stbl/stsd`.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

MANIFEST = "manifest.jsonl"


class ManifestCorrupt(Exception):
    """Raised when a manifest breaks its documented format (not a torn tail)."""


@dataclass(frozen=True)
class Logged:
    """A manifest file split into its records and its torn tail."""

    records: tuple[dict[str, Any], ...]
    torn: bytes  # what a crash left after the last complete record (b"" when clean)


@dataclass(frozen=True)
class Entry:
    """One request as its manifest events describe it."""

    id: str
    status: str  # pending | done | failed | unknown
    generation_id: str | None = None
    output: str | None = None
    size: int | None = None
    sha256: str | None = None
    reason: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict)
    images: Mapping[str, str] = field(default_factory=dict)
    seed: int | None = None


def _record(raw: bytes) -> dict[str, Any] | None:
    """Return the record on a line, or None when the line is not one."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("v") != 1:
        return None
    if not isinstance(record.get("event"), str) or not isinstance(record.get("id"), str):
        return None
    return record


def split_log(data: bytes) -> Logged:
    """Split manifest bytes into complete records and a torn tail."""
    records: list[dict[str, Any]] = []
    offset = 0
    bad_at: int | None = None
    while offset < len(data):
        end = data.find(b"\n", offset)
        if end == -1:  # no newline: torn, however well it parses
            bad_at = offset if bad_at is None else bad_at
            break
        record = _record(data[offset:end])
        if record is None:
            if data[offset:end].strip() and bad_at is None:
                bad_at = offset
        elif bad_at is not None:
            msg = f"a bad line at byte {bad_at} is followed by a valid record"
            raise ManifestCorrupt(msg)
        else:
            records.append(record)
        offset = end + 1
    return Logged(tuple(records), b"" if bad_at is None else data[bad_at:])


def read_log(folder: Path) -> Logged:
    """Return the records and torn tail of `folder`/manifest.jsonl (empty when absent)."""
    try:
        data = (folder / MANIFEST).read_bytes()
    except FileNotFoundError:
        return Logged((), b"")
    return split_log(data)


def fold(records: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> dict[str, Entry]:
    """Fold records in order into each request's entry, as the docstring defines them."""
    entries: dict[str, Entry] = {}
    for r in records:
        rid, event = r["id"], r["event"]
        current = entries.get(rid, Entry(rid, "pending"))
        if event == "snapshot":
            current = Entry(
                rid, r["status"], r.get("generation_id"), r.get("output"), r.get("size"),
                r.get("sha256"), r.get("reason"), r.get("body") or {}, r.get("images") or {},
                r.get("seed"),
            )
        elif event == "submitting":
            current = Entry(rid, "unknown", output=r.get("output"), reason="interrupted submit",
                            body=r.get("body") or {}, images=r.get("images") or {},
                            seed=r.get("seed"))
        elif event == "submitted":
            current = replace(current, status="pending", generation_id=r["generation_id"],
                              reason=None)
        elif event == "unknown":
            current = replace(current, status="unknown", reason=r.get("reason"))
        elif event == "completed":
            current = replace(current, status="pending")
        elif event == "failed":
            current = replace(current, status="failed", reason=r.get("reason"))
        elif event == "downloaded":
            current = replace(current, status="done", output=r.get("output", current.output),
                              size=r["size"], sha256=r["sha256"], reason=None)
        elif event == "verified":
            pass  # only the mtime changes, which no judge here relies on
        elif event == "reset":
            if current.generation_id is None:
                entries.pop(rid, None)
                continue
            current = replace(current, status="pending", reason=None)
        elif event in ("forgotten", "orphan_removed"):
            entries.pop(rid, None)
            continue
        else:
            msg = f"unknown event {event!r} for {rid}"
            raise ManifestCorrupt(msg)
        entries[rid] = current
    return entries


def read_manifest(folder: Path) -> dict[str, Entry]:
    """Return each request's entry from `folder`/manifest.jsonl."""
    return fold(read_log(folder).records)


# ----------------------------------------------------------------------------- files


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def body_sha256(body: Mapping[str, Any]) -> str:
    """Return the sha256 of a body as canonical JSON (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield (type, payload start, box end) of the boxes tiling data[start:end]."""
    offset = start
    while offset < end:
        if end - offset < 8:
            msg = f"{end - offset} stray bytes at {offset}"
            raise ValueError(msg)
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            if end - offset < 16:
                msg = f"short large-size header at {offset}"
                raise ValueError(msg)
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            msg = f"box {kind!r} at {offset} claims {size} bytes, {end - offset} remain"
            raise ValueError(msg)
        yield kind, offset + header, offset + size
        offset += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    for found, payload, box_end in _boxes(data, start, end):
        if found == kind:
            return payload, box_end
    msg = f"no {kind.decode()} box"
    raise ValueError(msg)


def mp4_problem(path: Path) -> str | None:
    """Return why `path` is not a complete H.264 MP4, or None when it is one."""
    data = path.read_bytes()
    try:
        top = list(_boxes(data, 0, len(data)))
        if not top or top[0][0] != b"ftyp":
            return "does not start with an ftyp box"
        kinds = {kind for kind, _, _ in top}
        if b"moov" not in kinds:
            return "has no moov box"
        if not any(kind == b"mdat" and end > payload for kind, payload, end in top):
            return "has no media data (mdat)"
        moov = next((p, e) for k, p, e in top if k == b"moov")
        codecs = set()
        for kind, payload, end in _boxes(data, *moov):
            if kind != b"trak":
                continue
            span = (payload, end)
            for name in (b"mdia", b"minf", b"stbl", b"stsd"):
                span = _child(data, *span, name)
            # stsd is a full box: version/flags (4) and an entry count (4), then entries.
            codecs |= {k for k, _, _ in _boxes(data, span[0] + 8, span[1])}
    except ValueError as exc:
        return f"is not a well-formed MP4: {exc}"
    if b"avc1" not in codecs:
        return f"has no H.264 (avc1) track, only {sorted(c.decode() for c in codecs)}"
    return None
