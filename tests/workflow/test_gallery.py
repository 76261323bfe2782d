"""The gallery page without a browser: layout by matrix axes, escaping, statuses, links."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from PIL import Image

from runner.errors import UsageError
from runner.gallery import GalleryItem, gallery_for, layout, render, write_gallery
from runner.gallery_data import expose_model_axis
from runner.manifest import Manifest
from runner.poster import ensure_poster, input_thumb_path, poster_path
from runner.request import Request

from .conftest import make_request, record_done, record_failed, write_mp4, write_png, write_sidecar
from .htmltree import Node, parse


def item(matrix: dict[str, Any], **fields: Any) -> GalleryItem:
    """Return a done item for `matrix` with a video path derived from it."""
    name = "-".join(f"{k}{v}" for k, v in matrix.items()).replace(":", "x")
    values: dict[str, Any] = {
        "id": name, "job": "default", "status": "done", "matrix": matrix,
        "prompt": "a prompt", "seed": matrix.get("seed"), "video": f"{name}.mp4",
        "output": f"{name}.mp4",
    }
    values.update(fields)
    return GalleryItem(**values)


def sections(page: Node) -> list[Node]:
    """Return the page's grid sections in order."""
    return page.find_all("section", "sect")


def row_heads(section: Node) -> list[str]:
    """Return the row labels of a section (without the axis name)."""
    return [_label(head) for head in section.find_all("div", "rhead")]


def cells(section: Node) -> list[list[tuple[str, list[str]]]]:
    """Return, per row, each cell's column label and the request ids shown in it."""
    return [
        [
            (_label(cell.find_all("div", "clabel")[0]) if cell.find_all("div", "clabel") else "",
             [f.attrs["id"] or "" for f in cell.find_all("figure")])
            for cell in row.find_all("div", "cell")
        ]
        for row in section.find_all("div", "row")
    ]


def _label(head: Node) -> str:
    return "".join(head.texts).strip()


def page_data(page_text: str) -> dict[str, Any]:
    """Return the JSON the page embeds for its script."""
    match = re.search(r'<script id="gallery-data" type="application/json">(.*?)</script>',
                      page_text, flags=re.S)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_seed_sweep_wraps_seeds_as_columns_with_a_row_per_ratio() -> None:
    """50 seeds × 2 ratios: seeds are the (wrapping) columns, one row per ratio, one section."""
    items = [item({"seed": s, "ratio": r}) for r in ("16:9", "9:16") for s in range(50, 0, -1)]
    page = parse(render("hundred", items))
    (section,) = sections(page)
    assert "c-many" in (section.attrs["class"] or "")  # wraps instead of 50 columns
    assert row_heads(section) == ["16:9", "9:16"]
    grid = cells(section)
    assert [label for label, _ in grid[0]] == [str(s) for s in range(1, 51)]  # numeric order
    assert grid[1][6] == ("7", ["r-seed7-ratio9x16"])


def test_two_seeds_of_one_shot_sit_side_by_side() -> None:
    """specs/sweep.yaml's shape: seeds across, images down, a section per ratio."""
    images = ("images/mountain.png", "images/lighthouse.png", "images/tea.png")
    subjects = dict(zip(images, ("mist", "beam", "steam"), strict=True))
    items = [
        item({"image_url": i, "ratio": r, "seed": s, "subject": subjects[i]})
        for i in images for r in ("16:9", "9:16") for s in (11, 12)
    ]
    (grid_wide, grid_tall) = layout(items)
    assert (grid_wide.col_axis, grid_wide.row_axis) == ("seed", "image_url")
    assert grid_wide.fixed == (("ratio", "16:9"),) and grid_tall.fixed == (("ratio", "9:16"),)
    assert [i.id for i in grid_wide.cells[("images/tea.png", "12")]] == [
        "image_urlimages/tea.png-ratio16x9-seed12-subjectsteam"]
    page = parse(render("sweep", items))
    assert [h.text() for h in page.find_all("h3")] == ["ratio = 16:9", "ratio = 9:16"]
    first_row = cells(sections(page)[0])[0]
    assert [label for label, _ in first_row] == ["11", "12"]


