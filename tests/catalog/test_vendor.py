"""scripts/vendor_models.py: a docs snapshot in, byte-identical schemas and catalog out.

The fixture snapshot (tests/catalog/fixtures/snapshot/) holds four model schemas in the
docs' layout: Runway gen4_turbo (unified), the legacy multi-model Kling file, Luma ray-2
(keyframes) and PixVerse lip-sync (left out), plus a stand-in docs page. Its expected
output is committed in fixtures/expected/; after changing the script on purpose,
regenerate it with:

    python scripts/vendor_models.py tests/catalog/fixtures/snapshot \
        --commit 0123456789abcdef0123456789abcdef01234567 --out tests/catalog/fixtures/expected
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.catalog.conftest import FIXTURES, ROOT

SCRIPT = ROOT / "scripts" / "vendor_models.py"
SNAPSHOT = FIXTURES / "snapshot"
EXPECTED = FIXTURES / "expected"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def vendor(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True, text=True, timeout=120, check=False,
    )


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def git(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@runner.invalid", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, check=True,
    )
    return done.stdout.strip()


def test_fixture_snapshot_gives_the_committed_output(tmp_path: Path) -> None:
    """From a plain folder, the script writes exactly fixtures/expected/, byte for byte."""
    out = tmp_path / "models"
    done = vendor(SNAPSHOT, "--commit", COMMIT, "--out", out)
    assert done.returncode == 0, done.stderr
    assert "6 models, 1 excluded, 6 body schemas" in done.stdout
    assert tree(out) == tree(EXPECTED)


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    """Running again over its own output rewrites no file (deterministic output)."""
    out = tmp_path / "models"
    assert vendor(SNAPSHOT, "--commit", COMMIT, "--out", out).returncode == 0
    first = tree(out)
    again = vendor(SNAPSHOT, "--commit", COMMIT, "--out", out)
    assert again.returncode == 0 and "0 files changed" in again.stdout
    assert tree(out) == first


def test_stale_schemas_go_and_other_files_stay(tmp_path: Path) -> None:
    """A route-folder schema no model produces is removed; nothing else in out is touched."""
    out = tmp_path / "models"
    (out / "unified").mkdir(parents=True)
    stale = out / "unified" / "gone-model.schema.json"
    stale.write_text("{}\n")
    keep = out / "README.txt"
    keep.write_text("mine\n")
    assert vendor(SNAPSHOT, "--commit", COMMIT, "--out", out).returncode == 0
    assert not stale.exists() and keep.read_text() == "mine\n"


def test_the_legacy_runway_schema_is_copied_unchanged_and_is_the_default_route(
    tmp_path: Path,
) -> None:
    """gen4_turbo's first route is the hand-written legacy schema, copied byte for byte."""
    out = tmp_path / "models"
    assert vendor(SNAPSHOT, "--commit", COMMIT, "--out", out).returncode == 0
    legacy = "runway-gen4_turbo.schema.json"
    assert (out / legacy).read_bytes() == (ROOT / "schemas" / "models" / legacy).read_bytes()
    catalog = json.loads((out / "catalog.json").read_text(encoding="utf-8"))
    gen4 = next(m for m in catalog["models"] if m["name"] == "runway/gen4_turbo")
    assert [r["schema"] for r in gen4["routes"]] == [
        f"models/{legacy}", "models/unified/runway-gen4_turbo.schema.json",
    ]
    assert gen4["title"] == "Gen 4 Turbo (fixture page)"  # from the page linking its schema
    assert not (out / "gen3a_turbo.schema.json").exists()  # not in this snapshot


def test_docs_contradictions_are_noted_and_the_schema_followed(tmp_path: Path) -> None:
    """A text default on an integer becomes an integer; an example the schema refuses is noted."""
    out = tmp_path / "models"
    assert vendor(SNAPSHOT, "--commit", COMMIT, "--out", out).returncode == 0
    catalog = json.loads((out / "catalog.json").read_text(encoding="utf-8"))
    gen4 = next(m for m in catalog["models"] if m["name"] == "runway/gen4_turbo")
    kinds = {(n["kind"], n.get("field")) for n in gen4["notes"]}
    assert kinds == {("string-default", "duration"), ("example", "duration")}
    body = json.loads((out / "unified" / "runway-gen4_turbo.schema.json").read_text())
    assert body["properties"]["duration"]["default"] == 5
    assert body["properties"]["prompt"]["maxUtf16Length"] == 1000
    assert catalog["excluded"][0]["name"] == "pixverse/lip-sync"
    assert "needs an input video" in catalog["excluded"][0]["reason"]


def test_a_bare_git_repository_is_read_at_its_head(tmp_path: Path) -> None:
    """From a bare repository the commit is HEAD's, and the output matches the folder's."""
    work = tmp_path / "work"
    shutil.copytree(SNAPSHOT, work)
    git("init", "-q", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-qm", "snapshot", cwd=work)
    bare = tmp_path / "docs.git"
    git("clone", "-q", "--bare", "--no-local", work, bare, cwd=tmp_path)
    head = git("rev-parse", "HEAD", cwd=bare)
    out = tmp_path / "models"
    done = vendor(bare, "--out", out)
    assert done.returncode == 0, done.stderr
    got = json.loads((out / "catalog.json").read_text(encoding="utf-8"))
    want = json.loads((EXPECTED / "catalog.json").read_text(encoding="utf-8"))
    assert got["docs"]["commit"] == head
    got["docs"]["commit"] = COMMIT
    assert got == want


def test_a_blob_missing_from_the_repository_is_noted(tmp_path: Path) -> None:
    """A file listed in the tree whose content the snapshot lacks becomes a source note."""
    work = tmp_path / "work"
    shutil.copytree(SNAPSHOT, work)
    git("init", "-q", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-qm", "snapshot", cwd=work)
    path = "docs/api-references/video-models/PixVerse/lip-sync.json"
    blob = git("rev-parse", f"HEAD:{path}", cwd=work)
    (work / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # loose: never packed here
    out = tmp_path / "models"
    done = vendor(work / ".git", "--out", out)
    assert done.returncode == 0, done.stderr
    catalog = json.loads((out / "catalog.json").read_text(encoding="utf-8"))
    assert catalog["excluded"] == []
    assert {"source": path, "kind": "unreadable",
            "text": "listed in the snapshot, but its content is absent from it"} in \
        catalog["source_notes"]


def test_a_plain_folder_needs_its_commit(tmp_path: Path) -> None:
    """Without --commit a folder is refused with one line saying what to pass."""
    done = vendor(SNAPSHOT, "--out", tmp_path / "models")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: a plain folder has no commit: pass --commit <the docs commit it holds>"
    ]
    assert not (tmp_path / "models").exists()
