"""A store in a folder as its user meets it: the exact line of each failure (what failed,
where, what to do), the URLs it accepts, and what it lists, on real files."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import resource
import signal
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runner.errors import StorageError, UsageError
from runner.store import LocalStore, StoreError, open_store
from runner.store.base import sidecar_key, video_key
from tests.store.conftest import failure, make_video

SIDECAR = b'{"id": "3f2a"}\n'
SETTLED = " — check that the store folder exists, is mounted and is readable"


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Make writes past `limit` bytes fail with EFBIG, as on a full disk, for this block."""
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


def test_file_urls_with_localhost_open_the_folder(tmp_path: Path) -> None:
    """file://localhost/path names this machine's folder, as file:///path does."""
    store = open_store(f"file://localhost{tmp_path}/share")
    assert isinstance(store, LocalStore) and store.root == tmp_path / "share"


@pytest.mark.parametrize(
    ("url", "line"),
    [
        ("file:relative/store", "store URL 'file:relative/store' is not a local folder — write "
         "file:///absolute/path (three slashes) or a plain path such as ./store"),
        ("file://otherhost/share", "store URL 'file://otherhost/share' is not a local folder — "
         "write file:///absolute/path (three slashes) or a plain path such as ./store"),
        ("file:///tmp/x#top", "store URL 'file:///tmp/x#top' has a query or fragment — a "
         "file:// store is only a path"),
        ("  ", "the store URL is empty — give a folder (/mnt/share, ./store), "
         "file:///absolute/path, s3://bucket or s3://bucket/prefix"),
        ("gs://bucket/x", "unsupported store URL scheme 'gs:' — give a folder (/mnt/share, "
         "./store), file:///absolute/path, s3://bucket or s3://bucket/prefix"),
    ],
)
def test_a_bad_store_url_gets_exactly_its_line(url: str, line: str) -> None:
    """Each refused URL is told with the URL, why, and what to write instead."""
    with pytest.raises(UsageError) as caught:
        open_store(url)
    assert str(caught.value) == line


@pytest.fixture
def unreachable(tmp_path: Path) -> LocalStore:
    """A store whose folder name is too long for the file system: every access fails."""
    store = open_store(str(tmp_path / ("x" * 300)))
    assert isinstance(store, LocalStore)
    return store


def test_each_operation_on_an_unreadable_store_says_what_it_was_doing(
    unreachable: LocalStore, tmp_path: Path
) -> None:
    """Listing, looking up, reading a video or a sidecar, storing: each its own exact line."""
    video, sha = make_video(tmp_path, b"a video")
    head, root = f"store {unreachable.url}: cannot ", unreachable.root
    too_long = "File name too long"
    assert failure(unreachable.inventory) == \
        f"{head}list the videos: {too_long} ({root / 'videos'}){SETTLED}"
    assert failure(lambda: unreachable.has(sha)) == \
        f"{head}look up video {sha[:12]}…: {too_long} ({root / video_key(sha)}){SETTLED}"
    assert failure(lambda: unreachable.get(sha, tmp_path / "back.mp4")) == \
        f"{head}read video {sha[:12]}…: {too_long} ({root / video_key(sha)}){SETTLED}"
    assert failure(lambda: unreachable.get_sidecar(sha)) == \
        f"{head}read the sidecar of {sha[:12]}…: {too_long} ({root / sidecar_key(sha)}){SETTLED}"
    assert failure(lambda: unreachable.put(video, sha, SIDECAR)) == \
        f"{head}store {video}: {too_long} ({root / video_key(sha)}){SETTLED}"
    assert not (tmp_path / "back.mp4").exists()


def test_a_video_that_is_gone_before_it_is_stored_is_named(tmp_path: Path) -> None:
    """The output file missing when it is put: the line names it and says what to do."""
    store = open_store(str(tmp_path / "store"))
    missing = tmp_path / "out" / "clip.mp4"
    assert failure(lambda: store.put(missing, "a" * 64, SIDECAR)) == (
        f"store {store.url}: cannot read {missing}: No such file or directory — check the "
        "output folder and run again"
    )


def test_a_video_that_does_not_hash_to_its_name_is_refused_in_one_exact_line(
    tmp_path: Path,
) -> None:
    """The refusal names the store, the file, its size, the digest head and what to do."""
    store = open_store(str(tmp_path / "store"))
    video, _ = make_video(tmp_path, b"x" * 20_000)
    claimed = hashlib.sha256(b"what the manifest said").hexdigest()
    assert failure(lambda: store.put(video, claimed, SIDECAR)) == (
        f"store {store.url}: refusing to store {video}: its 20000 bytes do not hash to "
        f"{claimed[:12]}… — it changed after it was verified; run again to fetch a good copy"
    )