def test_models_become_the_columns_when_a_job_uses_several() -> None:
    """Items of one job with two models get a `model` axis, laid out across, seeds down."""
    items = expose_model_axis([
        item({"seed": s}, id=f"{m}-{s}", model=m)
        for m in ("runway/gen4_turbo", "gen3a_turbo") for s in (1, 2, 3)
    ])
    assert all(i.matrix["model"] == i.model for i in items)
    (grid,) = layout(items)
    assert grid.col_axis == "model" and grid.row_axis == "seed"
    assert grid.cols == ("runway/gen4_turbo", "gen3a_turbo")
    assert [i.id for i in grid.cells[("2", "gen3a_turbo")]] == ["gen3a_turbo-2"]
    one_model = expose_model_axis([item({"seed": 1}, model="m"), item({"seed": 2}, model="m")])
    assert all("model" not in i.matrix for i in one_model)


def test_rows_and_cols_can_be_chosen_and_the_rest_become_sections() -> None:
    """layout(rows=, cols=) places the chosen axes; the others split the job into sections."""
    items = [item({"seed": s, "ratio": r, "duration": d})
             for d in (5, 10) for r in ("16:9", "1:1") for s in (1, 2, 3)]
    grids = layout(items, rows="seed", cols="duration")
    assert {(g.row_axis, g.col_axis) for g in grids} == {("seed", "duration")}
    assert [g.fixed for g in grids] == [(("ratio", "16:9"),), (("ratio", "1:1"),)]
    assert grids[0].cols == ("5", "10") and grids[0].rows == ("1", "2", "3")
    only_rows = layout(items, rows="seed")  # the columns fall back to the next best axis
    assert only_rows[0].row_axis == "seed" and only_rows[0].col_axis == "ratio"


def test_other_axes_become_sections_and_jobs_get_headings() -> None:
    """A third varying axis splits the page into sections; each job gets its own heading."""
    items = [
        item({"seed": s, "ratio": r, "duration": d}, job=job, id=f"{job}{s}{r}{d}")
        for job in ("wide", "tall") for d in (5, 10) for r in ("16:9", "1:1")
        for s in (1, 2, 3)
    ]
    page = parse(render("many", items))
    assert [h.text() for h in page.find_all("h2")] == ["job: wide", "job: tall"]
    assert [h.text() for h in page.find_all("h3")] == ["duration = 5", "duration = 10"] * 2
    assert len(sections(page)) == 4
    assert all(len(s.find_all("figure")) == 6 for s in sections(page))


def test_missing_axis_keys_from_include_get_their_own_label() -> None:
    """A matrix `include` combination lacking an axis is shown under "—", not dropped."""
    items = [item({"seed": s, "ratio": r}) for s in (1, 2) for r in ("16:9", "9:16")]
    items.append(item({"seed": 42}, id="extra"))
    (grid,) = layout(items)
    assert grid.col_axis == "seed" and grid.cols == ("1", "2", "42")
    assert grid.row_axis == "ratio" and grid.rows == ("16:9", "9:16", "—")
    assert grid.cells[("16:9", "1")][0].id == "seed1-ratio16x9"
    assert [i.id for i in grid.cells[("—", "42")]] == ["extra"]


