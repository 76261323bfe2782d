"""Regenerate schemas/models/ from a snapshot of the AI/ML API's docs repository.

    python scripts/vendor_models.py /path/to/aimlapi-api-docs.git            # a bare git repo
    python scripts/vendor_models.py /path/to/docs-checkout --commit <sha>    # a plain folder

Reads every OpenAPI file under docs/api-references/video-models/ (and the docs pages that
link them), converts each video model's request schema to the JSON Schema 2020-12 file
the runner validates bodies with, and writes `schemas/models/catalog.json`: the model
registry (`runner.catalog` reads it), the docs commit it came from, the models left out
and why, and every place where the docs contradict themselves.

Output is deterministic: the same snapshot gives byte-identical files. Files this script
wrote earlier and no longer produces are removed; the two hand-written legacy Runway
schemas (`LEGACY_FILES`) are inputs, never rewritten. See docs/MODELS.md.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.schemas import RunnerValidator  # noqa: E402  (needs ROOT on the path)

FORMAT_VERSION = 1
DOCS_REPOSITORY = "aimlapi/api-docs"
MODELS_FOLDER = "docs/api-references/video-models"
SCHEMAS_OUT = ROOT / "schemas" / "models"
SCHEMA_ID = "https://runner.invalid/schemas/"

UNIFIED = "/v2/video/generations"
# Older spellings of the unified endpoint some files also document; the body is the same.
UNIFIED_ALIASES = ("/v1/video/generations", "/video/generations")
_VENDOR_PATH = re.compile(r"^/v2/generate/video/(?P<vendor>[a-z0-9-]+)/generation$")

IMAGE_PATTERN = "^(https://|data:image/)"
IMAGE_MAX_LENGTH = 7_000_000  # a 5 MB file as a data: URI, with room for its header

# ----------------------------------------------------------------------- hand-kept facts
# Facts the docs snapshot does not hold. Everything else comes from the snapshot.

# The documented legacy Runway path. Its two schemas predate the catalog; request ids hash
# the body they describe, so they stay byte-for-byte as they are (the default route).
LEGACY_FILES = {
    "runway/gen4_turbo": "runway-gen4_turbo.schema.json",
    "gen3a_turbo": "gen3a_turbo.schema.json",
}
LEGACY_ENDPOINT = "/v2/generate/video/runway/generation"

# Output sizes: the legacy Runway schemas carry theirs in their `x-runner` block (from
# api-facts.md: the docs' gen4_turbo example at 16:9 and Runway's own mapping). Sizes the
# docs state in a field description ("720p with aspect ratios: - 16:9 — 1280x720") are
# read from the snapshot; where they say a resolution names the short side, derived.

# Family by model name; the first match wins.
FAMILIES: tuple[tuple[str, str], ...] = (
    (r"^(runway/|runway-|gen3a_turbo$)", "Runway"),
    (r"^(klingai/|kling-video/)", "Kling"),
    (r"^google/gemini", "Gemini"),
    (r"^(google/veo|veo)", "Veo"),
    (r"^alibaba/happyhorse", "HappyHorse"),
    (r"^(alibaba/wan|wan/)", "Wan"),
    (r"^(minimax/|video-01)", "MiniMax"),
    (r"^luma/", "Luma"),
    (r"^pixverse/", "PixVerse"),
    (r"^bytedance/(dreamina-)?seedance", "Seedance"),
    (r"^bytedance/omnihuman", "OmniHuman"),
    (r"^openai/sora", "Sora"),
    (r"^blackforestlabs/", "FLUX"),
    (r"^ltxv/", "LTXV"),
    (r"^sber-ai/kandinsky", "Kandinsky"),
    (r"^krea/", "Krea"),
    (r"^x-ai/grok", "Grok"),
    (r"^magic/", "Magic"),
    (r"^tencent/hunyuan", "Hunyuan"),
    (r"^veed/", "VEED"),
    (r"^beeble/", "Beeble"),
)

# Inputs the runner does not send (it sends text and images): a model that requires one
# is left out. Field name -> what it is.
OTHER_MEDIA = {
    "video_url": "an input video (video_url)",
    "video_urls": "input videos (video_urls)",
    "audio_url": "an audio track (audio_url)",
    "audio_urls": "audio tracks (audio_urls)",
    "reference": "a performance video (reference)",
    "character": "a character video or image (character)",
    "mask_video_url": "a mask video (mask_video_url)",
}
# What kind of model needs those inputs, by a word in its name (for the reason text).
KINDS: tuple[tuple[str, str], ...] = (
    ("lip-sync", "lip-sync"),
    ("avatar", "talking avatar"),
    ("omnihuman", "talking avatar"),
    ("fabric", "talking avatar"),
    ("foley", "sound for a video"),
    ("extend", "video extension"),
    ("motion-control", "motion transfer"),
    ("animate", "character animation from a video"),
    ("act_two", "performance transfer"),
    ("r2v", "reference-to-video from videos"),
    ("vace", "video-to-video"),
    ("video-to-video", "video-to-video"),
    ("v2v", "video-to-video"),
    ("aleph", "video-to-video"),
)

# Where a model's images go, by wire field path ("*" = every item of a list).
FIRST_FRAME = ("image_url", "first_frame_image", "keyframes.frame0.url")
LAST_FRAME = ("last_image_url", "tail_image_url", "keyframes.frame1.url")
OTHER_IMAGES = (
    "image_urls.*", "image_list.*", "reference_image_urls.*", "reference_images.*",
    "elements.*.frontal_image_url", "elements.*.reference_image_urls.*",
    "static_mask", "dynamic_masks.*.mask", "image_url.*",
)
MASKS = ("static_mask", "dynamic_masks.*.mask", "image_url.*")  # images, not references
PROMPT_FIELDS = ("prompt", "negative_prompt", "multi_prompt")  # maxLength -> maxUtf16Length
AUDIO_SWITCHES = ("generate_audio", "generate_audio_switch")
ENHANCE_SWITCHES = ("enhance_prompt", "enable_prompt_expansion", "prompt_optimizer")

# The portable names a spec may write once for every model, in display order.
PORTABLE = ("prompt", "image", "last_image", "ratio", "duration", "seed", "negative_prompt")
CAPABILITIES = (
    "image-to-video", "text-to-video", "reference-images", "last-frame", "seed",
    "negative-prompt", "audio", "prompt-enhance", "provider-routing",
)


class VendorError(Exception):
    """The snapshot cannot be turned into a catalog; the message says why."""


# ---------------------------------------------------------------------------- snapshot


class Snapshot:
    """The docs files of one snapshot: a bare git repository or a plain folder."""

    def __init__(self, source: Path, commit: str | None) -> None:
        self.source = source
        self.is_git = (source / "HEAD").is_file() and (source / "objects").is_dir()
        if self.is_git:
            head = self._git("rev-parse", "HEAD").strip()
            if commit is not None and commit != head:
                msg = f"--commit {commit} differs from the repository's HEAD {head}"
                raise VendorError(msg)
            self.commit = head
            self.root = source
        else:
            if commit is None:
                msg = "a plain folder has no commit: pass --commit <the docs commit it holds>"
                raise VendorError(msg)
            self.commit = commit
            self.root = source
            if not (source / MODELS_FOLDER).is_dir():
                msg = f"{source} has no {MODELS_FOLDER}/ — point at the docs checkout's root"
                raise VendorError(msg)
        if not re.fullmatch(r"[0-9a-f]{40}", self.commit):
            msg = f"{self.commit!r} is not a 40-digit commit hash"
            raise VendorError(msg)

    def _git(self, *args: str, data: bytes | None = None) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.source), *args],
            input=data, capture_output=True, check=False,
        )
        if done.returncode != 0:
            msg = f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}"
            raise VendorError(msg)
        return done.stdout.decode("utf-8")

    def files(self) -> dict[str, bytes | None]:
        """Return every file under the models folder by path; None when its content is absent."""
        if not self.is_git:
            base = self.root
            return {
                p.relative_to(base).as_posix(): p.read_bytes()
                for p in sorted((base / MODELS_FOLDER).rglob("*"))
                if p.is_file()
            }
        listing = self._git("ls-tree", "-r", "-z", "HEAD", "--", MODELS_FOLDER)
        blobs: dict[str, str] = {}
        for entry in listing.split("\0"):
            if entry:
                meta, path = entry.split("\t", 1)
                blobs[path] = meta.split()[2]
        found: dict[str, bytes | None] = {}
        batch = subprocess.run(
            ["git", "-C", str(self.source), "cat-file", "--batch"],
            input="".join(f"{sha}\n" for sha in blobs.values()).encode(),
            capture_output=True, check=True,
        ).stdout
        at = 0
        for path in blobs:
            end = batch.index(b"\n", at)
            header = batch[at:end].decode()
            at = end + 1
            if header.endswith(" missing"):
                found[path] = None  # listed in the tree, but the snapshot lacks its blob
                continue
            size = int(header.split()[2])
            found[path] = batch[at : at + size]
            at += size + 1
        return dict(sorted(found.items()))


# ------------------------------------------------------------------------------ notes


@dataclass(frozen=True, order=True)
class Note:
    """One thing worth knowing about the docs: a contradiction, a duplicate, a fix."""

    source: str  # docs path
    model: str  # "" when about a file
    field: str  # "" when about a model or file
    kind: str
    text: str

    def as_dict(self) -> dict[str, str]:
        entry = {"source": self.source, "kind": self.kind, "text": self.text}
        if self.model:
            entry["model"] = self.model
        if self.field:
            entry["field"] = self.field
        return entry


# -------------------------------------------------------------------------- documents


@dataclass
class Operation:
    """One POST operation of one docs file: its path, models and request schema."""

    source: str  # docs path of the file
    path: str
    models: tuple[str, ...]
    schema: dict[str, Any]
    samples: tuple[str, ...]  # cURL example sources
    aliases: tuple[str, ...] = ()


@dataclass
class Pages:
    """What the docs pages (.md) say about the schema files: which page links which."""

    links: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    titles: dict[str, str] = field(default_factory=dict)

    def page_for(self, source: str) -> str | None:
        """Return the docs page that links `source` (the first by path), or None."""
        pages = sorted(self.links.get(source, []))
        return pages[0] if pages else None


_LINK = re.compile(r"api-references/video-models/([^)\s]+?\.json)")
_TITLE = re.compile(r"^# (.+)$", re.MULTILINE)


def read_pages(files: Mapping[str, bytes | None]) -> Pages:
    """Return which schema files the docs pages link, and each page's title."""
    pages = Pages()
    for path, raw in files.items():
        if not path.endswith(".md") or raw is None:
            continue
        text = raw.decode("utf-8", errors="replace")
        title = _TITLE.search(text)
        if title:
            pages.titles[path] = title.group(1).strip()
        for target in sorted(set(_LINK.findall(text))):
            pages.links[f"{MODELS_FOLDER}/{target}"].append(path)
    return pages


