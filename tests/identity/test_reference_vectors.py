"""Request ids and derived seeds are pinned to values computed once, by release 0.1.0.

An id names a paid video: if it changes for the same spec, every finished request looks
new and is paid for again. The expected values here are hard-coded hex and integers
(`vectors.json`, and the literals below), never recomputed with the runner's own
`canonical_json`, so an accidental change to identity fails loudly instead of moving
both sides of the comparison.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.identity import derive_seed, request_id

HERE = Path(__file__).parent
VECTORS: dict[str, Any] = json.loads((HERE / "vectors.json").read_text(encoding="utf-8"))
CASES = {case["name"]: case for case in VECTORS["cases"]}
ENDPOINT = "/v2/generate/video/runway/generation"


def plan_json(folder: Path, spec: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Return the requests of `runner plan --json --output-dir out SPEC`, run in `folder`."""
    monkeypatch.chdir(folder)
    monkeypatch.delenv("AIMLAPI_API_KEY", raising=False)
    monkeypatch.delenv("APILAPLAS_API_KEY", raising=False)
    result = CliRunner().invoke(
        cli, ["plan", "--json", "--output-dir", "out", spec.name], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    requests: list[dict[str, Any]] = json.loads(result.output)["requests"]
    return requests


def write_case(folder: Path, case: dict[str, Any]) -> Path:
    """Write a case's spec beside a copy of the reference images; return the spec path."""
    shutil.copytree(HERE / "images", folder / "images")
    spec = folder / f"{case['name']}.yaml"
    spec.write_text(case["spec"], encoding="utf-8")
    return spec


def pinned(requests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return id -> the pinned facts (job, seed as sent, the video's path) of plan requests."""
    return {
        r["id"]: {"job": r["job"], "seed": r["payload"]["seed"], "output": r["path"]}
        for r in requests
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_spec_gives_its_reference_ids_seeds_and_outputs(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaded through `runner plan --json`, the spec yields exactly the recorded requests."""
    case = CASES[name]
    requests = plan_json(tmp_path, write_case(tmp_path, case), monkeypatch)
    expected = {r["id"]: {k: r[k] for k in ("job", "seed", "output")} for r in case["requests"]}
    assert pinned(requests) == expected
    assert {r["status"] for r in requests} == {"new"}


def test_reference_images_are_the_ones_the_vectors_were_made_with() -> None:
    """The local images' bytes are unchanged (their hashes are inside the ids)."""
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted((HERE / "images").iterdir())}
    assert digests == {
        "frame.png": "c8e8c4078422aaac7dc39dc92d790e16525f00d2af608f1013c3566723749568",
        "square.png": "ed5df26e2894c9fa42353504183d56020e710ea4edf091dccf775cee948ca49d",
    }


def test_vectors_cover_every_kind_of_identity_input() -> None:
    """The table holds each case the identity promise depends on."""
    assert set(CASES) >= {
        "explicit-seeds", "derived-seeds", "local-image", "https-image", "data-uri-image",
        "multi-job", "include-exclude", "templated-prompt", "unicode-prompt",
        "provider-aimlapi", "provider-apilaplas", "provider-sandbox", "gen3a-last-image",
    }


def test_providers_never_share_an_id() -> None:
    """The same spec on aimlapi, apilaplas and sandbox gives three disjoint sets of ids."""
    ids = [
        {r["id"] for r in CASES[f"provider-{p}"]["requests"]}
        for p in ("aimlapi", "apilaplas", "sandbox")
    ]
    assert all(len(s) == 2 for s in ids)
    assert len(set().union(*ids)) == 6


def test_local_image_id_follows_its_content_not_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renaming the image file (same bytes) keeps the reference id."""
    case = CASES["local-image"]
    spec = write_case(tmp_path, case)
    (tmp_path / "images" / "square.png").rename(tmp_path / "images" / "renamed.png")
    spec.write_text(case["spec"].replace("images/square.png", "images/renamed.png"))
    assert set(pinned(plan_json(tmp_path, spec, monkeypatch))) == {
        r["id"] for r in case["requests"]
    }


# ------------------------------------------------------------- the functions themselves

BODY = {"model": "runway/gen4_turbo", "image_url": "sha256:" + "ab" * 32,
        "prompt": "a dragon", "ratio": "16:9", "duration": 5, "seed": 1}
UNSEEDED = {"model": "runway/gen4_turbo", "image_url": "https://example.com/a.png",
            "prompt": "Drache über 龍 🐉", "ratio": "9:16", "duration": 10}
GEN3A = {"model": "gen3a_turbo", "image_url": "sha256:" + "01" * 32,
         "last_image_url": "sha256:" + "02" * 32, "prompt": "from first to last",
         "ratio": "16:9", "duration": 5}


@pytest.mark.parametrize(
    ("provider", "expected"),
    [("aimlapi", "0cbd1d5b9bf6bd01"), ("apilaplas", "c56fb40c309db76f"),
     ("sandbox", "014c13ecd95c9060")],
)
def test_request_id_of_a_literal_body(provider: str, expected: str) -> None:
    """request_id of a fixed body per provider is the recorded hex."""
    assert request_id(provider, "runway/gen4_turbo", ENDPOINT, BODY) == expected


@pytest.mark.parametrize(
    ("provider", "body", "seed", "rid"),
    [
        ("sandbox", UNSEEDED, 3153944152, "0b88285e93a9948f"),
        ("aimlapi", UNSEEDED, 2867354151, "90ecdfcb1cb18569"),
        ("apilaplas", GEN3A, 1588398992, "ba74a2bd71ff5d31"),
    ],
)
def test_derive_seed_of_a_literal_body(
    provider: str, body: dict[str, Any], seed: int, rid: str
) -> None:
    """derive_seed of a body without seed, and the id once the seed is in, are recorded."""
    model = body["model"]
    assert derive_seed(provider, model, ENDPOINT, body) == seed
    assert request_id(provider, model, ENDPOINT, {**body, "seed": seed}) == rid


def test_documented_formula_written_out_by_hand() -> None:
    """The id is sha256 of the canonical JSON docs/ARCHITECTURE.md describes, here typed
    out as bytes: sorted keys, no whitespace, UTF-8 (not \\u escapes)."""
    canonical = (
        '{"body":{"duration":5,"image_url":"sha256:' + "ab" * 32 + '","model":'
        '"runway/gen4_turbo","prompt":"a dragon","ratio":"16:9","seed":1},"endpoint":'
        '"/v2/generate/video/runway/generation","model":"runway/gen4_turbo",'
        '"provider":"aimlapi"}'
    ).encode()
    assert hashlib.sha256(canonical).hexdigest()[:16] == "0cbd1d5b9bf6bd01"
    unseeded = (
        '{"body":{"duration":10,"image_url":"https://example.com/a.png","model":'
        '"runway/gen4_turbo","prompt":"Drache über 龍 🐉","ratio":"9:16"},"endpoint":'
        '"/v2/generate/video/runway/generation","model":"runway/gen4_turbo",'
        '"provider":"sandbox"}'
    ).encode()
    assert int(hashlib.sha256(unseeded).hexdigest()[:8], 16) == 3153944152