def test_spec_text_is_escaped_everywhere() -> None:
    """Prompts, axis values, job names and reasons cannot inject markup or end the JSON."""
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)><!--'
    items = [
        item({"seed": 1, "ratio": evil}, prompt=evil, job=evil, id=evil),
        item({"seed": 2, "ratio": "16:9"}, job=evil, status="failed", video=None, reason=evil),
    ]
    page_text = render(evil, items)
    page = parse(page_text)
    scripts = page.find_all("script")
    assert [s.attrs.get("type") for s in scripts] == ["application/json", None]
    assert page.find_all("img") == []  # no poster, no input image: none may come from data
    assert all(not k.startswith("on") for n in page.iter() for k in n.attrs)
    assert evil in page.find_all("title")[0].text()
    assert evil in page.find_all("p", "prompt")[0].text()
    assert evil in page.find_all("p", "reason")[0].text()
    data_text = scripts[0].text()
    assert "</" not in data_text and "<!--" not in data_text
    assert page_data(page_text)["items"][0]["v"]["ratio"] == evil  # JSON.parse gets it back
    assert page_data(page_text)["jobs"][0]["name"] == evil


def test_only_the_page_s_own_script_and_style_may_run() -> None:
    """The CSP names the hash of the inline script and style; nothing else runs or loads."""
    page_text = render("s", [item({"seed": 1})])
    page = parse(page_text)
    (meta,) = [m for m in page.find_all("meta") if m.attrs.get("http-equiv")]
    policy = meta.attrs["content"] or ""
    script = page.find_all("script")[1].text()
    style = page.find_all("style")[0].text()
    for text in (script, style):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "connect-src 'none'" in policy
    assert "unsafe-inline" not in policy and "http" not in policy


def test_failed_unknown_and_pending_keep_their_cell_with_the_reason() -> None:
    """Requests without a video show status and reason in their cell, and are counted."""
    items = [
        item({"seed": 1}),
        item({"seed": 2}, status="failed", video=None, reason="content moderation refused"),
        item({"seed": 3}, status="unknown", video=None, reason="the connection dropped"),
        item({"seed": 4}, status="pending", video=None, reason="still generating"),
    ]
    page = parse(render("s", items))
    (failed,) = page.find_all("figure", "st-failed")
    assert failed.find_all("video") == [] and failed.find_all("a", "play") == []
    assert "failed" in failed.text() and "content moderation refused" in failed.text()
    assert "the connection dropped" in page.find_all("figure", "st-unknown")[0].text()
    assert "still generating" in page.find_all("figure", "st-pending")[0].text()
    summary = page.find_all("p", "summary")[0].text()
    assert "1 failed" in summary and "1 unknown" in summary and "1 pending" in summary


def test_links_are_relative_encoded_and_resolve_to_the_files(tmp_path: Path) -> None:
    """Every src/href is a relative, percent-encoded path to a file in the folder."""
    output = "odd name #1/seed 1?.mp4"
    write_mp4(tmp_path / output)
    write_sidecar(tmp_path, output, {})
    poster = poster_path(tmp_path, "rid")
    assert ensure_poster(tmp_path / output, poster)
    thumb = input_thumb_path(tmp_path, "ab" * 32)
    write_png(tmp_path / "in.png")
    Image.open(tmp_path / "in.png").convert("RGB").save(thumb)
    write_gallery(tmp_path, [item(
        {"seed": 1}, id="rid", video=output, output=output,
        poster=poster.relative_to(tmp_path).as_posix(),
        sidecar="odd name #1/seed 1?.json", image=thumb.relative_to(tmp_path).as_posix(),
    )])
    page_text = (tmp_path / "index.html").read_text(encoding="utf-8")
    links = [
        value for node in parse(page_text).iter() for key, value in node.attrs.items()
        if key in ("src", "href", "poster") and value and not value.startswith("data:")
    ]
    # play link + poster, input link + image, video link, sidecar link
    assert len(links) == 6
    for link in links:
        parts = urlsplit(link)
        assert not parts.scheme and not parts.netloc and not link.startswith("/")
        assert (tmp_path / unquote(parts.path)).is_file(), link
    assert "%23" in page_text and "%3F" in page_text  # '#' and '?' cannot cut a link short
    markup, script = page_text.split("<script>", 1)
    assert not re.search(r"https?:|//", markup), "an absolute URL in the page"
    assert "://" not in script and "fetch(" not in script and "XMLHttpRequest" not in script
    assert "url(" not in page_text and "@import" not in page_text


