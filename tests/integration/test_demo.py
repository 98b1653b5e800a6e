"""`make demo` runs end to end, twice in a row, and leaves nothing behind (processes, temp dir, images)."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.cli import GITOPS, gitops_env
from tests.fixtures.procs import running

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def tree_digest(*dirs: Path) -> str:
    h = hashlib.sha256()
    for d in dirs:
        for path in sorted(p for p in d.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def run_demo() -> subprocess.CompletedProcess[str]:
    """`make demo` without re-running the install step (the venv running these tests is the install)."""
    env = gitops_env({"GITOPS": str(GITOPS)})
    return subprocess.run(["make", "--no-print-directory", "-o", "install", "demo"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_make_demo_twice(docker_engine) -> None:
    examples = (ROOT / "examples" / "sample-app", ROOT / "examples" / "deploy-repo")
    before = tree_digest(*examples)
    try:  # the first run then builds the base image offline, as on a fresh machine
        docker_engine.remove_image("gitops-demo/busybox:1.36")
        removed = True
    except Exception:  # absent, or still the parent of images left by an interrupted run
        removed = False
    tags = []
    for run in range(2):
        res = run_demo()
        out = res.stdout
        assert res.returncode == 0, f"{out[-3000:]}\n{res.stderr[-3000:]}"
        work = Path(re.search(r"^demo: work dir (\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
        pid = int(re.search(r"docker-registry on 127\.0\.0\.1:(\d+) \(pid (\d+)\)", out).group(2))  # type: ignore[union-attr]
        host = re.search(r"docker-registry on (127\.0\.0\.1:\d+)", out).group(1)  # type: ignore[union-attr]
        tag = re.search(r"-> tag ([0-9a-f]{7})$", out, re.M).group(1)  # type: ignore[union-attr]
        tags.append(tag)
        if run == 0 and removed:
            assert "demo: building gitops-demo/busybox:1.36 offline from" in out
        if run == 1:
            assert "demo: base image gitops-demo/busybox:1.36 is present" in out
        image = f"{host}/demo/sample-app"

        # the run: summary, the deploy-repo diff of the image lines, the registry's tags, the outputs
        assert re.search(rf"^image +{re.escape(image)}:{tag}$", out, re.M)
        assert re.search(r"^deploy commit +[0-9a-f]{40} \(pushed to main\)$", out, re.M)
        assert f"+          image: {image}:{tag}   # bumped by gitops" in out
        assert f'+    newTag: "{tag}"' in out and f'+  tag: "{tag}"' in out
        assert f'{{"name":"demo/sample-app","tags":["{tag}"]}}' in out
        assert f"TAG={tag}\n" in out and "DEPLOY_COMMIT=" in out
        # the re-run inside the demo: nothing rebuilt, pushed or committed
        assert "deploy commit  already up to date (no commit)" in out
        assert re.search(r"^build +skipped ", out, re.M) and re.search(r"^publish +skipped ", out, re.M)
        assert "deploy repo still has 2 commits" in out

        # and it stopped / removed what it started
        assert f"stopped the registry (pid {pid})" in out and not running(pid)
        assert not work.exists()
        assert not docker_engine.images(name=f"{image}:{tag}")
    assert tags[0] != tags[1]  # a fresh commit each run
    assert tree_digest(*examples) == before  # the examples themselves are never rewritten
