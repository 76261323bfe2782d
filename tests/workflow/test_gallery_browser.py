"""The gallery of a 104-request sandbox run in real headless Chromium, contacting loopback only.

One real run (two models × 26 seeds × two ratios, with failed and unknown requests, a
deleted video, and a second run that adds a seed) is shared by the module. Every test
drives Chromium over DevTools under strace and ends by proving from the trace that
nothing but loopback was contacted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runner.gallery import gallery_for, render
from runner.gallery_data import items_for
from runner.gallery_history import badged, read_history
from runner.request import Request
from runner.sandbox import FaultSpec, SandboxConfig, start_in_thread

from .browser import Page, loopback_connects, off_machine, open_page, served
from .conftest import ENDPOINT, HandSpec, run_on_sandbox, write_png

pytestmark = pytest.mark.browser

MODELS = ("runway/gen4_turbo", "gen3a_turbo")
RATIOS = ("16:9", "9:16")
SEEDS = range(1, 27)
WIDTH = 1280  # px: the window the issue names

WAIT_JS = """(check, ms) => new Promise((done, fail) => {
  const start = performance.now();
  const step = () => {
    const value = check();
    if (value) return done(value);
    if (performance.now() - start > ms) return fail(new Error('timed out: ' + check));
    requestAnimationFrame(step);
  };
  step();
})"""
LAYOUT_JS = """[...document.querySelectorAll('#grid section.job')].map(job => ({
  heading: job.querySelector(':scope > h2')?.textContent ?? null,
  sections: [...job.querySelectorAll(':scope > section.sect')].map(s => ({
    classes: s.className,
    heading: s.querySelector(':scope > h3')?.textContent ?? null,
    rows: [...s.querySelectorAll(':scope > .row')].map(r => ({
      head: r.querySelector(':scope > .rhead')?.textContent.trim() ?? null,
      cells: [...r.querySelectorAll(':scope > .cells > .cell')].map(c => [
        c.querySelector('.clabel')?.textContent.trim() ?? null,
        [...c.querySelectorAll('figure')].map(f => Number(f.dataset.i))]),
    })),
  })),
}))"""
VISIBLE_JS = """[...document.querySelectorAll('figure.item')]
  .filter(f => !f.closest('[hidden]')).map(f => Number(f.dataset.i))"""
OVERFLOW_JS = "document.documentElement.scrollWidth - window.innerWidth"


@dataclass(frozen=True)
class Run:
    """The shared sandbox run: its output folder and what the page embeds about it."""

    folder: Path
    items: list[dict[str, Any]]  # the page's JSON items, in data-i order

    def where(self, **values: str) -> list[int]:
        """Return the data-i of the items whose axis labels equal `values`."""
        return [n for n, item in enumerate(self.items)
                if all(item["v"].get(k) == v for k, v in values.items())]


def _spec(root: Path, seeds: range) -> HandSpec:
    """Return the sandbox spec: both models × `seeds` × both ratios, from one image."""
    image = write_png(root / "images" / "mountain.png", size=(96, 54))
    requests = []
    for model in MODELS:
        for seed in seeds:
            for ratio in RATIOS:
                body = {"model": model, "image_url": image.ref, "prompt": "A slow push",
                        "ratio": ratio, "duration": 5, "seed": seed}
                identity = json.dumps({"provider": "sandbox", "model": model,
                                       "endpoint": ENDPOINT, "body": body}, sort_keys=True)
                slug = model.replace("/", "_")
                requests.append(Request(
                    id=hashlib.sha256(identity.encode()).hexdigest()[:16],
                    spec="specs/models.yaml", spec_name="models", job="default",
                    provider="sandbox", model=model, endpoint=ENDPOINT, body=body,
                    output=f"{slug}/{ratio.replace(':', 'x')}/seed-{seed}.mp4",
                    matrix={"seed": seed, "ratio": ratio}, seed_derived=False,
                ))
    return HandSpec("models", "specs/models.yaml", tuple(requests), {image.sha256: image})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Run 100 requests (2 fail, 1 unknown), then 4 more; delete one video; build the page."""
    root = tmp_path_factory.mktemp("gallery-run")
    faults = {"failed_generation": FaultSpec(first=2), "drop_after_accept": FaultSpec(first=1)}
    # Without usage logs the dropped POST stays unknown (with them it would be found).
    config = SandboxConfig(latency=0.0, jitter=0.0, faults=faults, logs=False)
    with start_in_thread(config) as sandbox:
        run_on_sandbox(_spec(root, range(1, 26)), root / "outputs", sandbox)  # gallery built
        summary = run_on_sandbox(_spec(root, SEEDS), root / "outputs", sandbox)
    made = [r for r in summary.reports if r.outcome not in ("already_done", "unknown", "failed")]
    assert len(made) == 4  # the second run only made the new seed
    folder = root / "outputs" / "_sandbox" / "models"  # sandbox runs keep their own tree
    (folder / "gen3a_turbo" / "16x9" / "seed-7.mp4").unlink(missing_ok=True)
    gallery_for(folder)  # what `runner gallery` does: the deleted video shows as missing
    text = (folder / "index.html").read_text(encoding="utf-8")
    start = text.index('type="application/json">') + len('type="application/json">')
    items = json.loads(text[start:text.index("</script>", start)])["items"]
    assert len(items) == 104
    return Run(folder, items)


