"""The gallery page: grid by matrix axes, escaping, failures shown, links, posters."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image

from runner.gallery import GalleryItem, gallery_for, layout, render, write_gallery
from runner.manifest import Manifest
from runner.poster import ensure_poster, poster_path

from .conftest import make_request, record_done, record_failed, write_mp4
from .htmltree import Node, parse


def item(matrix: dict[str, Any], **fields: Any) -> GalleryItem:
    """Return a done item for `matrix` with a video path derived from it."""
    name = "-".join(f"{k}{v}" for k, v in matrix.items()).replace(":", "x")
    values: dict[str, Any] = {
        "id": name, "job": "default", "status": "done", "matrix": matrix,
        "prompt": "a prompt", "seed": matrix.get("seed"), "video": f"{name}.mp4",
    }
    values.update(fields)
    return GalleryItem(**values)


def table_heads(table: Node) -> tuple[list[str], list[str]]:
    """Return (column headers after the corner, row headers) of a gallery table."""
    cols = [th.text() for th in table.find_all("thead")[0].find_all("th")[1:]]
    rows = [tr.find_all("th")[0].text() for tr in table.find_all("tbody")[0].find_all("tr")]
    return cols, rows


def cell_ids(table: Node) -> list[list[list[str]]]:
    """Return, per row and column, the request ids shown in that cell."""
    return [
        [[f.attrs["id"] or "" for f in td.find_all("figure")] for td in tr.find_all("td")]
        for tr in table.find_all("tbody")[0].find_all("tr")
    ]


def test_grid_takes_columns_and_rows_from_axes_with_most_values() -> None:
    """seed (3 values) × ratio (2 values) becomes 3 columns of seeds and 2 rows of ratios."""
    items = [item({"seed": s, "ratio": r}) for r in ("16:9", "9:16") for s in (3, 1, 2)]
    page = parse(render("sweep", items))
    (table,) = page.find_all("table")
    cols, rows = table_heads(table)
    assert cols == ["1", "2", "3"]  # numeric axes read in numeric order
    assert rows == ["16:9", "9:16"]
    assert cell_ids(table)[1][0] == ["r-seed1-ratio9x16"]
    assert cell_ids(table)[0][2] == ["r-seed3-ratio16x9"]


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
    assert len(page.find_all("table")) == 4
    assert all(len(t.find_all("figure")) == 6 for t in page.find_all("table"))


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
    """Prompts, axis values, job names and reasons from specs cannot inject markup."""
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    items = [
        item({"seed": 1, "ratio": evil}, prompt=evil, job=evil, id=evil),
        item({"seed": 2, "ratio": "16:9"}, job=evil, status="failed", video=None, reason=evil),
    ]
    page_text = render(evil, items)
    page = parse(page_text)
    assert page.find_all("script") == [] and page.find_all("img") == []
    assert all(not k.startswith("on") for n in page.iter() for k in n.attrs)
    assert evil in page.find_all("title")[0].text()
    assert evil in page.find_all("p", "prompt")[0].text()
    assert page.find_all("figcaption")[0].attrs["title"] == evil
    assert evil in page.find_all("p", "reason")[0].text()


def test_failed_requests_keep_their_cell_with_the_reason() -> None:
    """A failed request is shown in its grid cell with status and reason, and counted."""
    items = [item({"seed": 1}), item({"seed": 2}, status="failed", video=None,
                                     reason="content moderation refused the prompt")]
    page = parse(render("s", items))
    (failed,) = page.find_all("figure", "st-failed")
    assert failed.find_all("video") == []
    assert "failed" in failed.text() and "content moderation refused" in failed.text()
    assert "1 failed" in page.find_all("p", "summary")[0].text()


def test_links_are_relative_encoded_and_resolve_to_the_files(tmp_path: Path) -> None:
    """Every src/href/poster is a relative, percent-encoded path to a file in the folder."""
    output = "odd name #1/seed 1?.mp4"
    write_mp4(tmp_path / output)
    poster = poster_path(tmp_path, "rid")
    assert ensure_poster(tmp_path / output, poster)
    write_gallery(tmp_path, [item({"seed": 1}, id="rid", video=output,
                                  poster=poster.relative_to(tmp_path).as_posix())])
    page_text = (tmp_path / "index.html").read_text(encoding="utf-8")
    links = [
        value for node in parse(page_text).iter() for key, value in node.attrs.items()
        if key in ("src", "href", "poster") and value and not value.startswith("data:")
    ]
    assert len(links) == 3  # the video's src, its poster, the link to the file
    for link in links:
        parts = urlsplit(link)
        assert not parts.scheme and not parts.netloc and not link.startswith("/")
        assert (tmp_path / unquote(parts.path)).is_file(), link
    assert not re.search(r"https?:|//", page_text), "an absolute URL in the page"
    assert "url(" not in page_text and "@import" not in page_text


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
    videos = page.find_all("video")
    assert len(videos) == 3
    for video in videos:
        assert video.attrs["preload"] == "none"
        with Image.open(folder / unquote(video.attrs["poster"] or "")) as poster:
            assert poster.format == "JPEG" and poster.width > 0
    with Image.open(poster_path(folder, tall.id)) as tall_poster:
        assert tall_poster.height > tall_poster.width  # taken from the 9:16 video itself
    (failed,) = page.find_all("figure", "st-failed")
    assert failed.attrs["id"] == f"r-{bad.id}" and "NSFW input image" in failed.text()


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
    assert "is gone" in missing.text() and missing.find_all("video") == []
    (video,) = page.find_all("video")
    assert "poster" not in video.attrs
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
