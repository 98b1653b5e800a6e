"""`gitops build-and-bump` end to end: real engine, real `docker-registry`, real bare deploy repo."""

from __future__ import annotations

import functools
import json
import os
import re
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.fixtures.gitremotes import DeployRemote, make_bare_remote
from tests.fixtures.services import Registry, free_port, git, sample_app

pytestmark = pytest.mark.integration

PATH = "team/app"
OLD = "0000000"
GITOPS_TOML = 'build_command = "make build"\n'


def deploy_files(image: str) -> dict[str, str]:
    """A small deploy repo: a Deployment (tag form), a kustomization (newTag) and a digest-pinned CronJob."""
    return {
        "apps/app/deployment.yaml": f"""\
# the app
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
        - name: app
          image: {image}:{OLD}   # bumped by CI

          ports: [{{containerPort: 8080}}]
""",
        "apps/app/kustomization.yaml": f"""\
resources: [deployment.yaml]
images:
  - name: {image}
    newTag: "{OLD}"
""",
        "apps/app/cronjob.yaml": f"""\
apiVersion: batch/v1
kind: CronJob
metadata: {{name: report}}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: report
            image: '{image}:{OLD}@sha256:{"0" * 64}'
""",
        "README.md": f"mentions {image}:{OLD} (never patched)\n",
    }


@pytest.fixture
def remote(tmp_path: Path, registry: Registry) -> DeployRemote:
    return make_bare_remote(tmp_path / "remotes", deploy_files(registry.image(PATH)))


@pytest.fixture
def app(tmp_path: Path, base_image: str) -> Path:
    return sample_app(tmp_path / "app", extra_files={"gitops.toml": GITOPS_TOML})


def run(gitops, app: Path, registry_image: str, remote: DeployRemote, *extra: str, env=None):
    return gitops(["build-and-bump", "--image", registry_image, "--deploy-repo", remote.url, *extra],
                  cwd=app, env=env)


def tags(reg: Registry) -> list[str]:
    try:
        with urllib.request.urlopen(f"{reg.url}/v2/{PATH}/tags/list", timeout=10) as resp:
            return sorted(json.loads(resp.read()).get("tags") or [])
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        return []


def steps(data: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in data["steps"]}


def plain_steps(text: str) -> dict[str, str]:
    """step -> status from the plain summary table."""
    rows = [ln.split() for ln in text.splitlines()]
    names, statuses = ("tag", "test", "build", "publish", "bump"), ("ok", "skipped", "failed", "not")
    return {r[0]: r[1] for r in rows if len(r) > 2 and r[0] in names and r[1] in statuses}