def test_a_corrupt_stored_copy_is_told_with_the_file_to_delete(tmp_path: Path) -> None:
    """The line names the video, the bytes found and their digest, and the file to delete."""
    store = open_store(str(tmp_path / "store"))
    video, sha = make_video(tmp_path, b"v" * 5_000)
    store.put(video, sha, SIDECAR)
    stored = tmp_path / "store" / video_key(sha)
    stored.write_bytes(b"w" * 4_000)
    actual = hashlib.sha256(b"w" * 4_000).hexdigest()
    assert failure(lambda: store.get(sha, tmp_path / "back.mp4")) == (
        f"store {store.url}: the stored copy of video {sha[:12]}… is corrupt (4000 bytes "
        f"hashing to {actual[:12]}…) — delete {stored} and put the video again from a "
        "verified copy"
    )


def test_a_store_that_cannot_take_the_video_says_where_and_what_to_do(tmp_path: Path) -> None:
    """A folder where the video should land: one line naming the file that could not be
    put in place; nothing is stored and no temp file is left."""
    store = open_store(str(tmp_path / "store"))
    video, sha = make_video(tmp_path, b"a video")
    blocker = tmp_path / "store" / video_key(sha)
    blocker.mkdir(parents=True)
    line = failure(lambda: store.put(video, sha, SIDECAR))
    assert re.fullmatch(
        rf"store {re.escape(store.url)}: cannot write: Is a directory "
        rf"\({re.escape(str(blocker))}\.[0-9a-f]{{8}}\.part\) — check that the store folder is "
        "writable and not full", line), line
    assert store.get_sidecar(sha) is None
    assert sorted(p.name for p in blocker.parent.iterdir()) == [blocker.name]


def test_a_sidecar_that_cannot_be_written_is_one_line_after_the_video(tmp_path: Path) -> None:
    """The video lands; the sidecar's folder blocked by a file is told, not a traceback."""
    store = open_store(str(tmp_path / "store"))
    video, sha = make_video(tmp_path, b"a video")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "sidecars").write_bytes(b"")
    assert failure(lambda: store.put(video, sha, SIDECAR)) == (
        f"store {store.url}: cannot write: File exists ({tmp_path / 'store' / 'sidecars'}) — "
        "check that the store folder is writable and not full"
    )
    assert store.has(sha)


def test_a_full_disk_in_the_store_is_one_line_without_a_file_name(tmp_path: Path) -> None:
    """A write that meets a full disk names no file (the OS gives none); nothing is left."""
    store = open_store(str(tmp_path / "store"))
    video, sha = make_video(tmp_path, b"v" * 50_000)
    with file_size_limit(20_000):
        line = failure(lambda: store.put(video, sha, SIDECAR))
    assert line == (
        f"store {store.url}: cannot write: File too large — check that the store folder is "
        "writable and not full"
    )
    assert not store.has(sha)
    assert list((tmp_path / "store").rglob("*.part")) == []


def test_a_video_fetched_into_a_full_disk_is_an_output_error(tmp_path: Path) -> None:
    """The output folder filling up while a video comes back is the output's error."""
    store = open_store(str(tmp_path / "store"))
    video, sha = make_video(tmp_path, b"v" * 50_000)
    store.put(video, sha, SIDECAR)
    dest = tmp_path / "out" / "back.mp4"
    with file_size_limit(20_000), pytest.raises(StorageError) as caught:
        store.get(sha, dest)
    assert str(caught.value) == (
        f"cannot write {dest}: the disk is full (or a file-size limit was hit) — free some "
        "space and run again; finished records are kept"
    )
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_stored_objects_are_readable_by_everyone(tmp_path: Path) -> None:
    """A shared store's video and sidecar are 0644, whatever the writer's umask allowed."""
    store = open_store(str(tmp_path / "store"))
    video, sha = make_video(tmp_path, b"a video")
    old = os.umask(0o022)
    try:
        store.put(video, sha, SIDECAR)
    finally:
        os.umask(old)
    for name in (video_key(sha), sidecar_key(sha)):
        assert stat.S_IMODE((tmp_path / "store" / name).stat().st_mode) == 0o644


def test_inventory_skips_stray_files_and_linked_folders_but_lists_the_rest(
    tmp_path: Path,
) -> None:
    """A stray file in videos/ does not end the listing; a linked fan-out folder is not the
    store's own and is not listed."""
    root = tmp_path / "store"
    store = open_store(str(root))
    shas = set()
    for n in range(24):
        video, sha = make_video(tmp_path / "src", str(n).encode(), name=f"{n}.mp4")
        store.put(video, sha, SIDECAR)
        shas.add(sha)
    (root / "videos" / "README").write_text("a note someone left")
    fans = {sha[:2] for sha in shas}
    outside = next(sha for n in range(1000)
                   if (sha := hashlib.sha256(b"outside %d" % n).hexdigest())[:2] not in fans)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / f"{outside}.mp4").write_bytes(b"outside")
    (root / "videos" / outside[:2]).symlink_to(elsewhere, target_is_directory=True)
    assert store.inventory() == frozenset(shas)


