"""Output paths and duplicate requests as a spec's author meets them: paths, lines, words."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.spec import LoadedSpec, load_specs
from tests.spec.conftest import BASE, SpecWriter

IMAGE = "params:\n  image_url: images/frame.png\n"


def load_one(path: Path) -> LoadedSpec:
    """Load a single spec file and return it."""
    (spec,) = load_specs([path])
    return spec


def problems_of(path: Path) -> list[str]:
    """Return the problem lines (`file:line:col: message`) a spec produces."""
    with pytest.raises(SpecError) as info:
        load_specs([path])
    return [str(p) for p in info.value.problems]


def test_default_outputs_of_named_jobs_go_in_a_folder_per_job(write_spec: SpecWriter) -> None:
    """Without an output template, each named job's videos go under `<job>/`."""
    path = write_spec(BASE + IMAGE + """
jobs:
  wide:
    matrix: {seed: [1, 2]}
  tall:
    matrix: {seed: [3]}
""")
    assert [r.output for r in load_one(path).requests] == [
        "wide/seed-1.mp4", "wide/seed-2.mp4", "tall/seed-3.mp4"]


def test_an_output_template_may_name_the_request_id(write_spec: SpecWriter) -> None:
    """`{{ id }}` in an output template is the request's own id."""
    path = write_spec(BASE + IMAGE + """
matrix: {seed: [1, 2]}
output: "by-id/{{ id }}.mp4"
""")
    requests = load_one(path).requests
    assert [r.output for r in requests] == [f"by-id/{r.id}.mp4" for r in requests]
    assert len({r.id for r in requests}) == 2


def test_an_output_template_that_fails_to_render_is_told_at_the_output(
    write_spec: SpecWriter,
) -> None:
    """An undefined name in the output template is one line at that job's `output:`."""
    path = write_spec(BASE + IMAGE + """
jobs:
  fine:
    matrix: {seed: [1]}
  typo:
    output: "x-{{ sede }}.mp4"
    matrix: {seed: [4]}
""")
    (line,) = problems_of(path)
    assert line.startswith(f"{path}:11:13: output: 'sede' is undefined — ")


def test_an_unwritable_rendered_path_is_told_with_the_path_at_the_output(
    write_spec: SpecWriter,
) -> None:
    """Each combination whose rendered path escapes gets a line naming that path."""
    path = write_spec(BASE + IMAGE + """
matrix: {seed: [1, 2]}
output: "{{ seed }}/../../x.mp4"
""")
    assert problems_of(path) == [
        f"{path}:8:9: output path '{seed}/../../x.mp4' leaves the output folder ('..') — "
        "write a path inside it"
        for seed in (1, 2)
    ]


def test_a_default_output_too_long_is_told_at_the_jobs_matrix(write_spec: SpecWriter) -> None:
    """Four long axis names make a default file name past 200 characters: the line points
    at the job's matrix, whose names made it."""
    axes = "".join(f"      shot_{c}_{'x' * 44}: [1]\n" for c in "abcd")
    path = write_spec(BASE + IMAGE + "jobs:\n  long:\n    matrix:\n" + axes)
    (line,) = problems_of(path)
    assert line.startswith(f"{path}:9:7: output path 'long/shot_a_")
    assert line.endswith(" has a name longer than 200 characters — shorten it")


def test_identical_requests_of_two_jobs_are_told_at_the_second_job(
    write_spec: SpecWriter,
) -> None:
    """Two jobs without a matrix that send the same body would be paid twice: one line,
    at the second job's name, saying how to fix it."""
    path = write_spec(BASE + IMAGE + """
jobs:
  a:
    output: "a.mp4"
  b:
    output: "b.mp4"
""")
    (line,) = problems_of(path)
    assert line.startswith(
        f"{path}:10:3: job 'a' {{}} and job 'b' {{}} make the identical request (id ")
    assert line.endswith(
        "); it would be paid for twice — vary a parameter (e.g. a seed axis) or remove one")