@pytest.fixture(scope="module")
def origin(run: Run) -> Iterator[str]:
    """Serve the run's output folder from a loopback HTTP server."""
    with served(run.folder) as url:
        yield url


@asynccontextmanager
async def browse(url: str, trace: Path) -> AsyncIterator[Page]:
    """Open `url` at 1280 px under strace; after it, check the log and the network."""
    async with open_page(width=WIDTH, height=900, trace=trace) as page:
        await page.goto(url)
        await page.evaluate("document.fonts.ready.then(() => true)")
        yield page
        assert page.log.problems() == []
    text = trace.read_text(encoding="utf-8")
    assert off_machine(text) == []
    if url.startswith("http"):
        assert loopback_connects(text) > 0  # the trace did see this browser's connections


async def wait(page: Page, check: str, ms: int = 15000) -> Any:
    """Wait (on the page's frames, not a fixed sleep) until `check` is truthy; return it."""
    return await page.evaluate(f"({WAIT_JS})(() => {check}, {ms})")


def test_page_lays_out_104_requests_without_sideways_scrolling(
    run: Run, origin: str, tmp_path: Path
) -> None:
    """At 1280 px: every request shown once, no horizontal overflow, lazy posters, no MP4."""

    async def check() -> tuple[dict[str, Any], list[str]]:
        async with browse(f"{origin}/index.html", tmp_path / "net.trace") as page:
            facts = await page.evaluate("""({
              figures: document.querySelectorAll('figure.item').length,
              overflow: document.documentElement.scrollWidth - innerWidth,
              videos: document.querySelectorAll('video').length,
              posters: document.querySelectorAll('img.poster').length,
              controls: !document.getElementById('controls').hidden,
              reasons: Object.fromEntries(['failed', 'unknown', 'missing'].map(s => [s,
                [...document.querySelectorAll('figure.st-' + s + ' .reason')]
                  .map(r => r.textContent)])),
            })""")
            # Every filter open at once (26 seed chips among them) still fits.
            await page.evaluate(
                "document.querySelectorAll('details.filter').forEach(d => d.open = true) || true")
            facts["overflow_open"] = await page.evaluate(OVERFLOW_JS)
            return facts, list(page.log.requested_urls)

    facts, urls = asyncio.run(check())
    assert facts["figures"] == 104 and facts["controls"] and facts["videos"] == 0
    assert facts["overflow"] <= 0 and facts["overflow_open"] <= 0
    statuses = [item["s"] for item in run.items]
    for status in ("failed", "unknown", "missing"):
        assert len(facts["reasons"][status]) == statuses.count(status)
        assert all(facts["reasons"][status])
    assert statuses.count("failed") >= 1 and statuses.count("unknown") == 1
    assert "resubmit-unknown" in facts["reasons"]["unknown"][0]
    posters = [u for u in urls if "/.posters/" in u and "input-" not in u]
    assert 0 < len(posters) < facts["posters"]  # only the first screens' posters load
    assert not any(u.endswith(".mp4") for u in urls)


