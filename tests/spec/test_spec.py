"""Loading specs into requests: every rule of the spec section of DESIGN.md."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from runner.errors import SpecError, UsageError
from runner.identity import derive_seed, request_id
from runner.request import materialize
from runner.spec import LoadedSpec, load_specs
from tests.spec.conftest import BASE, SpecWriter, draw

ENDPOINT = "/v2/generate/video/runway/generation"


def load_one(path: Path, **kwargs: object) -> LoadedSpec:
    """Load a single spec file and return it."""
    (spec,) = load_specs([path], **kwargs)  # type: ignore[arg-type]
    return spec


def problems_of(path: Path, **kwargs: object) -> list[str]:
    """Return the problem lines a spec produces (it must produce some)."""
    with pytest.raises(SpecError) as info:
        load_specs([path], **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


def test_design_example_expands_as_documented(write_spec: SpecWriter) -> None:
    """DESIGN.md's spec: 3x2 minus 1 excluded plus 1 included = 6 requests, paths as templated."""
    path = write_spec("""
        version: 1
        name: dragon
        provider: aimlapi
        model: runway/gen4_turbo
        vars:
          creature: dragon
        matrix:
          seed: [1, 2, 3]
          ratio: ["16:9", "9:16"]
          exclude:
            - {seed: 3, ratio: "9:16"}
          include:
            - {seed: 42, ratio: "1:1"}
        params:
          image_url: images/frame.png
          prompt: "A menacing evil {{ creature }} rushes toward the camera"
          duration: 5
        output: "{{ ratio | replace(':', 'x') }}/seed-{{ seed }}.mp4"
    """)
    spec = load_one(path)
    assert spec.name == "dragon"
    assert [r.output for r in spec.requests] == [
        "16x9/seed-1.mp4",
        "9x16/seed-1.mp4",
        "16x9/seed-2.mp4",
        "9x16/seed-2.mp4",
        "16x9/seed-3.mp4",
        "1x1/seed-42.mp4",
    ]
    first = spec.requests[0]
    sha = hashlib.sha256((path.parent / "images/frame.png").read_bytes()).hexdigest()
    assert dict(first.body) == {
        "model": "runway/gen4_turbo",
        "image_url": f"sha256:{sha}",
        "prompt": "A menacing evil dragon rushes toward the camera",
        "duration": 5,
        "seed": 1,
        "ratio": "16:9",
    }
    assert first.id == request_id("aimlapi", "runway/gen4_turbo", ENDPOINT, first.body)
    assert first.endpoint == ENDPOINT and first.job == "default" and not first.seed_derived
    assert set(spec.images) == {sha}
    posted = materialize(first.body, spec.images)
    assert posted["image_url"].startswith("data:image/png;base64,")
    assert (
        base64.b64decode(posted["image_url"].split(",", 1)[1]) == spec.images[sha].path.read_bytes()
    )


def test_axes_named_like_params_fill_them_others_never_reach_the_body(
    write_spec: SpecWriter,
) -> None:
    """`ratio` fills the body; `mood` is only a template variable; params win over axes."""
    path = write_spec(
        BASE
        + """
matrix:
  ratio: ["16:9", "1:1"]
  mood: [calm, wild]
  duration: [5]
params:
  image_url: images/frame.png
  prompt: "a {{ mood }} sea"
  duration: 10
"""
    )
    requests = load_one(path).requests
    assert [r.body["ratio"] for r in requests] == ["16:9", "16:9", "1:1", "1:1"]
    assert all("mood" not in r.body for r in requests)
    assert [r.body["prompt"] for r in requests] == ["a calm sea", "a wild sea"] * 2
    assert all(r.body["duration"] == 10 for r in requests)
    assert requests[0].matrix == {"ratio": "16:9", "mood": "calm", "duration": 5}


def test_seed_is_derived_when_the_spec_gives_none(write_spec: SpecWriter) -> None:
    """Without a seed, each request gets the documented derived seed and is marked so."""
    path = write_spec(
        BASE
        + """
matrix:
  prompt: [sunrise, sunset]
params:
  image_url: images/frame.png
"""
    )
    spec = load_one(path)
    for request in spec.requests:
        without = {k: v for k, v in request.body.items() if k != "seed"}
        assert request.seed_derived
        assert request.seed == derive_seed("aimlapi", "runway/gen4_turbo", ENDPOINT, without)
    assert spec.requests[0].seed != spec.requests[1].seed


def test_typed_expression_keeps_int(write_spec: SpecWriter) -> None:
    """`seed: "{{ base + n }}"` renders an int seed, so the body validates as integer."""
    path = write_spec(
        BASE
        + """
vars: {base: 100}
matrix:
  n: [1, 2]
params:
  image_url: images/frame.png
  seed: "{{ base + n }}"
  duration: "{{ 5 }}"
"""
    )
    assert [(r.body["seed"], r.body["duration"]) for r in load_one(path).requests] == [
        (101, 5),
        (102, 5),
    ]


