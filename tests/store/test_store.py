"""Both backends, the same behaviour: round trips, idempotent puts, listing, refusals."""

from __future__ import annotations

import hashlib
import random
import threading
import tracemalloc
from pathlib import Path

import pytest

from runner.errors import StorageError
from runner.store import StoreError, open_store
from runner.store.base import sidecar_key, video_key
from runner.store.s3 import PART
from tests.store.conftest import Backend

SIDECAR = b'{"id": "3f2a", "size": 0}\n'


def make_video(folder: Path, size: int, seed: int = 1, name: str = "clip.mp4") -> tuple[Path, str]:
    """Write `size` random bytes (no block repeats) and return the file and its sha256."""
    data = random.Random(seed).randbytes(size)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_round_trip_is_byte_identical(backend: Backend, tmp_path: Path) -> None:
    """A video of two parts and more comes back byte for byte, into folders get creates."""
    video, sha = make_video(tmp_path / "out", 2 * PART + 12345)
    assert backend.store.put(video, sha, SIDECAR) is True
    dest = tmp_path / "elsewhere" / "16x9" / "seed-1.mp4"
    assert backend.store.get(sha, dest) == video.stat().st_size
    assert dest.read_bytes() == video.read_bytes()
    assert backend.store.get_sidecar(sha) == SIDECAR
    assert backend.store.has(sha)
    assert backend.store.inventory() == frozenset({sha})
    assert backend.leftovers() == []
    assert [p.name for p in dest.parent.iterdir()] == ["seed-1.mp4"]  # no temp file left


def test_small_video_round_trip(backend: Backend, tmp_path: Path) -> None:
    """A sandbox-sized video (one request, no parts) comes back byte for byte."""
    video, sha = make_video(tmp_path, 30_000)
    assert backend.store.put(video, sha, SIDECAR) is True
    assert backend.store.get(sha, tmp_path / "back.mp4") == 30_000
    assert (tmp_path / "back.mp4").read_bytes() == video.read_bytes()


def test_second_put_uploads_nothing(backend: Backend, tmp_path: Path) -> None:
    """Putting the same video and sidecar again rewrites neither object."""
    video, sha = make_video(tmp_path, 100_000)
    assert backend.store.put(video, sha, SIDECAR) is True
    before = backend.version_of(video_key(sha)), backend.version_of(sidecar_key(sha))
    assert backend.store.put(video, sha, SIDECAR) is False
    after = backend.version_of(video_key(sha)), backend.version_of(sidecar_key(sha))
    assert after == before


def test_new_sidecar_is_stored_without_the_video_again(backend: Backend, tmp_path: Path) -> None:
    """A changed sidecar replaces the stored one; the video held at its size is left alone."""
    video, sha = make_video(tmp_path, 50_000)
    backend.store.put(video, sha, SIDECAR)
    before = backend.version_of(video_key(sha))
    assert backend.store.put(video, sha, b'{"id": "3f2a", "reproductions": []}') is False
    assert backend.version_of(video_key(sha)) == before
    assert backend.store.get_sidecar(sha) == b'{"id": "3f2a", "reproductions": []}'


def test_stored_copy_of_the_wrong_size_is_replaced(backend: Backend, tmp_path: Path) -> None:
    """A truncated object under the video's name is uploaded again, and then gets back."""
    video, sha = make_video(tmp_path, 40_000)
    backend.write_raw(video_key(sha), video.read_bytes()[:1000])
    assert backend.store.put(video, sha, SIDECAR) is True
    assert backend.store.get(sha, tmp_path / "back.mp4") == 40_000


@pytest.mark.parametrize("size", [20_000, 2 * PART + 1], ids=["one-request", "multipart"])
def test_put_refuses_a_file_that_does_not_hash_to_its_name(
    backend: Backend, tmp_path: Path, size: int
) -> None:
    """A video whose bytes are not the given sha256 is refused and nothing shows in the store."""
    video, _ = make_video(tmp_path, size)
    claimed = hashlib.sha256(b"what the manifest said").hexdigest()
    with pytest.raises(StoreError) as caught:
        backend.store.put(video, claimed, SIDECAR)
    message = str(caught.value)
    assert str(video) in message and "do not hash" in message and "\n" not in message
    assert not backend.store.has(claimed)
    assert backend.store.inventory() == frozenset()
    assert backend.store.get_sidecar(claimed) is None
    assert backend.leftovers() == []