def test_posters_load_lazily_and_no_video_element_is_built() -> None:
    """Posters are lazy <img>s and the page holds no <video> until one is played."""
    page = parse(render("s", [item({"seed": s}, poster=f".posters/{s}.jpg") for s in (1, 2)]))
    assert page.find_all("video") == []
    posters = page.find_all("img", "poster")
    assert len(posters) == 2 and {p.attrs["loading"] for p in posters} == {"lazy"}


def test_gallery_for_builds_from_manifest_with_posters_from_the_videos(tmp_path: Path) -> None:
    """gallery_for reads the manifest, writes one JPEG poster per video and shows failures."""
    folder = tmp_path / "sweep"
    with Manifest.open(folder) as manifest:
        for seed in (1, 2):
            record_done(manifest, make_request("sweep", {"seed": seed, "ratio": "16:9"}),
                        folder, hue=seed * 60)
        tall = make_request("sweep", {"seed": 1, "ratio": "9:16"})
        record_done(manifest, tall, folder, width=90, height=160)
        bad = make_request("sweep", {"seed": 2, "ratio": "9:16"})
        record_failed(manifest, bad, "generation failed: NSFW input image")
    page = parse(gallery_for(folder).read_text(encoding="utf-8"))
    posters = page.find_all("img", "poster")
    assert len(posters) == 3
    for poster in posters:
        with Image.open(folder / unquote(poster.attrs["src"] or "")) as image:
            assert image.format == "JPEG" and image.width > 0
    with Image.open(poster_path(folder, tall.id)) as tall_poster:
        assert tall_poster.height > tall_poster.width  # taken from the 9:16 video itself
    (failed,) = page.find_all("figure", "st-failed")
    assert failed.attrs["id"] == f"r-{bad.id}" and "NSFW input image" in failed.text()


def test_each_cell_links_its_sidecar_when_it_is_there(tmp_path: Path) -> None:
    """A video with a sidecar beside it links it; one without shows no sidecar link."""
    folder = tmp_path / "s"
    with_sidecar, without = make_request("s", {"seed": 1}), make_request("s", {"seed": 2})
    with Manifest.open(folder) as manifest:
        record_done(manifest, with_sidecar, folder)
        record_done(manifest, without, folder)
    write_sidecar(folder, with_sidecar.output, {"id": with_sidecar.id})
    page = parse(gallery_for(folder).read_text(encoding="utf-8"))
    links = {f.attrs["id"]: [a.attrs["href"] for a in f.find_all("a", "sidecar")]
             for f in page.find_all("figure")}
    assert links == {f"r-{with_sidecar.id}": ["16x9/seed-1.json"], f"r-{without.id}": []}


def _request_with_image(name: str, seed: int, image_ref: str, model: str = "runway/gen4_turbo",
                        job: str = "default") -> Request:
    """Return a request whose first-frame image is the local image `image_ref`."""
    body = {"model": model, "image_url": image_ref, "prompt": "p", "ratio": "16:9",
            "duration": 5, "seed": seed}
    rid = hashlib.sha256(json.dumps([body, job]).encode()).hexdigest()[:16]
    return Request(rid, f"specs/{name}.yaml", name, job, "sandbox", model,
                   "/v2/generate/video/runway/generation", body,
                   f"{job}/{model.replace('/', '_')}/seed-{seed}.mp4", {"seed": seed}, False)


def record_done_with_images(manifest: Manifest, request: Request, folder: Path,
                            images: dict[str, str]) -> None:
    """Record `request` as downloaded, with the images map a run records, and its MP4."""
    path = write_mp4(folder / request.output)
    manifest.record_submitting(request, images)
    manifest.record_submitted(request.id, f"gen-{request.id}")
    manifest.record_downloaded(
        request.id, output=request.output, size=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(), mtime_ns=path.stat().st_mtime_ns,
        video={"duration": 2.0, "width": 160, "height": 90, "codec": "h264"},
        download_seconds=0.1,
    )