def test_ids_are_stable_across_reordering_renaming_and_additions(write_spec: SpecWriter) -> None:
    """Reordering axes and keys, renaming the job or adding requests keeps every id."""
    before = write_spec(
        BASE
        + """
jobs:
  first:
    matrix: {seed: [1, 2], ratio: ["16:9"]}
    params: {image_url: images/frame.png, prompt: hi}
""",
        "a.yaml",
    )
    after = write_spec(
        """
model: runway/gen4_turbo
version: 1
provider: aimlapi
jobs:
  other:
    params: {prompt: hi, image_url: ./images/../images/frame.png}
    matrix: {ratio: ["16:9", "1:1"], seed: [3, 2, 1]}
""",
        "b.yaml",
    )
    ids_before = {r.id for r in load_one(before).requests}
    ids_after = {r.id for r in load_one(after).requests}
    assert len(ids_before) == 2 and ids_before <= ids_after


def test_sandbox_override_changes_every_id(write_spec: SpecWriter) -> None:
    """provider_override="sandbox" (--sandbox) swaps providers before ids are computed,
    but a derived seed stays the one the real run sends (the try-out previews it)."""
    path = write_spec(BASE + "params: {image_url: images/frame.png}\n")
    real = load_one(path).requests[0]
    fake = load_one(path, provider_override="sandbox").requests[0]
    assert fake.provider == "sandbox" and real.provider == "aimlapi"
    assert fake.id != real.id and fake.seed == real.seed and real.seed_derived


def test_jobs_inherit_and_override_defaults(write_spec: SpecWriter) -> None:
    """Jobs take top-level provider/model/vars/params/output and may override each."""
    path = write_spec("""
version: 1
provider: aimlapi
model: runway/gen4_turbo
vars: {who: cat}
params: {image_url: images/frame.png, prompt: "a {{ who }}", duration: 5}
output: "{{ job }}/{{ seed }}.mp4"
jobs:
  one:
    params: {seed: 1}
  two:
    provider: apilaplas
    model: gen3a_turbo
    vars: {who: dog}
    params: {seed: 2, duration: 10}
    output: "two-{{ seed }}.mp4"
""")
    one, two = load_one(path).requests
    assert (one.job, one.provider, one.model, one.output) == (
        "one",
        "aimlapi",
        "runway/gen4_turbo",
        "one/1.mp4",
    )
    assert (two.provider, two.model, two.output) == ("apilaplas", "gen3a_turbo", "two-2.mp4")
    assert (one.body["prompt"], two.body["prompt"]) == ("a cat", "a dog")
    assert two.body["duration"] == 10 and two.body["model"] == "gen3a_turbo"


def test_default_output_layout_reads_the_matrix(write_spec: SpecWriter) -> None:
    """Without `output`, paths spell the matrix values (images by file stem, : as x)."""
    path = write_spec(
        BASE
        + """
matrix:
  image_url: [images/frame.png, images/square.png]
  ratio: ["16:9"]
  seed: [7]
"""
    )
    assert [r.output for r in load_one(path).requests] == [
        "image_url-frame_ratio-16x9_seed-7.mp4",
        "image_url-square_ratio-16x9_seed-7.mp4",
    ]
    single = write_spec(BASE + "params: {image_url: images/frame.png}\n", "solo.yaml")
    assert load_one(single).requests[0].output == "solo.mp4"


def test_prompt_length_counts_utf16_units(write_spec: SpecWriter) -> None:
    """500 emoji (1000 UTF-16 units) pass; 501 (1002 units, 501 code points) fail."""
    ok = write_spec(BASE + 'params: {image_url: images/frame.png, prompt: "' + "😀" * 500 + '"}\n')
    assert load_one(ok).requests[0].body["prompt"] == "😀" * 500
    bad = write_spec(
        BASE + 'params: {image_url: images/frame.png, prompt: "' + "😀" * 501 + '"}\n', "bad.yaml"
    )
    (line,) = problems_of(bad)
    assert "1002 UTF-16 code units" in line and line.startswith(f"{bad}:4:")


def test_https_passes_through_and_data_uri_is_hashed(write_spec: SpecWriter, workdir: Path) -> None:
    """An https URL is sent as is; a literal data: URI becomes a sha256: reference."""
    raw = (workdir / "images/frame.png").read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(raw).decode()
    path = write_spec(
        BASE
        + f"""
matrix:
  image_url: ["https://example.com/a.png", "{uri}"]
"""
    )
    spec = load_one(path)
    sha = hashlib.sha256(raw).hexdigest()
    assert [r.body["image_url"] for r in spec.requests] == [
        "https://example.com/a.png",
        f"sha256:{sha}",
    ]
    assert materialize(spec.requests[1].body, spec.images)["image_url"] == uri