def test_inventory_lists_every_video_across_listing_pages(backend: Backend) -> None:
    """1,500 videos (S3 lists at most 1,000 a page) are all listed; stray names are not."""
    shas = {hashlib.sha256(str(n).encode()).hexdigest() for n in range(1500)}
    names = [video_key(sha) for sha in shas]
    stray = hashlib.sha256(b"stray").hexdigest()
    names += [
        f"{video_key(stray)}.0123abcd.part",  # a crashed writer's temp file
        f"videos/{'ff' if stray[:2] != 'ff' else 'ee'}/{stray}.mp4",  # in the wrong fan-out
        f"videos/{stray[:2]}/{stray}.json",
        sidecar_key(stray),
    ]
    done = 0
    lock = threading.Lock()

    def plant(chunk: list[str]) -> None:
        nonlocal done
        for name in chunk:
            backend.write_raw(name, b"")
        with lock:
            done += len(chunk)

    threads = [threading.Thread(target=plant, args=(names[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert done == len(names)
    assert backend.store.inventory() == frozenset(shas)


def test_get_of_a_missing_video_says_it_is_not_in_the_store(
    backend: Backend, tmp_path: Path
) -> None:
    """Asking for a video the store never held is one line naming the video; no file appears."""
    sha = hashlib.sha256(b"never stored").hexdigest()
    dest = tmp_path / "out" / "clip.mp4"
    with pytest.raises(StoreError) as caught:
        backend.store.get(sha, dest)
    message = str(caught.value)
    assert f"video {sha} is not in the store" in message and "\n" not in message
    assert message.startswith(f"store {backend.store.url}: ")
    assert not dest.exists()
    assert not backend.store.has(sha)
    assert backend.store.get_sidecar(sha) is None


def test_corrupt_stored_copy_is_refused_and_dest_untouched(
    backend: Backend, tmp_path: Path
) -> None:
    """A stored video whose bytes no longer hash to its name is refused; dest keeps its bytes."""
    video, sha = make_video(tmp_path, 60_000)
    backend.store.put(video, sha, SIDECAR)
    damaged = bytearray(video.read_bytes())
    damaged[30_000] ^= 0xFF  # same size: only the hash can tell
    backend.write_raw(video_key(sha), bytes(damaged))
    dest = tmp_path / "out" / "clip.mp4"
    dest.parent.mkdir()
    dest.write_bytes(b"the copy we had")
    with pytest.raises(StoreError) as caught:
        backend.store.get(sha, dest)
    message = str(caught.value)
    assert "corrupt" in message and sha[:12] in message and "\n" not in message
    assert dest.read_bytes() == b"the copy we had"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["clip.mp4"]


def test_concurrent_puts_from_threads_all_land(backend: Backend, tmp_path: Path) -> None:
    """Eight threads putting eight videos at once (as the engine's to_thread calls do) all land."""
    videos = [make_video(tmp_path, 5_000 + n, seed=n, name=f"{n}.mp4") for n in range(8)]
    errors: list[BaseException] = []

    def put(video: Path, sha: str) -> None:
        try:
            backend.store.put(video, sha, SIDECAR)
        except BaseException as exc:  # collected, then re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=put, args=pair) for pair in videos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert backend.store.inventory() == frozenset(sha for _, sha in videos)


def test_put_and_get_memory_does_not_grow_with_the_video(backend: Backend, tmp_path: Path) -> None:
    """A six-part video goes up and back in no more Python memory than a three-part one."""
    peaks = []
    for parts in (3, 6):
        video, sha = make_video(tmp_path, parts * PART, seed=parts, name=f"{parts}.mp4")
        tracemalloc.start()
        try:
            backend.store.put(video, sha, SIDECAR)
            backend.store.get(sha, tmp_path / f"back-{parts}.mp4")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert (tmp_path / f"back-{parts}.mp4").read_bytes() == video.read_bytes()
        peaks.append(peak)
    small, big = peaks
    assert big < small + (1 << 20), f"peaks {small >> 20} and {big >> 20} MiB"
    assert big < 6 * PART // 2  # nowhere near holding the file


def test_a_dest_that_cannot_be_written_is_a_storage_error(
    backend: Backend, tmp_path: Path
) -> None:
    """When the output folder cannot take the video, the error names it, not the store."""
    video, sha = make_video(tmp_path, 10_000)
    backend.store.put(video, sha, SIDECAR)
    blocker = tmp_path / "out"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StorageError) as caught:
        backend.store.get(sha, blocker / "16x9" / "seed-1.mp4")
    assert str(blocker) in str(caught.value) and "\n" not in str(caught.value)
    assert backend.store.has(sha)


def test_a_store_folder_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    """A local store path that is a file fails each operation with one line naming the store."""
    root = tmp_path / "share"
    root.write_text("not a folder")
    store = open_store(str(root))
    video, sha = make_video(tmp_path, 1_000)
    for operation in (
        store.inventory,
        lambda: store.put(video, sha, SIDECAR),
        lambda: store.get(sha, tmp_path / "back.mp4"),
        lambda: store.get_sidecar(sha),
    ):
        with pytest.raises(StoreError) as caught:
            operation()
        message = str(caught.value)
        assert message.startswith(f"store {root.as_uri()}: ") and "\n" not in message