def test_a_video_the_store_never_held_is_told_with_what_to_do(tmp_path: Path) -> None:
    """Asking for a missing video: its digest, and the two ways out."""
    store = open_store(str(tmp_path / "store"))
    sha = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(StoreError) as caught:
        store.get(sha, tmp_path / "back.mp4")
    assert str(caught.value) == (
        f"store {store.url}: video {sha} is not in the store — generate it again, or point "
        "--store at the store that holds it"
    )
    assert caught.value.store_url == store.url


def test_a_name_that_is_not_a_digest_is_refused_before_any_path_is_made() -> None:
    """Only 64 lowercase hex digits make a layout name; anything else is a ValueError."""
    for bad in ("ABC", "a" * 63, "A" * 64, "../" + "a" * 61):
        with pytest.raises(ValueError) as caught:
            video_key(bad)
        assert str(caught.value) == f"not a sha256 hex digest: {bad!r}"


def test_a_folder_another_writer_makes_meanwhile_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two puts racing to make the same fan-out folder: the second finds it made and goes on."""
    from runner.store import base

    store = open_store(str(tmp_path / "store"))
    video, sha = make_video(tmp_path, b"a video")
    fan = tmp_path / "store" / "videos" / sha[:2]
    real_fsync_dir = base.fsync_dir

    def other_writer_meanwhile(folder: Path) -> None:
        real_fsync_dir(folder)
        if folder == fan.parent.parent:  # just made videos/: the other writer makes the fan
            fan.mkdir(parents=True, exist_ok=True)

    monkeypatch.setattr(base, "fsync_dir", other_writer_meanwhile)
    assert store.put(video, sha, SIDECAR) is True
    assert store.get(sha, tmp_path / "back.mp4") == len(b"a video")


def test_a_temp_file_that_cannot_be_opened_is_one_store_line(tmp_path: Path) -> None:
    """Out of file descriptors when the temp file is opened: one line naming it."""
    store = open_store(str(tmp_path / "store"))
    video, sha = make_video(tmp_path, b"a video")
    (tmp_path / "store" / "videos" / sha[:2]).mkdir(parents=True)
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(map(int, os.listdir("/proc/self/fd"))) + 8,
                                                old[1]))
    taken: list[int] = []
    try:
        with contextlib.suppress(OSError):  # take every descriptor left
            while True:
                taken.append(os.open(os.devnull, os.O_RDONLY))
        line = failure(lambda: store.put(video, sha, SIDECAR))
    finally:
        for fd in taken:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, old)
    fan = tmp_path / "store" / "videos" / sha[:2]
    assert re.fullmatch(
        rf"store {re.escape(store.url)}: cannot write: Too many open files "
        rf"\({re.escape(str(fan / sha))}\.mp4\.[0-9a-f]{{8}}\.part\) — check that the store "
        "folder is writable and not full", line), line
    assert list(fan.iterdir()) == []


def test_a_disk_that_fails_to_sync_is_one_line_and_the_object_is_not_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error making the bytes durable (a failing disk, injected at fsync) is one line;
    the video is not put under its name half-synced."""
    store = open_store(str(tmp_path / "store"))
    video, sha = make_video(tmp_path, b"a video")
    (tmp_path / "store" / "videos" / sha[:2]).mkdir(parents=True)  # no folder left to make

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    assert failure(lambda: store.put(video, sha, SIDECAR)) == (
        f"store {store.url}: cannot write: Input/output error — check that the store folder "
        "is writable and not full"
    )
    monkeypatch.undo()
    assert not store.has(sha)
    assert list((tmp_path / "store").rglob("*.part")) == []


def test_a_read_error_without_a_file_name_is_told_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fails mid-read of a stored video (injected) gives an OSError with no file
    name: the line gives its text and no empty "()"; nothing appears at dest."""
    store = LocalStore(tmp_path / "store")
    video, sha = make_video(tmp_path, b"a video")
    store.put(video, sha, b"{}")

    class Failing(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(Path, "open", lambda self, mode="r": Failing())
    assert failure(lambda: store.get(sha, tmp_path / "back.mp4")) == (
        f"store {store.url}: cannot read video {sha[:12]}…: Input/output error — check that "
        "the store folder exists, is mounted and is readable"
    )
    monkeypatch.undo()
    assert not (tmp_path / "back.mp4").exists()