def test_images_inside_the_git_repository_may_use_dotdot(tmp_path: Path) -> None:
    """The image root is the spec's git repository: ../assets/x.png from specs/ is fine."""
    (tmp_path / ".git").mkdir()
    draw(tmp_path / "assets" / "x.png", (64, 36))
    spec = tmp_path / "specs" / "s.yaml"
    spec.parent.mkdir()
    spec.write_text(BASE + "params: {image_url: ../assets/x.png}\n", encoding="utf-8")
    assert load_one(spec).requests[0].body["image_url"].startswith("sha256:")


def test_symlink_leaving_the_tree_is_refused(
    write_spec: SpecWriter, workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A symlink inside the folder pointing outside it is refused like a ../ escape."""
    outside = draw(tmp_path_factory.mktemp("elsewhere") / "x.png", (64, 36))
    os.symlink(outside, workdir / "images" / "link.png")
    path = write_spec(BASE + "params: {image_url: images/link.png}\n")
    (line,) = problems_of(path)
    assert "leads outside" in line


def test_folders_recurse_and_skip_hidden(write_spec: SpecWriter, workdir: Path) -> None:
    """A folder argument finds *.yaml and *.yml recursively, skipping hidden folders."""
    text = BASE + "params: {image_url: 'https://example.com/a.png'}\n"
    write_spec(text, "sub/a.yaml")
    write_spec(text, "sub/deeper/b.yml")
    write_spec("not: [valid", "sub/.hidden/c.yaml")
    specs = load_specs([workdir / "sub"])
    assert [s.display for s in specs] == [
        str(workdir / "sub/a.yaml"),
        str(workdir / "sub/deeper/b.yml"),
    ]


def test_duplicate_spec_names_are_an_error(write_spec: SpecWriter, workdir: Path) -> None:
    """Two specs with the same name would share an output folder: refused."""
    text = BASE + "name: same\nparams: {image_url: images/frame.png}\n"
    write_spec(text, "a.yaml")
    second = write_spec(text, "b.yaml")
    with pytest.raises(SpecError) as info:
        load_specs([workdir])
    (problem,) = info.value.problems
    assert problem.file == str(second) and "also used by" in problem.message


def test_missing_paths_are_usage_errors(workdir: Path) -> None:
    """A path that does not exist, or a folder without specs, is a usage error (exit 2)."""
    with pytest.raises(UsageError, match="no such spec"):
        load_specs([workdir / "nope.yaml"])
    (workdir / "empty").mkdir()
    with pytest.raises(UsageError, match="no spec files"):
        load_specs([workdir / "empty"])


def test_max_requests_parameter_and_spec_setting(write_spec: SpecWriter) -> None:
    """The cap is a load_specs parameter, and a spec may set its own `max_requests`."""
    text = BASE + "matrix: {seed: {range: [1, 30]}}\nparams: {image_url: images/frame.png}\n"
    path = write_spec(text)
    assert len(load_one(path).requests) == 30
    (line,) = problems_of(path, max_requests=20)
    assert "30 combinations, more than the limit of 20" in line
    raised = write_spec("max_requests: 40\n" + text, "raised.yaml")
    assert len(load_one(raised, max_requests=20).requests) == 30


def test_cap_covers_all_jobs_together(write_spec: SpecWriter) -> None:
    """max_requests bounds the whole spec, not each job."""
    path = write_spec(
        BASE
        + """
max_requests: 5
params: {image_url: images/frame.png}
jobs:
  a: {matrix: {seed: [1, 2, 3]}}
  b: {matrix: {seed: [4, 5, 6]}}
"""
    )
    (line,) = problems_of(path)
    assert "earlier jobs use 3" in line


def test_key_like_values_are_refused_without_echoing_them(
    write_spec: SpecWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sk-... strings and the value of $AIMLAPI_API_KEY are errors that never print the key."""
    monkeypatch.setenv("AIMLAPI_API_KEY", "my-real-key-123456")
    path = write_spec(
        BASE
        + """
vars:
  a: sk-abcdefghij_klmnopqrst_uvwxyz0123
  b: "prefix my-real-key-123456 suffix"
params:
  {image_url: images/frame.png, prompt: "{{ a }}", ratio: "sk-abcdefghij_klmnopqrst_uvwxyz0123"}
"""
    )
    lines = problems_of(path)
    assert sum("looks like an API key" in line for line in lines) == 3
    for line in lines:
        assert "abcdefghijklmnop" not in line and "my-real-key" not in line
