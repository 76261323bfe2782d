"""The object store for verified videos: interchangeable backends behind one protocol.

    open_store(url)   "/mnt/share", "./store", "file:///abs/path"  -> local.LocalStore
                      "s3://bucket", "s3://bucket/prefix"         -> s3.S3Store

Each video is stored under the sha256 of its bytes, with its sidecar beside it (layout
in `runner.store.base`). Every operation is synchronous; the async engine calls them
through `asyncio.to_thread`. Failures raise `StoreError` (exit code 1): one line naming
the store, what failed and what to do, never a credential.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from runner.errors import UsageError
from runner.store.base import Store, StoreError
from runner.store.local import LocalStore, open_local

__all__ = ["LocalStore", "Store", "StoreError", "open_store"]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")  # two letters at least: C:\ is a path
FORMS = "a folder (/mnt/share, ./store), file:///absolute/path, s3://bucket or s3://bucket/prefix"


def open_store(url: str, *, environ: Mapping[str, str] | None = None) -> Store:
    """Open the store `url` names, without any network I/O (the first operation does that).

    `environ` is where the S3 backend reads the AWS variables of the standard chain
    (default: `os.environ`); a local store ignores it.
    """
    if not url.strip():
        msg = f"the store URL is empty — give {FORMS}"
        raise UsageError(msg)
    match = _SCHEME.match(url)
    scheme = match[1].lower() if match else None
    if scheme is None or scheme == "file":
        return open_local(url)
    if scheme == "s3":
        # Imported here: boto3 takes a noticeable time to import, and most runs have no
        # S3 store (or none at all).
        from runner.store.s3 import open_s3

        return open_s3(url, os.environ if environ is None else environ)
    # Only the scheme is shown: the rest of an unknown URL may hold a password.
    msg = f"unsupported store URL scheme {scheme + ':'!r} — give {FORMS}"
    raise UsageError(msg)
