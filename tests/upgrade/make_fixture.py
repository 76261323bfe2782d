"""Record what a release writes, as a fixture for the upgrade tests.

    python -m tests.upgrade.make_fixture tests/upgrade/fixtures/v<version>

Copies the example specs (dragon, sweep, campaign) and their images into the fixture
folder, runs them with their provider as written (aimlapi) against a `runner sandbox
serve` subprocess on loopback (`--base-url`, a dummy key), keeps the `outputs/` tree it
wrote (minus `index.html` and `.lock`, which every run rewrites) and writes
`expected.json`: each request's id, output and the sha256 of its video, hashed here with
hashlib. Run it once per release, from that release's commit; never regenerate an
existing fixture (it is the evidence of what the old release wrote).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SPECS = ("dragon", "sweep", "campaign")
IMAGES = ("mountain.png", "lighthouse.png", "tea.png")
DUMMY_KEY = "sk-upgrade-fixture-dummy"  # the sandbox takes any bearer key


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    """Start `runner sandbox serve` on a free loopback port; return it and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "sandbox", "serve", "--port", "0",
         "--latency", "0.2", "--jitter", "0.05", "--seed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    if not first.startswith("serving on http://127.0.0.1:"):
        process.kill()
        msg = f"the sandbox did not start: {first!r}"
        raise SystemExit(msg)
    return process, first.removeprefix("serving on ")


def main(target: Path) -> None:
    """Build the fixture in `target` (which must not exist yet)."""
    if target.exists():
        msg = f"{target} exists — a fixture is evidence; make a new one for a new release"
        raise SystemExit(msg)
    (target / "specs" / "images").mkdir(parents=True)
    for name in SPECS:
        shutil.copy2(REPO / "specs" / f"{name}.yaml", target / "specs" / f"{name}.yaml")
    for image in IMAGES:
        shutil.copy2(REPO / "specs" / "images" / image, target / "specs" / "images" / image)
    server, base_url = start_sandbox()
    try:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.update(AIMLAPI_API_KEY=DUMMY_KEY, NO_COLOR="1")
        specs = [f"specs/{name}.yaml" for name in SPECS]
        command = [sys.executable, "-m", "runner", "run", *specs, "--base-url", base_url,
                   "--poll-min", "0.05", "--poll-max", "0.3"]
        done = subprocess.run(command, cwd=target, env=env, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            msg = f"the run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            raise SystemExit(msg)
        plan = subprocess.run(
            [sys.executable, "-m", "runner", "plan", "--json", *specs], cwd=target, env=env,
            capture_output=True, text=True, check=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    for name in SPECS:
        folder = target / "outputs" / name
        (folder / "index.html").unlink(missing_ok=True)
        (folder / ".lock").unlink(missing_ok=True)
    requests = []
    for item in json.loads(plan.stdout)["requests"]:
        video = target / item.get("path", item["output"])  # `output` was the path up to 0.1
        requests.append({
            "id": item["id"], "spec": item["spec"], "job": item["job"],
            "output": item["output"], "size": video.stat().st_size,
            "sha256": sha256_of(video),
        })
    expected = {"release": target.name, "specs": [f"specs/{n}.yaml" for n in SPECS],
                "requests": requests}
    (target / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"{len(requests)} requests recorded in {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