def test_default_outputs_that_slug_alike_are_told_at_the_matrix(write_spec: SpecWriter) -> None:
    """'a:b' and 'axb' both slug to `axb`: two different requests, one default path, one
    line at the matrix saying to template the output."""
    path = write_spec(BASE + """
params:
  image_url: images/frame.png
  prompt: "{{ take }}"
matrix:
  take: ["a:b", "axb"]
""")
    assert problems_of(path) == [
        f"{path}:9:3: {{take: 'a:b'}} and {{take: 'axb'}} both write 'take-axb.mp4' — make the "
        "output template use a value that differs between them (e.g. {{ seed }})"]


def test_skip_drops_the_twin_of_a_model_that_ignores_an_axis(write_spec: SpecWriter) -> None:
    """With `unsupported: skip`, a model taking no ratio is asked once (not once per ratio,
    not refused as a duplicate); a ratio a model lacks is left out, the rest kept."""
    path = write_spec("""
version: 1
provider: aimlapi
unsupported: skip
matrix:
  model: [runway/gen4_turbo, gen3a_turbo, klingai/v2.1-master-image-to-video]
  ratio: ["16:9", "1:1"]
params:
  image: images/frame.png
  prompt: the same shot by three models
""")
    assert [(r.model, r.matrix["ratio"]) for r in load_one(path).requests] == [
        ("runway/gen4_turbo", "16:9"),
        ("runway/gen4_turbo", "1:1"),
        ("gen3a_turbo", "16:9"),
        ("klingai/v2.1-master-image-to-video", "16:9"),
    ]


def test_a_default_output_that_clashes_is_told_at_its_jobs_matrix(write_spec: SpecWriter) -> None:
    """A job named `clip.mp4` puts its videos in a folder another job's video is named
    after: both lines, the default one at its matrix, the templated one at its output."""
    path = write_spec(BASE + IMAGE + """
jobs:
  clip.mp4:
    matrix: {seed: [1]}
  single:
    output: "clip.mp4"
    matrix: {seed: [2]}
""")
    assert problems_of(path) == [
        f"{path}:9:13: output path 'clip.mp4/seed-1.mp4' runs through 'clip.mp4', a file of "
        "'clip.mp4' (a video or its sidecar) — rename one of them",
        f"{path}:11:13: output path 'clip.mp4' is also a folder of 'clip.mp4/seed-1.mp4' — "
        "rename one of them",
    ]


def test_a_request_refused_as_a_duplicate_or_a_clash_is_not_judged_again(
    write_spec: SpecWriter,
) -> None:
    """A refused request is left out of the folder checks: its twin's problems are told
    once, not repeated for it."""
    output = "output: \"{{ 'a.mp4/b.mp4' if seed == 3 else 'a.mp4' }}\"\n"
    clashing = write_spec(BASE + IMAGE + "matrix: {seed: [1, 2, 3]}\n" + output)
    assert [line.partition(": ")[2] for line in problems_of(clashing)] == [
        "{seed: 1} and {seed: 2} both write 'a.mp4' — make the output template use a value "
        "that differs between them (e.g. {{ seed }})",
        "output path 'a.mp4' is also a folder of 'a.mp4/b.mp4' — rename one of them",
        "output path 'a.mp4/b.mp4' runs through 'a.mp4', a file of 'a.mp4' (a video or its "
        "sidecar) — rename one of them",
    ]
    jobs = write_spec(BASE + IMAGE + """
jobs:
  one: {output: "a.mp4", matrix: {seed: [1]}}
  two: {output: "a.mp4", matrix: {seed: [2]}}
  three: {output: "a.mp4/b.mp4", matrix: {seed: [3]}}
""", "jobs.yaml")
    assert problems_of(jobs) == [
        f"{jobs}:8:17: output path 'a.mp4' is also a folder of 'a.mp4/b.mp4' — rename one "
        "of them",
        f"{jobs}:9:17: job 'one' {{seed: 1}} and job 'two' {{seed: 2}} both write 'a.mp4' — "
        "make the output template use a value that differs between them (e.g. {{ seed }})",
        f"{jobs}:10:19: output path 'a.mp4/b.mp4' runs through 'a.mp4', a file of 'a.mp4' (a "
        "video or its sidecar) — rename one of them",
    ]
    twins = write_spec(BASE + IMAGE + "matrix: {take: [1, 2, 3]}\n"
                       + output.replace("seed", "take"), "twins.yaml")
    lines = problems_of(twins)
    assert len(lines) == 2
    assert all(" make the identical request " in line for line in lines)