def changed_lines(remote: DeployRemote) -> list[str]:
    diff = remote.git("diff", "--unified=0", f"{remote.branch}~1", remote.branch)
    return [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def test_full_run_then_rerun(gitops, app: Path, registry: Registry, remote: DeployRemote, docker_engine,
                             tmp_path: Path) -> None:
    image = registry.image(PATH)
    sha = git(app, "rev-parse", "HEAD")
    tag = sha[:7]
    github_output = tmp_path / "github-output"
    dotenv = tmp_path / "gitops.env"
    env = {"GITHUB_OUTPUT": str(github_output)}
    res = run(gitops, app, image, remote, "--output", "json", "--dotenv", str(dotenv), env=env)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["ok"] and data["tag"] == tag and data["sha"] == sha and data["image"] == f"{image}:{tag}"
    assert steps(data) == dict.fromkeys(("tag", "test", "build", "publish", "bump"), "ok")
    assert all(s["seconds"] >= 0 for s in data["steps"]) and data["built"] and data["pushed"]
    digest = data["digest"]
    assert digest.startswith("sha256:") and tags(registry) == [tag]
    assert "app build ran" not in res.stdout and "running sample tests" in res.stderr  # logs on stderr

    # the deploy repo: exactly one new commit, changing only the image values
    assert len(remote.log()) == 2 and data["deploy_commit"] == remote.head()
    assert sorted(remote.changed_files()) == ["apps/app/cronjob.yaml", "apps/app/deployment.yaml",
                                              "apps/app/kustomization.yaml"]
    assert changed_lines(remote) == [
        f"-            image: '{image}:{OLD}@sha256:{'0' * 64}'",
        f"+            image: '{image}:{tag}@{digest}'",
        f"-          image: {image}:{OLD}   # bumped by CI",
        f"+          image: {image}:{tag}   # bumped by CI",
        f'-    newTag: "{OLD}"',
        f'+    newTag: "{tag}"',
    ]
    assert remote.message() == (f"Update {image} image to {image}:{tag}@{digest}\n\n"
                                f"Image: {image}:{tag}@{digest}\nSource-Commit: {sha}\n\n")
    assert remote.show("README.md") == f"mentions {image}:{OLD} (never patched)\n".encode()

    # step outputs
    assert github_output.read_text() == (f"tag={tag}\nimage={image}:{tag}\ndigest={digest}\n"
                                         f"deploy-commit={remote.head()}\n")
    assert dotenv.read_text() == (f"TAG={tag}\nIMAGE={image}:{tag}\nDIGEST={digest}\n"
                                  f"DEPLOY_COMMIT={remote.head()}\n")

    # re-run on the same commit: no build, no push, no commit.  The local image is removed first: a
    # build or a push would need it (and a build would bring it back).
    docker_engine.remove_image(f"{image}:{tag}", force=True)
    head = remote.head()
    again = run(gitops, app, image, remote, env=env)
    assert again.returncode == 0, again.stderr
    assert "already published for this commit" in again.stderr and "Pushing" not in again.stderr
    assert "already up to date" in again.stdout and tag in again.stdout and digest in again.stdout
    assert plain_steps(again.stdout) == {"tag": "ok", "test": "skipped", "build": "skipped",
                                         "publish": "skipped", "bump": "ok"}
    assert f"already published for {sha[:12]}" in again.stdout
    assert "running sample tests" not in again.stderr  # the image records that its tests passed
    assert remote.head() == head and len(remote.log()) == 2
    assert not docker_engine.images(name=f"{image}:{tag}")
    assert tags(registry) == [tag]
    assert github_output.read_text().endswith(f"tag={tag}\nimage={image}:{tag}\ndigest={digest}\n"
                                              "deploy-commit=\n")  # appended; no commit this time


def test_rebuild_forces_build_and_publish_checks_it(gitops, app: Path, registry: Registry,
                                                    remote: DeployRemote) -> None:
    image = registry.image(PATH)
    # content no other test builds: two builds of the same steps running at once (xdist workers) leave two
    # cache records with different times, and the rebuild, taking the other one, makes another image
    sample_app(app, version=f"rebuild-{uuid.uuid4().hex}", extra_files={"gitops.toml": GITOPS_TOML})
    first = run(gitops, app, image, remote, "-o", "json")
    assert first.returncode == 0, first.stderr
    again = run(gitops, app, image, remote, "-o", "json", "--rebuild")
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert steps(data)["build"] == "ok" and data["built"] and not data["pushed"]  # same image: no push
    assert data["digest"] == json.loads(first.stdout)["digest"] and data["deploy_up_to_date"]
    assert len(remote.log()) == 2


def test_new_commit_bumps_again(gitops, app: Path, registry: Registry, remote: DeployRemote) -> None:
    image = registry.image(PATH)
    assert run(gitops, app, image, remote).returncode == 0
    sample_app(app, version="2", extra_files={"gitops.toml": GITOPS_TOML})
    tag2 = git(app, "rev-parse", "--short=7", "HEAD")
    res = run(gitops, app, image, remote)
    assert res.returncode == 0, res.stderr
    assert len(remote.log()) == 3 and f"{image}:{tag2}".encode() in remote.show("apps/app/deployment.yaml")
    assert len(tags(registry)) == 2


def test_an_older_commit_never_replaces_a_newer_deploy(gitops, app: Path, registry: Registry,
                                                       remote: DeployRemote) -> None:
    """Two runs finishing out of order: the newer commit's run bumped first; the older commit's run
    publishes its image but does not move the deploy repo back (exit 0, a warning, no commit)."""
    image = registry.image(PATH)
    older = git(app, "rev-parse", "HEAD")
    sample_app(app, version="2", extra_files={"gitops.toml": GITOPS_TOML})
    newer_tag = git(app, "rev-parse", "--short=7", "HEAD")
    assert run(gitops, app, image, remote).returncode == 0
    deployed = remote.show("apps/app/deployment.yaml")
    git(app, "checkout", "-q", older)  # the slower run of the older commit
    res = run(gitops, app, image, remote, "-o", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert steps(data)["bump"] == "skipped" and data["deploy_commit"] is None and data["pushed"]
    assert data["bump"]["superseded"] and f"{image}:{newer_tag}" in data["bump"]["superseded"]
    assert f"warning: not bumped: the deploy repo has {image}:{newer_tag}" in res.stderr
    assert "gitops rollback" in res.stderr
    assert len(remote.log()) == 2 and remote.show("apps/app/deployment.yaml") == deployed
    plain = run(gitops, app, image, remote)  # the summary says so too (published now: no build)
    assert plain.returncode == 0, plain.stderr
    assert "deploy commit  not bumped (a newer commit's image is deployed)" in plain.stdout
    assert plain_steps(plain.stdout)["bump"] == "skipped" and len(remote.log()) == 2
    # a commit that is not an ancestor of the deployed one (another branch) is deployed as usual
    git(app, "checkout", "-q", "-b", "hotfix")
    sample_app(app, version="hotfix", extra_files={"gitops.toml": GITOPS_TOML})
    res = run(gitops, app, image, remote)
    assert res.returncode == 0, res.stderr
    assert len(remote.log()) == 3


def test_dirty_tree_is_refused(gitops, app: Path, registry: Registry, remote: DeployRemote) -> None:
    (app / "app.sh").write_text("#!/bin/sh\necho changed\n")
    res = run(gitops, app, registry.image(PATH), remote)
    assert res.returncode == 4, res.stderr
    assert "uncommitted changes" in res.stderr and "app.sh" in res.stderr
    assert "tag      failed" in res.stderr and "test     not run" in res.stderr
    assert tags(registry) == [] and len(remote.log()) == 1


def test_a_sparse_checkout_leaving_out_files_the_build_would_send_is_refused(gitops, app: Path, registry: Registry,
                                                                            remote: DeployRemote) -> None:
    """A sparse checkout left conf/ out: the image was built without it, published under the commit's tag,
    and a full checkout of the commit then found it "already published".  Refused at the tag step (exit 4),
    build-and-bump and build alike, --allow-dirty too; nothing is built, published or bumped."""
    sample_app(app, extra_files={"gitops.toml": GITOPS_TOML, "conf/settings": "mode=prod\n"})
    git(app, "sparse-checkout", "set", "--no-cone", "/*", "!/conf/")
    assert not (app / "conf").exists()
    image = registry.image(PATH)
    message = (f"error: {app}: the sparse checkout leaves out files the build context would send: conf/settings; "
               "the image would lack them under the commit's tag")
    for res in (run(gitops, app, image, remote), run(gitops, app, image, remote, "--allow-dirty"),
                gitops(["build", "--image", image], cwd=app)):
        assert res.returncode == 4, res.stderr
        assert message in res.stderr.splitlines()
        assert "hint: check out every file (git sparse-checkout disable)" in res.stderr
    assert tags(registry) == [] and len(remote.log()) == 1


def test_a_sparse_checkout_leaving_out_files_outside_the_build_context_is_taken(gitops, app: Path,
                                                                               registry: Registry,
                                                                               remote: DeployRemote) -> None:
    """--context svc: the files a sparse checkout leaves out elsewhere (docs/) are no part of the image, so
    the tag step takes the checkout (it was refused when the check read the whole checkout as the context);
    the run goes on to the test step, which fails here: nothing is built, published or bumped."""
    sample_app(app, extra_files={"svc/Dockerfile": "FROM scratch\nCOPY . /src/\n", "svc/app.sh": "echo svc\n",
                                 "docs/notes": "notes\n"})
    git(app, "sparse-checkout", "set", "--no-cone", "/*", "!/docs/")
    assert not (app / "docs").exists()
    res = run(gitops, app, registry.image(PATH), remote, "--context", "svc", "--test-command", "false")
    assert res.returncode not in (0, 4) and "sparse checkout" not in res.stderr, res.stderr
    assert plain_steps(res.stderr)["tag"] == "ok" and plain_steps(res.stderr)["test"] == "failed", res.stderr
    assert tags(registry) == [] and len(remote.log()) == 1


def test_tests_that_change_the_checkout_stop_the_run_before_the_build(gitops, app: Path, registry: Registry,
                                                                     remote: DeployRemote, docker_engine) -> None:
    """The tree is clean at the tag step; the test command then rewrites a tracked file (a lock file) and
    writes an untracked one (a report): what would be built is not the commit the tag and the revision
    label name.  The build step refuses (exit 4, naming both and the test command); nothing is built,
    published or bumped.  An ignored file the tests write (a build output) is fine."""
    image = registry.image(PATH)
    command = "echo rewritten > app.sh; echo report > junit.xml; echo out > build-output.txt"
    res = run(gitops, app, image, remote, "--test-command", command, "-o", "json")
    assert res.returncode == 4, res.stderr
    data = json.loads(res.stdout)
    assert steps(data) == {"tag": "ok", "test": "ok", "build": "failed", "publish": "not run", "bump": "not run"}
    assert (f"the test command {command!r} changed the working tree after it was tagged {data['tag']}: "
            "app.sh, junit.xml;") in data["error"]  # not build-output.txt: ignored, allowed as at the tag step
    assert not docker_engine.images(name=image) and tags(registry) == [] and len(remote.log()) == 1

    # tests that write only ignored files: built and published as the commit
    git(app, "checkout", "app.sh")
    (app / "junit.xml").unlink()
    ok = run(gitops, app, image, remote, "--test-command", "echo out > build-output.txt", "-o", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["built"] and tags(registry) == [git(app, "rev-parse", "--short", "HEAD")]


def test_tests_that_change_a_dirty_state_stop_the_run_before_the_build(gitops, app: Path, registry: Registry,
                                                                       remote: DeployRemote, docker_engine) -> None:
    """--allow-dirty: the tag's -dirty-<hash> names the state hashed at the tag step; tests that change it
    (here a file that was already dirty) would put another state under that tag: refused (exit 4)."""
    image = registry.image(PATH)
    (app / "app.sh").write_text('#!/bin/sh\necho "local change"\n')
    res = run(gitops, app, image, remote, "--allow-dirty", "--test-command", "echo more >> app.sh", "-o", "json")
    assert res.returncode == 4, res.stderr
    data = json.loads(res.stdout)
    assert "-dirty-" in data["tag"] and data["failed_step"] == "build"
    assert (f"the test command 'echo more >> app.sh' changed the uncommitted state tagged {data['tag']} "
            "(now app.sh)") in data["error"]
    assert not docker_engine.images(name=image) and tags(registry) == [] and len(remote.log()) == 1


def test_failing_tests_stop_everything(gitops, tmp_path: Path, base_image: str, registry: Registry,
                                       remote: DeployRemote, docker_engine) -> None:
    app = sample_app(tmp_path / "failing", test_status=1, extra_files={"gitops.toml": GITOPS_TOML})
    image = registry.image(PATH)
    res = run(gitops, app, image, remote, "-o", "json")
    assert res.returncode == 1, res.stderr  # failing tests stop the run with exit 1, whatever their own status
    data = json.loads(res.stdout)
    assert not data["ok"] and data["failed_step"] == "test" and "tests failed" in data["error"]
    assert data["test_status"] == 2  # the test command's own: `make test`'s for a failed recipe
    assert steps(data) == {"tag": "ok", "test": "failed", "build": "not run", "publish": "not run",
                           "bump": "not run"}
    assert "tests failed" in res.stderr
    assert not (app / "build").exists()  # not even the app's build command ran
    assert not docker_engine.images(name=image) and tags(registry) == [] and len(remote.log()) == 1


def test_registry_down_nothing_bumped(gitops, app: Path, tmp_path: Path, docker_engine) -> None:
    image = f"127.0.0.1:{free_port()}/{PATH}"  # nothing listens there
    remote = make_bare_remote(tmp_path / "down", deploy_files(image))
    res = run(gitops, app, image, remote)
    assert res.returncode == 8, res.stderr
    assert "registry unreachable" in res.stderr and image.split("/")[0] in res.stderr
    assert "Traceback" not in res.stderr and "bump     not run" in res.stderr
    assert len(remote.log()) == 1


def test_registry_down_at_publish_nothing_bumped(gitops, app: Path, registry: Registry, remote: DeployRemote,
                                                 docker_engine) -> None:
    """The registry answers at the tag step, then goes away (the test command stops it, by PID) before
    the push: the push fails, and still nothing is bumped."""
    res = run(gitops, app, registry.image(PATH), remote, "--test-command", f"kill {registry.pid} && make test",
              "-o", "json")
    assert res.returncode == 8, res.stderr
    data = json.loads(res.stdout)
    assert data["failed_step"] == "publish"
    assert steps(data)["build"] == "ok" and steps(data)["bump"] == "not run"
    assert len(remote.log()) == 1


RACE_HOOK = """#!/bin/sh
# Another pipeline lands a commit on main while our first push is being received (once).
set -e
[ -e "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
export GIT_AUTHOR_NAME=other GIT_AUTHOR_EMAIL=other@example.com GIT_COMMITTER_NAME=other \\
       GIT_COMMITTER_EMAIL=other@example.com GIT_INDEX_FILE="$GIT_DIR/race-index"
parent=$(git rev-parse refs/heads/main)
git read-tree "$parent"
blob=$(printf 'replicas: 3\\n' | git hash-object -w --stdin)
git update-index --add --cacheinfo "100644,$blob,apps/other/values.yaml"
commit=$(git commit-tree "$(git write-tree)" -p "$parent" -m "competing pipeline")
git update-ref refs/heads/main "$commit" "$parent"
rm -f "$GIT_INDEX_FILE"
"""


def test_push_rejected_by_a_concurrent_commit_is_reapplied(gitops, app: Path, registry: Registry,
                                                           remote: DeployRemote) -> None:
    hook = remote.path / "hooks" / "pre-receive"
    hook.write_text(RACE_HOOK)
    hook.chmod(0o755)
    image = registry.image(PATH)
    res = run(gitops, app, image, remote, "-o", "json")
    assert res.returncode == 0, res.stderr
    assert "push rejected" in res.stderr and (remote.path / "raced").exists()
    data = json.loads(res.stdout)
    assert data["bump"]["attempts"] == 2 and data["deploy_commit"] == remote.head()
    tag = data["tag"]
    subject = f"Update {image} image to {image}:{tag}@{data['digest']}"
    assert remote.log("%s") == [subject, "competing pipeline", "Initial manifests"]
    assert remote.show("apps/other/values.yaml") == b"replicas: 3\n"  # the other pipeline's commit is kept
    assert len(changed_lines(remote)) == 6


def test_github_pull_request_merge_checkout_is_refused(gitops, app: Path, registry: Registry,
                                                       remote: DeployRemote, tmp_path: Path) -> None:
    head = git(app, "rev-parse", "HEAD")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"sha": "f" * 40}}}))
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": head,
           "GITHUB_EVENT_PATH": str(event)}
    res = run(gitops, app, registry.image(PATH), remote, env=env)
    assert res.returncode == 2, res.stderr
    assert "merge commit" in res.stderr and "f" * 40 in res.stderr and "--sha" in res.stderr
    assert tags(registry) == [] and len(remote.log()) == 1
    # the PR head checked out: the tag is that commit, and the trailer names it with the run URL
    event.write_text(json.dumps({"pull_request": {"head": {"sha": head}}}))
    env.update(GITHUB_SHA="e" * 40, GITHUB_REPOSITORY="org/app", GITHUB_RUN_ID="5", GITHUB_HEAD_REF="feature")
    res = run(gitops, app, registry.image(PATH), remote, env=env)
    assert res.returncode == 0, res.stderr
    assert (f"Source-Commit: {head}\nSource-Branch: feature\nCI-Run: https://github.com/org/app/actions/runs/5"
            in remote.message())
    assert tags(registry) == [head[:7]]