def test_filters_by_axis_value_by_status_and_from_the_address(
    run: Run, origin: str, tmp_path: Path
) -> None:
    """Ticking ratio 9:16 shows only those; status failed only the failed; a link keeps it."""

    async def check() -> dict[str, Any]:
        async with browse(f"{origin}/index.html", tmp_path / "net.trace") as page:
            await page.evaluate("""(() => {
              const chip = [...document.querySelectorAll('details[data-axis="ratio"] input')]
                .find(i => i.value === '9:16');
              chip.click(); return true; })()""")
            tall = await page.evaluate(VISIBLE_JS)
            shown = await page.evaluate("document.getElementById('shown').textContent")
            address = await page.evaluate("location.hash")
            await page.evaluate("document.getElementById('show-all').click() || true")
            everything = await page.evaluate(VISIBLE_JS)
            await page.evaluate("""(() => {
              document.querySelector('details[data-kind="status"] input[value="failed"]')
                .click(); return true; })()""")
            failed = await page.evaluate(VISIBLE_JS)
            overflow = await page.evaluate(OVERFLOW_JS)
            await page.goto("about:blank")  # a new load, not a jump within the page
            await page.goto(f"{origin}/index.html#f.model=gen3a_turbo&f.seed=3")
            linked = await page.evaluate(VISIBLE_JS)
            return {"tall": tall, "shown": shown, "address": address,
                    "everything": everything, "failed": failed, "overflow": overflow,
                    "linked": linked}

    seen = asyncio.run(check())
    assert sorted(seen["tall"]) == run.where(ratio="9:16") and len(seen["tall"]) == 52
    assert seen["shown"] == "showing 52 of 104" and seen["address"] == "#f.ratio=9%3A16"
    assert len(seen["everything"]) == 104
    assert sorted(seen["failed"]) == [n for n, i in enumerate(run.items) if i["s"] == "failed"]
    assert seen["overflow"] <= 0
    assert sorted(seen["linked"]) == run.where(model="gen3a_turbo", seed="3")


def test_new_badges_filter_the_seed_the_second_run_added(
    run: Run, origin: str, tmp_path: Path
) -> None:
    """The four requests of the second run are badged new, and the badge filter shows them."""

    async def check() -> list[int]:
        async with browse(f"{origin}/index.html#badge=new", tmp_path / "net.trace") as page:
            result: list[int] = await page.evaluate(VISIBLE_JS)
            return result

    assert sorted(asyncio.run(check())) == run.where(seed="26")


@pytest.mark.parametrize(("rows", "cols"), [("seed", "model"), ("model", "ratio"),
                                            ("ratio", "seed"), ("auto", "auto")])
def test_switching_layout_on_the_page_matches_the_layout_built_in_python(
    run: Run, origin: str, tmp_path: Path, rows: str, cols: str
) -> None:
    """The page's rows/columns switch builds the very grid `runner gallery --rows --cols` does."""
    history = read_history(run.folder)
    items = badged(items_for(run.folder), history.baseline)
    wanted = None if rows == "auto" else rows, None if cols == "auto" else cols
    alternative = run.folder / f"layout-{rows}-{cols}.html"
    alternative.write_text(render("models", items, rows=wanted[0], cols=wanted[1]),
                           encoding="utf-8")

    async def check() -> tuple[Any, Any, Any, int]:
        async with browse(f"{origin}/index.html", tmp_path / "net.trace") as page:
            await page.evaluate(f"""(() => {{
              const set = (id, value) => {{ const s = document.getElementById(id);
                s.value = value; s.dispatchEvent(new Event('change')); }};
              set('cols', 'auto'); set('rows', {json.dumps(rows)});
              set('cols', {json.dumps(cols)}); return true; }})()""")
            switched = await page.evaluate(LAYOUT_JS)
            overflow = await page.evaluate(OVERFLOW_JS)
            await page.goto(f"{origin}/{alternative.name}")
            built = await page.evaluate(LAYOUT_JS)
            await page.goto(f"{origin}/index.html#rows={rows}&cols={cols}")
            linked = await page.evaluate(LAYOUT_JS)
            return switched, built, linked, overflow

    switched, built, linked, overflow = asyncio.run(check())
    assert switched == built == linked
    assert overflow <= 0
    if rows == "seed":
        (job,) = built
        heads = [r["head"] for s in job["sections"] for r in s["rows"]]
        assert heads[:3] == ["seed 1", "seed 2", "seed 3"]
        assert [c[0] for c in job["sections"][0]["rows"][0]["cells"]] == [
            "model runway/gen4_turbo", "model gen3a_turbo"]