def test_input_images_are_shown_small_from_one_thumbnail_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each cell shows its input image, thumbnailed once per image, only if it still matches."""
    monkeypatch.chdir(tmp_path)  # the manifest names images relative to the run's folder
    mountain = write_png(tmp_path / "specs" / "images" / "mountain.png", size=(640, 360))
    edited = write_png(tmp_path / "specs" / "images" / "edited.png", shade=9)
    folder = tmp_path / "outputs" / "s"
    with Manifest.open(folder) as manifest:
        for seed in (1, 2):
            request = _request_with_image("s", seed, mountain.ref)
            record_done_with_images(manifest, request, folder,
                                    {mountain.ref: "specs/images/mountain.png"})
        later = _request_with_image("s", 3, edited.ref)
        record_done_with_images(manifest, later, folder, {edited.ref: "specs/images/edited.png"})
    # The run recorded these paths; the second image was edited after the run.
    (tmp_path / "specs" / "images" / "edited.png").write_bytes(
        (tmp_path / "specs" / "images" / "mountain.png").read_bytes())
    page = parse(gallery_for(Path("outputs/s")).read_text(encoding="utf-8"))
    inputs = {f.attrs["id"]: [i.attrs["src"] for i in f.find_all("img")
                              if "poster" not in (i.attrs.get("class") or "")]
              for f in page.find_all("figure")}
    thumb = f".posters/input-{mountain.sha256}.jpg"
    assert list(inputs.values()) == [[thumb], [thumb], []]  # the edited one is not shown
    with Image.open(folder / thumb) as image:
        assert image.format == "JPEG" and image.width == 320
    assert not input_thumb_path(folder, edited.sha256).exists()
    title = page.find_all("a", "input")[0].attrs["title"] or ""
    assert "specs/images/mountain.png" in title


def test_several_models_in_one_job_are_an_axis_from_the_manifest(tmp_path: Path) -> None:
    """A job whose requests use two models gets a `model` column in the built page."""
    folder = tmp_path / "m"
    with Manifest.open(folder) as manifest:
        for model in ("runway/gen4_turbo", "gen3a_turbo"):
            for seed in (1, 2):
                record_done(manifest, _request_with_image("m", seed, "sha256:" + "cd" * 32,
                                                          model=model), folder)
    page_text = gallery_for(folder).read_text(encoding="utf-8")
    (section,) = sections(parse(page_text))
    assert row_heads(section) == ["1", "2"]
    assert [label for label, _ in cells(section)[0]] == ["runway/gen4_turbo", "gen3a_turbo"]
    assert "model" in page_data(page_text)["jobs"][0]["axes"]


def test_regenerating_reuses_posters_and_refreshes_stale_ones(tmp_path: Path) -> None:
    """A second gallery_for leaves posters untouched; a newer video gets a new poster."""
    folder = tmp_path / "s"
    request = make_request("s", {"seed": 1})
    other = make_request("s", {"seed": 2})
    with Manifest.open(folder) as manifest:
        video = record_done(manifest, request, folder)
        record_done(manifest, other, folder)
    gallery_for(folder)
    poster, other_poster = poster_path(folder, request.id), poster_path(folder, other.id)
    first, other_first = poster.stat().st_mtime_ns, other_poster.stat().st_mtime_ns
    os.utime(poster, ns=(first - 10**9, first - 10**9))  # older than the video now
    os.utime(other_poster, ns=(other_first + 10**9, other_first + 10**9))
    gallery_for(folder)
    assert other_poster.stat().st_mtime_ns == other_first + 10**9  # untouched
    assert poster.stat().st_mtime_ns > first - 10**9  # rewritten: the video is newer
    assert video.stat().st_mtime_ns <= poster.stat().st_mtime_ns


def test_missing_or_undecodable_video_is_shown_not_fatal(tmp_path: Path) -> None:
    """A deleted video shows as missing; a corrupt one shows without a poster."""
    folder = tmp_path / "s"
    gone, broken = make_request("s", {"seed": 1}), make_request("s", {"seed": 2})
    with Manifest.open(folder) as manifest:
        record_done(manifest, gone, folder).unlink()
        record_done(manifest, broken, folder).write_bytes(b"not an mp4 at all")
    page = parse(gallery_for(folder).read_text(encoding="utf-8"))
    (missing,) = page.find_all("figure", "st-missing")
    assert "is gone" in missing.text() and missing.find_all("a", "play") == []
    (play,) = page.find_all("a", "play")
    assert play.find_all("img") == [] and "play" in play.text()
    assert not poster_path(folder, broken.id).exists()


def test_reproductions_are_linked_under_their_original(tmp_path: Path) -> None:
    """Files named <stem>.repro-N.mp4 beside a video are listed under it, in N order."""
    folder = tmp_path / "s"
    request = make_request("s", {"seed": 1})
    with Manifest.open(folder) as manifest:
        video = record_done(manifest, request, folder)
    for n in (10, 2):
        write_mp4(video.with_name(f"seed-1.repro-{n}.mp4"))
    (video.with_name("seed-1.repro-x.mp4")).write_bytes(b"")
    page = parse(gallery_for(folder).read_text(encoding="utf-8"))
    (repros,) = page.find_all("p", "repros")
    assert [a.attrs["href"] for a in repros.find_all("a")] == [
        "16x9/seed-1.repro-2.mp4", "16x9/seed-1.repro-10.mp4"]


def test_empty_folder_gets_a_page_saying_so(tmp_path: Path) -> None:
    """A spec folder without a manifest still gets a valid page telling what to do."""
    page = parse(gallery_for(tmp_path / "new").read_text(encoding="utf-8"))
    assert "runner run" in page.find_all("p", "empty")[0].text()


def test_an_unknown_axis_is_refused_with_a_hint(tmp_path: Path) -> None:
    """--rows with a typo names the axes and suggests the close one; rows == cols is refused."""
    folder = tmp_path / "s"
    with Manifest.open(folder) as manifest:
        for seed in (1, 2):
            record_done(manifest, make_request("s", {"seed": seed, "ratio": "16:9"}), folder)
    with pytest.raises(UsageError, match=r"--rows 'sed': no such axis \(did you mean 'seed'\?\)"):
        gallery_for(folder, rows="sed")
    with pytest.raises(UsageError, match="both 'seed'"):
        gallery_for(folder, rows="seed", cols="seed")
    assert not (folder / "index.html").exists()  # nothing was written


def test_reasons_from_the_manifest_say_what_happens_next(tmp_path: Path) -> None:
    """Unknown, pending and generated-not-downloaded requests each say what the next step is."""
    folder = tmp_path / "s"
    unknown, polling, generated = (make_request("s", {"seed": s}) for s in (1, 2, 3))
    with Manifest.open(folder) as manifest:
        manifest.record_submitting(unknown)  # the run died before the generation id came back
        manifest.record_submitting(polling)
        manifest.record_submitted(polling.id, "gen-2")
        manifest.record_submitting(generated)
        manifest.record_submitted(generated.id, "gen-3")
        manifest.record_completed(generated.id)
    page = parse(gallery_for(folder).read_text(encoding="utf-8"))
    reasons = {f.attrs["id"]: f.find_all("p", "reason")[0].text() for f in page.find_all("figure")}
    assert "may have accepted" in reasons[f"r-{unknown.id}"]
    assert "--resubmit-unknown" in reasons[f"r-{unknown.id}"]
    assert "polls it (never resubmits)" in reasons[f"r-{polling.id}"]
    assert "downloads it" in reasons[f"r-{generated.id}"]
    statuses = {f.attrs["id"]: f.attrs["class"] for f in page.find_all("figure")}
    assert statuses[f"r-{unknown.id}"] == "item st-unknown"
    assert statuses[f"r-{polling.id}"] == statuses[f"r-{generated.id}"] == "item st-pending"