def read_operations(files: Mapping[str, bytes | None], notes: list[Note]) -> list[Operation]:
    """Parse every POST operation of every schema file, noting files that cannot be read."""
    operations: list[Operation] = []
    for source, raw in files.items():
        if not source.endswith(".json"):
            continue
        if raw is None:
            notes.append(Note(source, "", "", "unreadable",
                              "listed in the snapshot, but its content is absent from it"))
            continue
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            notes.append(Note(source, "", "", "unreadable", f"not valid JSON ({exc})"))
            continue
        posts = {p: ops["post"] for p, ops in doc.get("paths", {}).items() if "post" in ops}
        if not posts:
            gets = ", ".join(sorted(doc.get("paths", {})))
            notes.append(Note(source, "", "", "no-post",
                              f"documents no POST operation (only GET {gets}): not a model schema"))
            continue
        aliases = tuple(p for p in posts if p in UNIFIED_ALIASES)
        for path, op in posts.items():
            if path in UNIFIED_ALIASES:
                continue
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            models = tuple(schema["properties"]["model"].get("enum", []))
            samples = tuple(
                s["source"] for s in op.get("x-codeSamples", []) if s.get("lang") == "cURL"
            )
            operations.append(Operation(source, path, models, schema, samples,
                                        aliases if path == UNIFIED else ()))
    return operations