def _compare_js(picks: list[int]) -> str:
    """Return a script that ticks `picks`, opens the comparison and plays, pauses and seeks."""
    return f"""(async () => {{
      const until = {WAIT_JS};
      for (const n of {json.dumps(picks)}) document.querySelector(
        `figure[data-i="${{n}}"] .pick input`).click();
      const refused = [...document.querySelectorAll('.pick input')]
        .filter(b => !b.checked && b.disabled).length;
      document.getElementById('compare-open').click();
      const videos = [...document.querySelectorAll('#compare video')];
      const spread = () => {{ const t = videos.map(v => v.currentTime);
        return Math.max(...t) - Math.min(...t); }};
      // Play, pause (which moves the others to the first's frame), seek while paused and
      // play on from there: every step that moves a video is measured.
      document.getElementById('cmp-play').click();
      await until(() => videos.every(v => !v.paused && v.currentTime > 1.0), 15000);
      const playing = spread();
      document.getElementById('cmp-play').click();
      await until(() => videos.every(v => v.paused), 5000);
      const paused = spread();
      const seek = document.getElementById('cmp-seek');
      seek.value = '3'; seek.dispatchEvent(new Event('input'));
      await until(() => videos.every(v => !v.seeking && v.currentTime >= 3), 15000);
      const sought = spread();
      const times = videos.map(v => v.currentTime);
      document.getElementById('cmp-play').click();
      await until(() => videos.every(v => !v.paused && v.currentTime > 3.1), 15000);
      const resumed = spread();
      document.getElementById('cmp-play').click();
      const result = {{
        count: videos.length, refused, playing, sought, paused, resumed, times,
        inputs: document.querySelectorAll('#compare img.cmp-input').length,
        titles: [...document.querySelectorAll('#compare h4')].map(h => h.textContent),
        overflow: document.documentElement.scrollWidth - innerWidth,
        open: !document.getElementById('compare').hidden,
      }};
      document.getElementById('cmp-close').click();
      result.closed = document.getElementById('compare').hidden;
      return result;
    }})()"""


def _done_shot(run: Run) -> list[int]:
    """Return one shot (seed, ratio) that both models made, as its two items' data-i."""
    for seed in SEEDS:
        pair = run.where(seed=str(seed), ratio="16:9")
        if len(pair) == 2 and all(run.items[n]["s"] == "done" for n in pair):
            return pair
    raise AssertionError("no shot was made by both models")


def test_compare_plays_the_same_shot_of_two_models_in_sync(
    run: Run, origin: str, tmp_path: Path
) -> None:
    """Two videos of one shot across models play, seek and pause together, inputs beside."""

    async def check() -> dict[str, Any]:
        async with browse(f"{origin}/index.html", tmp_path / "net.trace") as page:
            result: dict[str, Any] = await page.evaluate(_compare_js(_done_shot(run)))
            return result

    seen = asyncio.run(check())
    assert seen["count"] == 2 and seen["open"] and seen["closed"] and seen["refused"] == 0
    assert seen["playing"] < 0.3 and seen["resumed"] < 0.3, seen
    assert seen["paused"] < 0.05 and seen["sought"] < 0.05, seen
    assert all(t >= 3 for t in seen["times"]), seen
    assert seen["inputs"] == 2 and seen["overflow"] <= 0
    assert [t.split(" · ")[0] for t in seen["titles"]] == [
        "model runway/gen4_turbo", "model gen3a_turbo"]