def test_tag_of_another_revision_is_refused_before_building(gitops, app: Path, registry: Registry,
                                                            remote: DeployRemote, tmp_path: Path) -> None:
    image = registry.image(PATH)
    assert run(gitops, app, image, remote, "--tag", "release-1").returncode == 0
    sample_app(app, version="2", extra_files={"gitops.toml": GITOPS_TOML})
    res = run(gitops, app, image, remote, "--tag", "release-1")
    assert res.returncode == 6, res.stderr
    assert "already has this tag for revision" in res.stderr and "tag      failed" in res.stderr
    assert "running sample tests" not in res.stderr and "test     not run" in res.stderr  # before any work
    assert len(remote.log()) == 2


def _put_index(reg: Registry, tag: str, digests: list[str]) -> str:
    """A multi-platform OCI index under `tag` of PATH, listing the manifests `digests` (linux/amd64 each)."""
    entries = []
    for digest in digests:
        with urllib.request.urlopen(urllib.request.Request(
                f"{reg.url}/v2/{PATH}/manifests/{digest}",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}), timeout=10) as resp:
            size = len(resp.read())
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
                        "platform": {"architecture": "amd64", "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}).encode()
    req = urllib.request.Request(f"{reg.url}/v2/{PATH}/manifests/{tag}", method="PUT", data=index,
                                 headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
    import hashlib

    return "sha256:" + hashlib.sha256(index).hexdigest()


def test_a_multi_platform_index_under_the_tag_is_refused_before_any_work(gitops, app: Path, registry: Registry,
                                                                         remote: DeployRemote) -> None:
    """An index (pushed by another tool) has no config: the run went on to the tests and the build, and
    publish refused to replace the index only then."""
    from tests.integration.test_bump_digest import push_minimal_image

    image = registry.image(PATH)
    other = "f" * 40
    plain = push_minimal_image(registry.url, PATH, "amd64", labels={"org.opencontainers.image.revision": other})
    index = _put_index(registry, "release-1", [plain])
    res = run(gitops, app, image, remote, "--tag", "release-1")
    assert res.returncode == 6, res.stderr
    assert (f"refusing to build {image}:release-1: the registry already has this tag as a multi-platform index "
            f"({index}) for revision {other}, not for ") in res.stderr
    assert "running sample tests" not in res.stderr and "test     not run" in res.stderr  # before any work
    unlabelled = push_minimal_image(registry.url, PATH, "amd64-2", labels={})
    _put_index(registry, "release-2", [unlabelled])
    res = run(gitops, app, image, remote, "--tag", "release-2")
    assert res.returncode == 6, res.stderr
    assert "multi-platform index" in res.stderr and "whose revision its images do not record" in res.stderr
    assert "running sample tests" not in res.stderr and "test     not run" in res.stderr
    assert len(remote.log()) == 1


def test_invalid_input_exits_2_before_any_work(gitops, app: Path, registry: Registry,
                                               remote: DeployRemote) -> None:
    res = run(gitops, app, "127.0.0.1:5000/Team/App", remote)
    assert res.returncode == 2 and "Team/App" in res.stderr
    res = run(gitops, app, registry.image(PATH), remote, "--author", "nobody")
    assert res.returncode == 2 and "--author" in res.stderr
    res = run(gitops, app, registry.image(PATH), remote, "--tag", "latest")  # refused before the tests run
    assert res.returncode == 6 and "mutable tag" in res.stderr and "running sample tests" not in res.stderr
    res = gitops(["build-and-bump", "--image", registry.image(PATH)], cwd=app)
    assert res.returncode == 2 and "--deploy-repo is required" in res.stderr
    assert tags(registry) == [] and len(remote.log()) == 1


def config_labels(reg: Registry, tag: str) -> dict[str, str]:
    """The labels of the registry's image config for PATH:tag."""
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    req = urllib.request.Request(f"{reg.url}/v2/{PATH}/manifests/{tag}", headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as resp:
        config = json.loads(resp.read())["config"]["digest"]
    with urllib.request.urlopen(f"{reg.url}/v2/{PATH}/blobs/{config}", timeout=10) as resp:
        return json.loads(resp.read())["config"]["Labels"]


def counting_tests(tmp_path: Path) -> tuple[str, Path]:
    """A test command that appends a line to a file outside the app repo (one line per run)."""
    ran = tmp_path / "tests-ran.txt"
    return f"sh test.sh && echo ran >> {ran}", ran


def runs(ran: Path) -> int:
    return len(ran.read_text().splitlines()) if ran.exists() else 0


def test_rerun_skips_tests_recorded_in_the_image_rebuild_runs_them(gitops, app: Path, registry: Registry,
                                                                   remote: DeployRemote, tmp_path: Path,
                                                                   docker_engine) -> None:
    image = registry.image(PATH)
    command, ran = counting_tests(tmp_path)
    first = run(gitops, app, image, remote, "--test-command", command, "-o", "json")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["tested"] and data["built"] and data["pushed"] and runs(ran) == 1
    assert config_labels(registry, data["tag"])["dev.gitops-cli.tested-command"] == command

    # re-run on the same commit: tests, build and push are skipped; no engine needed for any of it
    docker_engine.remove_image(f"{image}:{data['tag']}", force=True)
    again = run(gitops, app, image, remote, "--test-command", command, "-o", "json",
                env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert again.returncode == 0, again.stderr
    redo = json.loads(again.stdout)
    assert runs(ran) == 1 and not redo["tested"] and not redo["built"] and not redo["pushed"]
    assert steps(redo) == {"tag": "ok", "test": "skipped", "build": "skipped", "publish": "skipped",
                           "bump": "ok"}
    details = {s["name"]: s["detail"] for s in redo["steps"]}
    sha = data["sha"]
    assert details["test"].startswith(f"already published for {sha[:12]}") and command in details["test"]
    assert details["build"] == f"already published for {sha[:12]}"
    assert details["publish"] == f"already published for {sha[:12]} as {data['digest']}"
    assert redo["digest"] == data["digest"] and redo["deploy_up_to_date"] and len(remote.log()) == 2

    # another test command for the same commit: its tests run (the image records the other command)
    other = run(gitops, app, image, remote, "--test-command", command + " && true", "-o", "json")
    assert other.returncode == 0, other.stderr
    assert runs(ran) == 2 and steps(json.loads(other.stdout))["build"] == "skipped"

    # --rebuild forces everything: tests run, the image is rebuilt, publish finds it already there
    forced = run(gitops, app, image, remote, "--test-command", command, "-o", "json", "--rebuild")
    assert forced.returncode == 0, forced.stderr
    data = json.loads(forced.stdout)
    assert runs(ran) == 3 and data["tested"] and data["built"] and not data["pushed"]
    assert data["digest"] == redo["digest"] and len(remote.log()) == 2

    # --rebuild with another test command: the rebuilt image would record it, and be another image under
    # the tag; refused before any work (it was refused by publish, after the tests and the build)
    refused = run(gitops, app, image, remote, "--test-command", command + " && true", "--rebuild")
    assert refused.returncode == 6, refused.stderr
    assert f"records the test command {command!r}" in refused.stderr and runs(ran) == 3
    assert plain_steps(refused.stderr) == {"tag": "failed", "test": "not", "build": "not", "publish": "not",
                                           "bump": "not"}


def test_image_published_without_the_tested_label_gets_its_tests_run(gitops, app: Path, registry: Registry,
                                                                     remote: DeployRemote,
                                                                     tmp_path: Path) -> None:
    image = registry.image(PATH)
    built = gitops(["build", "--image", image], cwd=app)
    assert built.returncode == 0, built.stderr
    ref = built.stdout.splitlines()[0]
    published = gitops(["publish", "--image", ref], cwd=app)
    assert published.returncode == 0, published.stderr
    assert config_labels(registry, ref.rsplit(":", 1)[1])["dev.gitops-cli.tested-command"] == ""  # not recorded

    command, ran = counting_tests(tmp_path)
    res = run(gitops, app, image, remote, "--test-command", command, "-o", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert runs(ran) == 1 and data["tested"] and not data["built"] and not data["pushed"]
    assert steps(data) == {"tag": "ok", "test": "ok", "build": "skipped", "publish": "skipped", "bump": "ok"}
    assert f"{image}:{data['tag']}@{data['digest']}" in remote.message()


def test_engine_down_fails_the_build_step_after_the_tests(gitops, app: Path, registry: Registry,
                                                          remote: DeployRemote, tmp_path: Path) -> None:
    """The engine connection is opened while the tests run; its failure is the build step's."""
    sock = tmp_path / "no-engine.sock"
    res = run(gitops, app, registry.image(PATH), remote, "-o", "json", env={"DOCKER_HOST": f"unix://{sock}"})
    assert res.returncode == 7, res.stderr
    data = json.loads(res.stdout)
    assert steps(data) == {"tag": "ok", "test": "ok", "build": "failed", "publish": "not run",
                           "bump": "not run"}
    assert f"container engine unreachable at unix://{sock}" in data["error"] and "Traceback" not in res.stderr
    assert tags(registry) == [] and len(remote.log()) == 1


# --- the deploy repo is cloned in the background while tests, build and push run -------------------------


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("gitops-bump-"))


def test_progress_lines_of_the_background_clone_come_at_the_bump_step(gitops, app: Path, registry: Registry,
                                                                      remote: DeployRemote,
                                                                      tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    res = run(gitops, app, registry.image(PATH), remote, env={"TMPDIR": str(scratch)})
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    cloning = next(i for i, ln in enumerate(lines) if ln.startswith("==> Cloning"))
    assert lines[cloning] == f"==> Cloning {remote.url} (its default branch)"
    assert lines[cloning + 1].startswith("==> Pushing ")  # the deploy repo's push, right after
    tests_ran = next(i for i, ln in enumerate(lines) if "running sample tests" in ln)
    assert tests_ran < cloning and all("Cloning" not in ln for ln in lines[:cloning])
    assert "warning" not in res.stderr and leftovers(scratch) == []
    assert len(remote.log()) == 2


def test_unreachable_deploy_repo_fails_the_bump_step_after_publishing(gitops, app: Path, registry: Registry,
                                                                      tmp_path: Path) -> None:
    """The order of effects is kept: the image is published, then the bump step fails (exit 10) with
    the error `gitops bump` gives; a warning said so as soon as the clone had failed."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    missing = f"http://127.0.0.1:{free_port()}/deploy.git"  # nothing listens there (a missing file:// repo is exit 2)
    image = registry.image(PATH)
    res = gitops(["build-and-bump", "--image", image, "--deploy-repo", missing, "-o", "json"], cwd=app,
                 env={"TMPDIR": str(scratch)})
    assert res.returncode == 10, res.stderr
    data = json.loads(res.stdout)
    assert steps(data) == {"tag": "ok", "test": "ok", "build": "ok", "publish": "ok", "bump": "failed"}
    assert data["error"].startswith(f"cloning {missing} failed (exit 128)") and data["pushed"]
    assert tags(registry) == [data["tag"]]
    warning = res.stderr.index("warning: the deploy repo cannot be cloned: cloning ")
    assert warning < res.stderr.index("error: cloning ") and "Traceback" not in res.stderr
    assert leftovers(scratch) == []
    direct = gitops(["bump", "--image", f"{image}:{data['tag']}", "--deploy-repo", missing], cwd=app)
    # the same failure as `gitops bump` (curl's message says how long connecting took: `after 2 ms`)
    timeless = functools.partial(re.sub, r"after \d+ ms", "after N ms")
    assert direct.returncode == 10 and timeless(data["error"]) in timeless(direct.stderr)


def test_invalid_deploy_repo_is_refused_before_any_work(gitops, app: Path, registry: Registry,
                                                        remote: DeployRemote, tmp_path: Path) -> None:
    image = registry.image(PATH)
    res = gitops(["build-and-bump", "--image", image, "--deploy-repo", str(tmp_path / "nowhere")], cwd=app)
    assert res.returncode == 2 and "not a URL and no such directory" in res.stderr
    res = run(gitops, app, image, remote, "--no-commit")
    assert res.returncode == 2 and f"--deploy-repo {remote.url!r}: --no-commit needs a local checkout" in res.stderr
    given = os.path.relpath(remote.path, app)  # a bare repository's path is named as given, not as its URL
    res = gitops(["build-and-bump", "--image", image, "--deploy-repo", given, "--no-commit"], cwd=app)
    assert res.returncode == 2
    assert f"--deploy-repo {given!r}: --no-commit needs a local checkout (a path), not a bare repository" in res.stderr
    assert "running sample tests" not in res.stderr and tags(registry) == [] and len(remote.log()) == 1


def test_failing_tests_cancel_a_hanging_clone_and_clean_up(gitops, tmp_path: Path, base_image: str,
                                                           registry: Registry) -> None:
    """The deploy repo's server accepts connections and never answers: when the tests fail, the run
    ends at once (the clone is cancelled, git terminated), its temp dir removed."""
    import socket
    import subprocess

    app = sample_app(tmp_path / "failing", test_status=1, extra_files={"gitops.toml": GITOPS_TOML})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/deploy.git"
        res = gitops(["build-and-bump", "--image", registry.image(PATH), "--deploy-repo", url, "-o", "json"],
                     cwd=app, env={"TMPDIR": str(scratch)}, timeout=60)  # a clone left hanging: TimeoutExpired
        git_left = subprocess.run(["pgrep", "-f", url], capture_output=True, text=True).stdout.split()
    data = json.loads(res.stdout)
    assert res.returncode == 1 and data["failed_step"] == "test" and steps(data)["bump"] == "not run"
    assert git_left == [] and leftovers(scratch) == []
    assert "Cloning" not in res.stderr and tags(registry) == []


def test_allow_dirty_builds_with_an_empty_revision_label_and_reruns_by_the_dirty_tag(
        gitops, app: Path, registry: Registry, remote: DeployRemote) -> None:
    """As `gitops build --allow-dirty`: the image is no commit's content, so its revision label is empty
    (and a warning says so); the `-dirty-<hash>` tag names the state, so a re-run of the same state
    skips build and push, and another state gets another tag."""
    image = registry.image(PATH)
    (app / "app.sh").write_text('#!/bin/sh\necho "local change"\n')
    first = run(gitops, app, image, remote, "--allow-dirty", "-o", "json")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert "-dirty-" in data["tag"] and data["built"] and data["pushed"]
    assert "the working tree is dirty: the image's org.opencontainers.image.revision label is empty" in first.stderr
    labels = config_labels(registry, data["tag"])
    assert labels["org.opencontainers.image.revision"] == ""
    assert labels["org.opencontainers.image.version"] == data["tag"]

    again = run(gitops, app, image, remote, "--allow-dirty", "-o", "json")
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert rerun["tag"] == data["tag"] and not rerun["built"] and rerun["deploy_up_to_date"]

    (app / "app.sh").write_text('#!/bin/sh\necho "another change"\n')
    other = run(gitops, app, image, remote, "--allow-dirty", "-o", "json")
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout)["tag"] != data["tag"] and json.loads(other.stdout)["built"]


def test_no_test_command_is_exit_2_before_any_work_naming_the_verbs_flag(
        gitops, tmp_path: Path, base_image: str, registry: Registry, remote: DeployRemote) -> None:
    app = sample_app(tmp_path / "notest", extra_files={"Makefile": "build:\n\ttrue\n"})
    res = run(gitops, app, registry.image(PATH), remote)
    assert res.returncode == 2, res.stderr
    assert f"error: {app}: no test command" in res.stderr  # the app directory, not "."
    assert "--test-command" in res.stderr and "--command)" not in res.stderr  # build-and-bump's own flag
    assert "==>" not in res.stderr and tags(registry) == [] and len(remote.log()) == 1  # nothing ran


def test_a_test_target_make_finds_in_an_included_makefile_runs_the_tests(
        gitops, tmp_path: Path, base_image: str, registry: Registry, remote: DeployRemote) -> None:
    """The Makefile's text has no `test:` line: the run was refused (exit 2) before any work."""
    app = sample_app(tmp_path / "included", test_status=1,
                     extra_files={"Makefile": "include tests.mk\n", "tests.mk": "test:\n\tsh test.sh\n"})
    res = run(gitops, app, registry.image(PATH), remote, "-o", "json")
    assert res.returncode == 1, res.stderr
    data = json.loads(res.stdout)
    assert data["failed_step"] == "test" and data["test_status"] == 2 and "running sample tests" in res.stderr
    assert tags(registry) == [] and len(remote.log()) == 1


def test_without_make_the_default_test_command_is_exit_14_before_any_work(
        gitops, app: Path, tmp_path: Path, registry: Registry, remote: DeployRemote) -> None:
    import shutil

    bin_dir = tmp_path / "bin"  # git, and no make
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    res = run(gitops, app, registry.image(PATH), remote, env={"PATH": str(bin_dir)})
    assert res.returncode == 14, res.stderr
    assert f"error: {app}/Makefile: make is not on PATH" in res.stderr and "--test-command" in res.stderr
    assert "==>" not in res.stderr and tags(registry) == [] and len(remote.log()) == 1


def test_a_path_outside_the_deploy_repo_is_exit_2_before_any_work(
        gitops, app: Path, registry: Registry, remote: DeployRemote) -> None:
    """It was found in the bump step, after the image was published."""
    res = run(gitops, app, registry.image(PATH), remote, "--path", "../x")
    assert res.returncode == 2, res.stderr
    assert "--path '../x': outside the repository" in res.stderr
    assert "==>" not in res.stderr and tags(registry) == [] and len(remote.log()) == 1


def test_a_path_the_deploy_repo_does_not_have_is_exit_2_before_anything_is_pushed(
        gitops, app: Path, registry: Registry, remote: DeployRemote) -> None:
    """It was found in the bump step, after the image was built and pushed (a usage error after the side
    effects): the background clone checks --path, and the publish step waits for it."""
    res = run(gitops, app, registry.image(PATH), remote, "--path", "apps/nope", "--path", "apps/app", "-o", "json")
    assert res.returncode == 2, res.stderr
    data = json.loads(res.stdout)
    assert data["error"] == "--path 'apps/nope': does not exist in the repository"
    assert steps(data)["publish"] == "not run" and steps(data)["bump"] == "failed" and not data["pushed"]
    assert tags(registry) == [] and len(remote.log()) == 1
    assert "warning: the deploy repo cannot be cloned" not in res.stderr
    # a local checkout: before any work; a path origin has (as last fetched) is fine, the bump pulls it
    checkout = remote.clone(app.parent / "deploy-checkout")
    remote.commit_change("apps/new/app.yaml", f"image: {registry.image(PATH)}:{OLD}\n", "new app")
    git(checkout, "fetch", "--quiet", "origin")
    local = ["build-and-bump", "--image", registry.image(PATH), "--deploy-repo", str(checkout)]
    res = gitops([*local, "--path", "apps/nope"], cwd=app)
    assert res.returncode == 2 and "--path 'apps/nope': does not exist in the repository" in res.stderr
    assert "running sample tests" not in res.stderr and tags(registry) == [] and len(remote.log()) == 2
    res = gitops([*local, "--path", "apps/new"], cwd=app)
    assert res.returncode == 0, res.stderr
    assert len(tags(registry)) == 1 and remote.changed_files() == ["apps/new/app.yaml"]


def test_an_image_built_under_sha_from_another_tree_is_never_taken_for_that_commit(
        gitops, app: Path, registry: Registry, remote: DeployRemote) -> None:
    """`--sha A` on a checkout of another tree (a PR's merge checkout) publishes :A with that tree: a
    later run on A itself must not take it as "already published for A" (it was: the build inputs did not
    hold the tree), and a re-run of the same --sha build still finds its own image."""
    image = registry.image(PATH)
    first = git(app, "rev-parse", "HEAD")
    sample_app(app, version="2", extra_files={"gitops.toml": GITOPS_TOML})
    assert git(app, "rev-parse", "HEAD") != first
    res = run(gitops, app, image, remote, "--sha", first)
    assert res.returncode == 0, res.stderr
    assert tags(registry) == [first[:7]]
    res = run(gitops, app, image, remote, "--sha", first, "-o", "json")  # the same build again: found
    assert res.returncode == 0, res.stderr
    assert steps(json.loads(res.stdout))["build"] == "skipped"
    git(app, "checkout", "--quiet", first)
    res = run(gitops, app, image, remote)
    assert res.returncode == 6, res.stderr
    assert "differs: source-tree" in res.stderr and "running sample tests" not in res.stderr


def test_sha_on_a_checkout_of_the_same_tree_records_no_source_tree(gitops, app: Path, registry: Registry,
                                                                   remote: DeployRemote) -> None:
    """A PR up to date with its base: the merge checkout's tree is the PR head's.  The image is that
    commit's own, and a run on the commit finds it; another tree is recorded by its tree id."""
    image = registry.image(PATH)
    first = git(app, "rev-parse", "HEAD")
    git(app, "commit", "--quiet", "--allow-empty", "-m", "merge-like: same tree")
    res = run(gitops, app, image, remote, "--sha", first)
    assert res.returncode == 0, res.stderr
    assert "source-tree" not in config_labels(registry, first[:7])["dev.gitops-cli.build-inputs"]
    git(app, "checkout", "--quiet", first)
    res = run(gitops, app, image, remote, "-o", "json")
    assert res.returncode == 0, res.stderr
    assert steps(json.loads(res.stdout))["build"] == "skipped"
    # another tree under --sha: recorded as that tree's id (not the commit's)
    git(app, "checkout", "--quiet", "-")
    sample_app(app, version="3", extra_files={"gitops.toml": GITOPS_TOML})
    older = git(app, "rev-parse", "HEAD~1")
    res = run(gitops, app, image, remote, "--sha", older)
    assert res.returncode == 0, res.stderr
    tree = git(app, "rev-parse", "HEAD^{tree}")
    assert f"source-tree={tree[:16]}" in config_labels(registry, older[:7])["dev.gitops-cli.build-inputs"]


def test_two_runs_of_one_commit_at_once_only_the_tags_image_is_bumped(app: Path, registry: Registry,
                                                                      tmp_path: Path) -> None:
    """Two runners on one commit (not serialized), each building its own image of it (two checkouts made
    at other times, the legacy builder without cache: other file times in the layers, as on two
    machines): both found the tag free, both pushed, and both bumped, each with its own digest, though
    the tag names only one.  Now the run whose image the tag does not name after both pushes fails at
    publish (exit 6): no bump, no digest in its outputs; its re-run finds the tag published for this
    commit and bumps the tag's digest.  The proxy lands both manifests before answering either (one
    registry under two names, 127.0.0.1 and localhost, so that each run has an image of its own in the
    one engine)."""
    import os
    import subprocess

    from tests.fixtures.cli import GITOPS, gitops_env
    from tests.fixtures.registry_proxy import manifest_barrier

    other = tmp_path / "app2"  # the second machine's checkout of the same commit
    subprocess.run(["git", "clone", "-q", str(app), str(other)], check=True)
    for name in ("app.sh", "test.sh"):  # checked out at another time (the legacy builder's COPY keeps it)
        os.utime(other / name, (1_700_000_000, 1_700_000_000))
    sha = git(app, "rev-parse", "HEAD")
    zeros = f"sha256:{'0' * 64}"
    with manifest_barrier(registry.host) as proxy:
        port = proxy.host.rsplit(":", 1)[1]
        images = [f"{proxy.host}/{PATH}", f"localhost:{port}/{PATH}"]
        deployment = "".join(f"- image: {image}:{OLD}@{zeros}\n" for image in images)
        remote = make_bare_remote(tmp_path / "remotes", {"apps/app/images.yaml": deployment})

        def command(image: str) -> list[str]:
            return [str(GITOPS), "build-and-bump", "--image", image, "--deploy-repo", remote.url, "--no-cache",
                    "--output", "json"]

        env = gitops_env({"DOCKER_BUILDKIT": "0"})
        procs = [subprocess.Popen(command(image), cwd=checkout, env=env, text=True, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for image, checkout in zip(images, (app, other), strict=True)]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            results.append((proc.returncode, out, err))
        assert len(proxy.order) == 2, proxy.order
        assert sorted(status for status, _, _ in results) == [0, 6], [err for _, _, err in results]
        won = next(n for n, (status, _, _) in enumerate(results) if status == 0)
        rerun = subprocess.run(command(images[1 - won]), cwd=(app, other)[1 - won], env=env, text=True,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    tag = sha[:7]
    request = urllib.request.Request(f"{registry.url}/v2/{PATH}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        tagged = resp.headers["Docker-Content-Digest"]
    winner, loser = json.loads(results[won][1]), json.loads(results[1 - won][1])
    assert winner["digest"] == tagged and steps(winner)["bump"] == "ok"
    assert loser["digest"] is None and loser["exit_code"] == 6 and steps(loser)["publish"] == "failed"
    assert steps(loser)["bump"] == "not run"
    assert f"won the race: the tag names {tagged}" in loser["error"]
    first = remote.show("apps/app/images.yaml", f"{remote.branch}~1").decode()  # the winner's bump
    assert first == "".join(f"- image: {image}:{tag}@{tagged}\n" if n == won else f"- image: {image}:{OLD}@{zeros}\n"
                            for n, image in enumerate(images))
    # the re-run: the tag is published for this commit; it bumps the tag's digest
    assert len(remote.log()) == 3, rerun.stderr
    again = json.loads(rerun.stdout)
    assert rerun.returncode == 0 and again["digest"] == tagged and steps(again)["publish"] == "skipped"
    assert remote.show("apps/app/images.yaml").decode() == "".join(f"- image: {image}:{tag}@{tagged}\n"
                                                                   for image in images)