# ------------------------------------------------------------------------- conversion


def route_name(endpoint: str) -> str:
    """Name a route by its endpoint: `unified`, or the vendor of a legacy path."""
    if endpoint == UNIFIED:
        return "unified"
    match = _VENDOR_PATH.match(endpoint)
    if match is None:
        msg = f"unexpected endpoint {endpoint} — teach route_name() its name"
        raise VendorError(msg)
    return match["vendor"]


def slug(model: str) -> str:
    """Return the file-name form of a model name (runway/gen4_turbo -> runway-gen4_turbo)."""
    return model.replace("/", "-")


def _is_image(path: tuple[str, ...]) -> bool:
    dotted = ".".join(path)
    return dotted in FIRST_FRAME or dotted in LAST_FRAME or dotted in OTHER_IMAGES


class Converter:
    """Turn one OpenAPI 3.0 request schema into the runner's JSON Schema 2020-12."""

    def __init__(self, source: str, model: str, notes: list[Note]) -> None:
        self.source = source
        self.model = model
        self.notes = notes

    def note(self, field_name: str, kind: str, text: str) -> None:
        self.notes.append(Note(self.source, self.model, field_name, kind, text))

    def body(self, schema: Mapping[str, Any], endpoint: str, route: str) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for name, prop in schema["properties"].items():
            if name == "model":
                properties["model"] = {"const": self.model}
                continue
            properties[name] = self.convert(prop, (name,))
        required = [r for r in schema.get("required", []) if r in properties]
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{SCHEMA_ID}models/{route}/{slug(self.model)}.schema.json",
            "title": f"{self.model} request body",
            "description": (
                f"Body of POST {endpoint} for {self.model}. Converted from the AI/ML API "
                f"docs ({self.source}) by scripts/vendor_models.py."
            ),
            "type": "object",
            "required": required,
            "additionalProperties": False,
            "properties": properties,
        }

    def convert(self, prop: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        where = ".".join(path)
        kind = prop.get("type")
        for key, value in prop.items():
            if key in ("properties", "items", "anyOf", "oneOf", "example", "nullable", "format"):
                continue
            if key == "required" and not isinstance(value, list):
                self.note(where, "not-schema",
                          f"the field says required: {json.dumps(value)} (a parameter's "
                          "spelling, not a schema's): dropped; the body's required list is "
                          "followed")
                continue
            out[key] = value
        if "example" in prop:
            out["examples"] = [prop["example"]]
        if prop.get("nullable"):
            if kind is None:
                out["type"] = "null"
            else:
                out["type"] = [kind, "null"]
        for combiner in ("anyOf", "oneOf"):
            if combiner in prop:
                out[combiner] = [self.convert(branch, path) for branch in prop[combiner]]
        if "properties" in prop:
            out["properties"] = {
                name: self.convert(sub, (*path, name)) for name, sub in prop["properties"].items()
            }
            # Nested mappings are as strict as the body: a typo there is refused, not ignored.
            out["additionalProperties"] = False
        if "items" in prop:
            out["items"] = self.convert(prop["items"], (*path, "*"))
        if kind == "string" and _is_image(path):
            out["maxLength"] = IMAGE_MAX_LENGTH
            out["pattern"] = IMAGE_PATTERN
        elif "format" in prop:
            out["format"] = prop["format"]
        prompt_like = path[-1] in PROMPT_FIELDS or (len(path) > 1 and path[-2] in PROMPT_FIELDS)
        if prompt_like and "maxLength" in out and kind == "string":
            # The API counts prompts in UTF-16 code units (see runner/schemas.py).
            out["maxUtf16Length"] = out.pop("maxLength")
        self._fix_default(out, where)
        return out

    def _fix_default(self, out: dict[str, Any], where: str) -> None:
        if "default" not in out:
            return
        default = out["default"]
        kind = out.get("type")
        if kind in ("integer", "number") and isinstance(default, str):
            try:
                fixed: int | float = int(default) if kind == "integer" else float(default)
            except ValueError:
                self.note(where, "bad-default",
                          f"{kind} field with default {default!r}, which is not a number: dropped")
                del out["default"]
                return
            out["default"] = fixed
            self.note(where, "string-default",
                      f"{kind} field with the text default {default!r}: the schema's type wins, "
                      f"default {fixed}")
            default = fixed
        if "enum" in out and default not in out["enum"]:
            self.note(where, "default-not-in-enum",
                      f"default {default!r} is not one of its values {out['enum']}: dropped")
            del out["default"]


def check_samples(op: Operation, model: str, body: Mapping[str, Any], notes: list[Note]) -> None:
    """Note every docs example that the (converted) schema or the operation contradicts."""
    validator = RunnerValidator(body)
    for sample in op.samples:
        url = re.search(r"--url '(?:https://[^/']+)?(?P<path>/[^'?]*)", sample)
        if url and url["path"] not in (op.path, *op.aliases):
            notes.append(Note(op.source, model, "", "example-endpoint",
                              f"the cURL example posts to {url['path']}, the schema to "
                              f"{op.path}: the schema is followed"))
        match = re.search(r"--data '(.*)'\s*$", sample, re.DOTALL)
        if match is None:
            continue
        text = match.group(1)
        try:
            example = json.loads(text)
        except ValueError:
            try:  # shell quoting the docs get wrong ('\'' and \' for an apostrophe)
                example = json.loads(text.replace("'\\''", "'").replace("\\'", "'"))
            except ValueError:
                notes.append(Note(op.source, model, "", "example",
                                  "the cURL example's body is not valid JSON"))
                continue
        if example.get("model") != model and len(op.models) > 1:
            continue  # a multi-model file shows one of its models
        seen: set[str] = set()
        for error in sorted(validator.iter_errors(example), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in error.absolute_path)
            if where in seen:
                continue  # one note per value: "5" is refused by type and enum alike
            seen.add(where)
            shown = json.dumps(error.instance, ensure_ascii=False)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            notes.append(Note(op.source, model, where, "example",
                              f"the cURL example sends {where or 'a body'} = {shown}, which the "
                              f"schema refuses ({error.validator}): the schema is followed"))


# --------------------------------------------------------------------------- derivation


def _walk(schema: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Yield the path of every string leaf (items as "*"), through anyOf branches."""
    if schema.get("type") == "string" or (
        isinstance(schema.get("type"), list) and "string" in schema["type"]
    ):
        yield path
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, (*path, name))
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], (*path, "*"))
    for combiner in ("anyOf", "oneOf"):
        for branch in schema.get(combiner, []):
            yield from _walk(branch, path)


def image_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """Return where the body's images go: first frame, last frame, other images."""
    leaves = sorted({".".join(p) for p in _walk(body) if p})
    first = next((f for f in FIRST_FRAME if f in leaves), None)
    last = next((f for f in LAST_FRAME if f in leaves), None)
    other = [f for f in OTHER_IMAGES if f in leaves]
    return {"first": first, "last": last, "other": other}


def portable_fields(body: Mapping[str, Any], images: Mapping[str, Any]) -> dict[str, Any]:
    """Map each portable name to the body's wire field (a dotted path, maybe wrapped)."""
    props = body["properties"]
    fields: dict[str, Any] = {}
    for name in ("prompt", "duration", "seed", "negative_prompt"):
        if name in props:
            fields[name] = name
    if "ratio" in props:
        fields["ratio"] = "ratio"
    elif "aspect_ratio" in props:
        fields["ratio"] = "aspect_ratio"
    for portable, key in (("image", "first"), ("last_image", "last")):
        target = images[key]
        if target is None:
            continue
        if target.startswith("keyframes."):
            # Luma: a keyframe is {"type": "image", "url": ...}; the spec writes the image.
            frame = target.rsplit(".", 1)[0]
            fields[portable] = {"path": frame, "wrap": {"type": "image"}, "key": "url"}
        elif "." not in target:
            fields[portable] = target
    return {name: fields[name] for name in PORTABLE if name in fields}


def _values(prop: Mapping[str, Any] | None) -> list[Any] | None:
    if prop is None:
        return None
    if "enum" in prop:
        return list(prop["enum"])
    if prop.get("type") == "integer" and "minimum" in prop and "maximum" in prop:
        low, high = int(prop["minimum"]), int(prop["maximum"])
        if high - low <= 60:
            return list(range(low, high + 1))
    return None


def sizes_from_docs(body: Mapping[str, Any]) -> dict[tuple[str, str | None], tuple[int, int]]:
    """Read sizes a field description states ("720p with aspect ratios: - 16:9 — 1280x720")."""
    found: dict[tuple[str, str | None], tuple[int, int]] = {}
    for prop in body["properties"].values():
        text = prop.get("description", "") if isinstance(prop, dict) else ""
        resolution: str | None = None
        for line in text.splitlines():
            head = re.match(r"^(\d{3,4}p) with aspect ratios:", line.strip())
            if head:
                resolution = head.group(1)
                continue
            item = re.match(r"^- (\d+:\d+) — (\d+)x(\d+)$", line.strip())
            if item and resolution:
                found[(item.group(1), resolution)] = (int(item.group(2)), int(item.group(3)))
    return found


def derive_sizes(resolution: Mapping[str, Any] | None, ratios: list[Any] | None,
                 known: Mapping[tuple[str, str | None], tuple[int, int]]
                 ) -> dict[tuple[str, str | None], tuple[int, int]]:
    """Derive sizes where the docs say a resolution names the short side ("720p").

    The long side is the short side times the ratio, rounded to an even number of pixels
    (video encoders want even sizes); sizes the docs state are never replaced.
    """
    if resolution is None or not ratios or "short side" not in resolution.get("description", ""):
        return {}
    found: dict[tuple[str, str | None], tuple[int, int]] = {}
    for res in _values(resolution) or []:
        short = re.fullmatch(r"(\d{3,4})p", str(res))
        if short is None:
            continue
        side = int(short.group(1))
        for ratio in ratios:
            shape = re.fullmatch(r"(\d+):(\d+)", str(ratio))
            if shape is None or (ratio, res) in known:
                continue
            w, h = int(shape.group(1)), int(shape.group(2))
            long = 2 * round(side * max(w, h) / min(w, h) / 2)
            found[(ratio, res)] = (long, side) if w >= h else (side, long)
    return found


def capabilities(body: Mapping[str, Any], images: Mapping[str, Any]) -> list[str]:
    props = body["properties"]
    required = set(body.get("required", []))
    image_keys = {p.split(".")[0] for p in
                  [images["first"], images["last"], *images["other"]] if p}
    found: set[str] = set()
    if images["first"]:
        found.add("image-to-video")
    if ("prompt" in props or "multi_prompt" in props) and not required & image_keys:
        found.add("text-to-video")
    if any(f not in MASKS for f in images["other"]):
        found.add("reference-images")
    if images["last"]:
        found.add("last-frame")
    if "seed" in props:
        found.add("seed")
    if "negative_prompt" in props:
        found.add("negative-prompt")
    if any(k in props for k in AUDIO_SWITCHES):
        found.add("audio")
    if any(k in props for k in ENHANCE_SWITCHES):
        found.add("prompt-enhance")
    if "provider" in props:
        found.add("provider-routing")
    return [c for c in CAPABILITIES if c in found]


def family_of(model: str) -> str:
    for pattern, family in FAMILIES:
        if re.search(pattern, model):
            return family
    msg = f"no family for model {model!r} — add a rule to FAMILIES"
    raise VendorError(msg)


def exclusion(model: str, body: Mapping[str, Any]) -> str | None:
    """Return why the runner cannot run this model (inputs beyond text and images), or None."""
    needs = [OTHER_MEDIA[r] for r in body.get("required", []) if r in OTHER_MEDIA]
    if not needs:
        return None
    kind = next((label for word, label in KINDS if word in model), "needs other media")
    return f"{kind}: needs {' and '.join(needs)}; the runner sends text and images only"


def route_entry(name: str, endpoint: str, schema_file: str, source: str,
                body: Mapping[str, Any]) -> dict[str, Any]:
    images = image_fields(body)
    seed = body["properties"].get("seed")
    return {
        "name": name,
        "endpoint": endpoint,
        "schema": schema_file,
        "source": source,
        "fields": portable_fields(body, images),
        "images": images,
        "seed": None if seed is None else {
            "field": "seed",
            "minimum": seed.get("minimum"),
            "maximum": seed.get("maximum"),
        },
    }


def _size_order(item: tuple[tuple[str, str | None], tuple[int, int]]) -> tuple[int, float, str]:
    (ratio, res), (width, height) = item
    digits = re.match(r"\d+", res or "")
    return (int(digits.group()) if digits else 0, -width / height, ratio)


def _stated(routes: list[tuple[dict[str, Any], Mapping[str, Any]]], portable: str,
            key: str) -> Any:
    """Return `key` of the wire field behind `portable` on the first route that states it."""
    for route, body in routes:
        wire = route["fields"].get(portable, portable)
        prop = body["properties"].get(wire) if isinstance(wire, str) else None
        if prop is not None and key in prop:
            return prop[key]
    return None


def model_entry(model: str, routes: list[tuple[dict[str, Any], Mapping[str, Any]]],
                vendor: str, title: str, docs_path: str,
                notes: list[Note]) -> dict[str, Any]:
    """Build one model's registry entry from its routes (the first is the default).

    Enums come from the default route; a default the default route leaves unsaid comes
    from the next route that says it (Runway's legacy schema states no default duration;
    the unified one does).
    """
    route, body = routes[0]
    props = body["properties"]
    images = route["images"]
    ratio_field = route["fields"].get("ratio")
    ratio_prop = props.get(ratio_field) if isinstance(ratio_field, str) else None
    duration = props.get("duration")
    resolution = props.get("resolution")
    resolutions = _values(resolution)
    legacy = body.get("x-runner", {}).get("sizes", {})
    sizes: dict[tuple[str, str | None], tuple[int, int]] = {
        (ratio, None): (w, h) for ratio, (w, h) in legacy.items()
    }
    for (ratio, res), size in sizes_from_docs(body).items():
        if resolutions is not None and res not in resolutions:
            notes.append(Note(route["source"], model, "resolution", "size-not-offered",
                              f"a field description gives the {res} {ratio} size, but "
                              f"resolution offers only {resolutions}: left out"))
            continue
        sizes[(ratio, res)] = size
    source = "api-facts.md" if legacy else ("docs" if sizes else None)
    derived = derive_sizes(resolution, _values(ratio_prop), sizes)
    if derived:
        sizes.update(derived)
        source = "derived" if source is None else f"{source}, derived"
    required = set(body.get("required", []))
    image_keys = {p.split(".")[0] for p in [images["first"], images["last"], *images["other"]]
                  if p}
    return {
        "name": model,
        "family": family_of(model),
        "vendor": vendor,
        "title": title,
        "capabilities": capabilities(body, images),
        "image_required": bool(required & image_keys),
        "ratios": _values(ratio_prop),
        "default_ratio": _stated(routes, "ratio", "default") if ratio_prop else None,
        "durations": _values(duration),
        "default_duration": _stated(routes, "duration", "default") if duration else None,
        "resolutions": resolutions,
        "default_resolution": (resolution or {}).get("default"),
        "sizes": [
            {"ratio": ratio, "resolution": res, "width": w, "height": h}
            for (ratio, res), (w, h) in sorted(sizes.items(), key=_size_order)
        ] or None,
        "sizes_source": source,
        "docs_path": docs_path,
        "notes": [n.as_dict() for n in sorted(set(notes))],
        "routes": [r for r, _ in routes],
    }


# ------------------------------------------------------------------------- the catalog


def _choose(model: str, candidates: list[Operation], pages: Pages) -> Operation:
    """Pick the file to trust among several documenting one model on one endpoint."""

    def rank(op: Operation) -> tuple[int, int, float, str]:
        published = 0 if pages.links.get(op.source) else 1
        single = 0 if len(op.models) == 1 else 1
        stem = PurePosixPath(op.source).stem.lower()
        likeness = difflib.SequenceMatcher(None, stem, slug(model).lower()).ratio()
        return (published, single, -likeness, op.source)

    return sorted(candidates, key=rank)[0]


def build(files: Mapping[str, bytes | None], commit: str,
          legacy: Mapping[str, bytes]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Return the catalog and the body schema files (path under schemas/ -> schema)."""
    notes: list[Note] = []
    pages = read_pages(files)
    operations = read_operations(files, notes)
    by_model: dict[str, dict[str, list[Operation]]] = defaultdict(lambda: defaultdict(list))
    for op in operations:
        for model in op.models:
            by_model[model][op.path].append(op)

    models: list[dict[str, Any]] = []
    excluded: list[dict[str, Any]] = []
    schema_files: dict[str, dict[str, Any]] = {}
    for model in sorted(by_model):
        model_notes: list[Note] = []
        chosen: dict[str, Operation] = {}
        for endpoint, candidates in sorted(by_model[model].items()):
            pick = _choose(model, candidates, pages)
            chosen[endpoint] = pick
            for other in candidates:
                if other is pick:
                    continue
                theirs, ours = set(other.schema["properties"]), set(pick.schema["properties"])
                differs = sorted(theirs ^ ours)
                detail = f" (fields that differ: {', '.join(differs)})" if differs else ""
                model_notes.append(Note(other.source, model, "", "duplicate",
                                        f"also documents {model} at {endpoint}{detail}; "
                                        f"{pick.source} is followed"))
            for alias in pick.aliases:
                model_notes.append(Note(pick.source, model, "", "alias",
                                        f"also documented at {alias}, an older spelling of "
                                        f"{UNIFIED}; the runner posts to {UNIFIED}"))
        # The unified endpoint is where the docs moved every model; a legacy vendor path
        # is a second route (Runway's legacy path stays first: request ids depend on it).
        order = sorted(chosen, key=lambda e: (e != UNIFIED, e))
        default_op = chosen[order[0]]
        converted: list[tuple[str, Operation, dict[str, Any]]] = []
        for endpoint in order:
            op = chosen[endpoint]
            route = route_name(endpoint)
            body = Converter(op.source, model, model_notes).body(op.schema, endpoint, route)
            RunnerValidator.check_schema(body)
            check_samples(op, model, body, model_notes)
            converted.append((endpoint, op, body))
        reason = exclusion(model, converted[0][2])
        docs_path = pages.page_for(default_op.source) or default_op.source
        if reason is not None:
            excluded.append({
                "name": model,
                "family": family_of(model),
                "docs_path": docs_path,
                "source": default_op.source,
                "reason": reason,
            })
            continue
        routes: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
        if model in LEGACY_FILES:
            file_name = LEGACY_FILES[model]
            body = json.loads(legacy[file_name])
            routes.append((route_entry("runway", LEGACY_ENDPOINT, f"models/{file_name}",
                                       "api-facts.md: the documented legacy Runway path "
                                       "(hand-written schema)", body), body))
        for endpoint, op, body in converted:
            route = route_name(endpoint)
            relative = f"models/{route}/{slug(model)}.schema.json"
            if relative in schema_files:
                msg = f"two models write {relative} — make slug() tell them apart"
                raise VendorError(msg)
            schema_files[relative] = body
            routes.append((route_entry(route, endpoint, relative, op.source, body), body))
        title = pages.titles.get(docs_path, model) if docs_path.endswith(".md") else model
        vendor = PurePosixPath(default_op.source).parts[3]
        models.append(model_entry(model, routes, vendor, title, docs_path, model_notes))

    catalog = {
        "format_version": FORMAT_VERSION,
        "generated_by": "scripts/vendor_models.py",
        "docs": {"repository": DOCS_REPOSITORY, "commit": commit, "folder": MODELS_FOLDER},
        "portable": list(PORTABLE),
        "capabilities": list(CAPABILITIES),
        "models": models,
        "excluded": excluded,
        "source_notes": [n.as_dict() for n in sorted(set(notes))],
    }
    return catalog, schema_files


def dumps(data: Any) -> str:
    """Serialise JSON the one way this script writes files (stable, readable, UTF-8)."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write(out: Path, catalog: Mapping[str, Any], schema_files: Mapping[str, Any],
          legacy: Mapping[str, bytes]) -> list[Path]:
    """Write the catalog and schema files into `out`, removing ones no longer made."""
    out.mkdir(parents=True, exist_ok=True)
    wanted: dict[Path, bytes] = {out / "catalog.json": dumps(catalog).encode("utf-8")}
    for relative, body in schema_files.items():
        wanted[out / PurePosixPath(relative).relative_to("models")] = dumps(body).encode()
    referenced = {r["schema"] for m in catalog["models"] for r in m["routes"]}
    for name, raw in legacy.items():
        if f"models/{name}" in referenced:
            wanted[out / name] = raw  # copied unchanged when writing somewhere else
    # Only route folders hold generated schemas: nothing else in `out` is ever removed.
    for path in sorted(out.glob("*/*.schema.json")):
        if path not in wanted:
            path.unlink()
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        if not any(folder.iterdir()):
            folder.rmdir()
    written: list[Path] = []
    for path, raw in sorted(wanted.items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != raw:
            path.write_bytes(raw)
            written.append(path)
    return written


def read_legacy() -> dict[str, bytes]:
    """Return the hand-written legacy Runway schemas, byte for byte."""
    return {name: (SCHEMAS_OUT / name).read_bytes() for name in sorted(LEGACY_FILES.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path,
                        help="a bare git repository of aimlapi/api-docs, or a folder holding "
                             f"its {MODELS_FOLDER}/")
    parser.add_argument("--commit", help="the docs commit a plain folder holds")
    parser.add_argument("--out", type=Path, default=SCHEMAS_OUT,
                        help="where to write (default: the repository's schemas/models/)")
    args = parser.parse_args(argv)
    try:
        snapshot = Snapshot(args.source, args.commit)
        legacy = read_legacy()
        catalog, schema_files = build(snapshot.files(), snapshot.commit, legacy)
    except VendorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written = write(args.out, catalog, schema_files, legacy)
    print(f"{len(catalog['models'])} models, {len(catalog['excluded'])} excluded, "
          f"{len(schema_files)} body schemas from {snapshot.commit[:12]}; "
          f"{len(written)} files changed in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
