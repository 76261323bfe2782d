"""Durable writes and bounded reads: whole files or none, and nothing left half-done."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from runner.durable import (
    NotRegular,
    read_regular,
    remove_partials,
    storage_error,
    temp_name,
    write_atomic,
)
from runner.errors import StorageError


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_regular_file_is_read_whole_across_chunks(tmp_path: Path) -> None:
    """A 3 MiB file (several reads) comes back byte for byte, its descriptor closed."""
    data = os.urandom(3 << 20)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    before = _open_fds()
    assert read_regular(path, 10 << 20) == data
    assert _open_fds() == before


@pytest.mark.parametrize(("size", "limit", "read"), [(100, 10, 11), (10, 10, 10), (0, 5, 0)])
def test_reads_stop_one_byte_past_the_limit(tmp_path: Path, size: int, limit: int,
                                            read: int) -> None:
    """At most limit + 1 bytes are read, so the caller can tell a file over its limit."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * size)
    assert read_regular(path, limit) == b"x" * read


def test_a_file_just_past_a_chunked_limit_is_seen_as_too_big(tmp_path: Path) -> None:
    """With a limit of 1 MiB (one full read), a file a few bytes larger still yields
    limit + 1 bytes: the caller refuses it instead of parsing a truncated copy."""
    path = tmp_path / "big.yaml"
    path.write_bytes(b"y" * ((1 << 20) + 5))
    assert len(read_regular(path, 1 << 20)) == (1 << 20) + 1


def test_a_fifo_or_a_folder_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO (a read would block forever) and a folder are NotRegular, fds closed."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    before = _open_fds()
    for path in (fifo, tmp_path):
        with pytest.raises(NotRegular) as info:
            read_regular(path, 10)
        assert info.value.errno == errno.EINVAL
        assert str(path) in str(info.value) and "is not a regular file" in str(info.value)
    assert _open_fds() == before


def test_write_atomic_writes_every_byte_even_in_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the OS takes a few bytes per write, the loop goes on until all are written,
    and the file gets the usual 0644 permissions."""
    real_write = os.write

    def short(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data[:3]))

    monkeypatch.setattr(os, "write", short)
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "m.json", b"0123456789abcdef")
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").read_bytes() == b"0123456789abcdef"
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
    assert list(tmp_path.iterdir()) == [tmp_path / "m.json"]


def test_a_write_that_cannot_start_is_one_storage_error_naming_the_path(tmp_path: Path) -> None:
    """Writing into a folder that does not exist is a StorageError for that path (no
    traceback of a missing temp file)."""
    target = tmp_path / "absent" / "m.json"
    with pytest.raises(StorageError) as info:
        write_atomic(target, b"x")
    assert str(info.value).startswith(f"cannot write {target}: ")
    assert str(info.value).endswith(" — check the output folder and run again; finished "
                                    "records are kept")


@pytest.mark.parametrize(
    ("code", "what", "todo"),
    [
        (errno.ENOSPC, "the disk is full (or a file-size limit was hit)",
         "free some space and run again"),
        (errno.EACCES, "permission denied",
         "make the folder writable or choose another with --output-dir"),
    ],
)
def test_disk_full_and_permission_errors_say_what_to_do(
    tmp_path: Path, code: int, what: str, todo: str
) -> None:
    """The two common write failures are one line: what happened and what to do."""
    error = storage_error(OSError(code, os.strerror(code)), tmp_path / "m.json")
    assert str(error) == f"cannot write {tmp_path / 'm.json'}: {what} — {todo}; finished " \
        "records are kept"


def test_an_error_without_text_is_named_by_its_type(tmp_path: Path) -> None:
    """An OSError without a message still says what it was."""
    error = storage_error(FileExistsError(), tmp_path / "m.json")
    assert ": FileExistsError — check the output folder" in str(error)


def test_what_a_crashed_writer_leaves_is_what_the_cleanup_removes(tmp_path: Path) -> None:
    """A temp name is the cleanup's pattern (and unique); a user's own .part is kept."""
    first, second = temp_name(tmp_path / "v.mp4"), temp_name(tmp_path / "v.mp4")
    assert first != second
    for path in (first, tmp_path / "notes.part"):
        path.write_bytes(b"x")
    assert remove_partials(tmp_path) == [first]
    assert [p.name for p in tmp_path.iterdir()] == ["notes.part"]