def test_compare_takes_four_at_most_and_works_from_a_file_url(run: Run, tmp_path: Path) -> None:
    """From file:// (a downloaded artifact): four videos compare in sync, a fifth is refused."""
    done = [n for n, item in enumerate(run.items) if item["s"] == "done"][:4]

    async def check() -> dict[str, Any]:
        url = (run.folder / "index.html").resolve().as_uri()
        async with browse(url, tmp_path / "net.trace") as page:
            posters = await page.evaluate("""Promise.all([...document.querySelectorAll(
              'img.poster')].slice(0, 8).map(i => i.decode().then(() => i.naturalWidth)))""")
            result: dict[str, Any] = await page.evaluate(_compare_js(done))
            result["posters"] = posters
            return result

    seen = asyncio.run(check())
    assert all(width > 0 for width in seen["posters"])
    with_video = [i for i in run.items if i["s"] == "done"]
    assert seen["count"] == 4 and seen["refused"] == len(with_video) - 4
    assert seen["playing"] < 0.3 and seen["resumed"] < 0.3, seen
    assert seen["paused"] < 0.05 and seen["sought"] < 0.05, seen


def test_a_poster_click_plays_its_video_in_place(run: Run, origin: str, tmp_path: Path) -> None:
    """Clicking a poster swaps in a <video> for that file, which plays; no other loads."""

    async def check() -> tuple[dict[str, Any], list[str]]:
        async with browse(f"{origin}/index.html", tmp_path / "net.trace") as page:
            result = await page.evaluate(f"""(async () => {{
              const link = document.querySelector('a.play');
              const href = link.getAttribute('href');
              link.click();
              const video = document.querySelector('.media video');
              await ({WAIT_JS})(() => video.currentTime > 0.5, 15000);
              return {{href, src: video.getAttribute('src'), preload: video.preload,
                       videos: document.querySelectorAll('video').length}};
            }})()""")
            return result, list(page.log.requested_urls)

    seen, urls = asyncio.run(check())
    assert seen["src"] == seen["href"] and seen["videos"] == 1 and seen["preload"] == "none"
    assert [u for u in urls if u.endswith(".mp4")] == [f"{origin}/{seen['href']}"]


def test_the_trace_check_flags_what_would_leave_the_machine() -> None:
    """off_machine flags DNS, TCP and datagrams off loopback; allows loopback and route probes."""
    trace = "\n".join([
        '10 connect(5<TCP:[100]>, {sa_family=AF_INET, sin_port=htons(8000), '
        'sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        '10 connect(6<UNIX:[101]>, {sa_family=AF_UNIX, sun_path="/run/x"}, 110) = 0',
        '11 connect(18<UDPv6:[32530]>, {sa_family=AF_INET6, sin6_port=htons(443), '
        'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:4860:4860::8888", &sin6_addr), '
        'sin6_scope_id=0}, 28 <unfinished ...>',
        "11 <... connect resumed>)            = 0",
        '12 sendto(7<UNIX:[102]>, "x", 1, MSG_NOSIGNAL, NULL, 0) = 1',
        '12 sendmsg(10<UNIX:[291172->291173]>, {msg_name=NULL, msg_namelen=0}, 0) = 8',
        '12 sendto(5<TCP:[127.0.0.1:4000->127.0.0.1:8000]>, "GET", 3, 0, NULL, 0) = 3',
    ])
    assert off_machine(trace) == []
    assert loopback_connects(trace) == 1
    leaks = [
        '13 connect(9<UDP:[1]>, {sa_family=AF_INET, sin_port=htons(53), '
        'sin_addr=inet_addr("10.255.255.53")}, 16) = 0',
        '13 connect(9<TCP:[2]>, {sa_family=AF_INET, sin_port=htons(443), '
        'sin_addr=inet_addr("142.250.1.1")}, 16 <unfinished ...>',
        '14 sendto(9<UDP:[3]>, "q", 1, 0, {sa_family=AF_INET, sin_port=htons(5353), '
        'sin_addr=inet_addr("224.0.0.251")}, 16) = 1',
        '14 sendto(18<UDPv6:[[fd00::2]:1->[2001:4860:4860::8888]:443]>, "x", 1, 0, NULL, 0) = 1',
        '15 connect(9<PACKET:[4]>, {sa_family=AF_PACKET, sll_protocol=htons(ETH_P_ALL)}, 20)',
    ]
    for leak in leaks:
        assert len(off_machine(leak)) == 1, leak
