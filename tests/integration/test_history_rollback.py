"""`gitops history` and `gitops rollback` end to end on real git remotes and the real registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.cli import run_gitops
from tests.fixtures.gitremotes import DeployRemote, git, make_bare_remote

pytestmark = pytest.mark.integration

API = "registry.example.com/team/api"
WORKER = "registry.example.com/team/worker"


def bump(remote: DeployRemote, image: str, env: dict[str, str] | None = None) -> str:
    res = run_gitops(["bump", "--deploy-repo", remote.url, "--image", image], env=env)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def history_json(remote: DeployRemote, *args: str) -> dict:
    res = run_gitops(["history", "--deploy-repo", remote.url, "--output", "json", *args])
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_history_lists_bumps_and_hand_edits_newest_first(deploy_remote: DeployRemote) -> None:
    c1 = bump(deploy_remote, f"{API}:1.1.0", env={"GITOPS_SOURCE_COMMIT": "a" * 40})
    c2 = bump(deploy_remote, f"{API}:1.2.0", env={"GITOPS_SOURCE_COMMIT": "b" * 40})
    deploy_remote.commit_change("notes.yaml", "note: unrelated\n", "unrelated change")
    text = deploy_remote.show("apps/api/deployment.yaml").decode()
    hand = deploy_remote.commit_change("apps/api/deployment.yaml",
                                       text.replace(f"{API}:1.2.0", f"{API}:1.2.5"), "hotfix by hand")
    data = history_json(deploy_remote, "--image", API)
    entries = data["entries"]
    assert [e["tag"] for e in entries[:3]] == ["1.2.5", "1.2.0", "1.1.0"]
    assert [e["commit"] for e in entries[:3]] == [hand, c2, c1]
    assert entries[0]["by_gitops"] is False and entries[0]["author"] == "Fixture <fixture@example.com>"
    assert entries[1]["by_gitops"] is True and entries[1]["source_commit"] == "b" * 40
    assert entries[2]["previous"] == "1.0.0"
    assert all(e["repository"] == "registry.example.com/team/api" for e in entries)
    # the initial commit added the reference: the oldest entry is 1.0.0 with no previous value
    assert entries[-1]["tag"] == "1.0.0" and entries[-1]["previous"] is None
    assert data["complete"] is True


def test_history_limit_text_output_and_other_images(deploy_remote: DeployRemote) -> None:
    bump(deploy_remote, f"{API}:2.0.0")
    bump(deploy_remote, f"{WORKER}:2.0.0")
    res = run_gitops(["history", "--deploy-repo", deploy_remote.url, "--image", API, "--limit", "1"])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and f"{API}:2.0.0" in lines[0]
    everything = history_json(deploy_remote)
    names = {e["repository"] for e in everything["entries"]}
    assert {"registry.example.com/team/api", "registry.example.com/team/worker"} <= names


def test_history_deepens_a_shallow_clone_on_demand(tmp_path: Path, deploy_remote: DeployRemote) -> None:
    bump(deploy_remote, f"{API}:3.0.0")
    # 80 unrelated commits on top: more than the initial clone depth
    work = deploy_remote.clone(tmp_path / "w")
    for i in range(80):
        (work / "counter.txt").write_text(f"{i}\n")
        git("add", "counter.txt", cwd=work)
        git("commit", "--quiet", "-m", f"c{i}", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    entries = history_json(deploy_remote, "--image", API)["entries"]
    assert [e["tag"] for e in entries] == ["3.0.0", "1.0.0"]


def test_rollback_reads_history_from_the_one_clone_it_commits_in(tmp_path: Path, deploy_remote: DeployRemote) -> None:
    bump(deploy_remote, f"{API}:2.0.0")
    work = deploy_remote.clone(tmp_path / "w")
    for i in range(40):  # the value to roll back to lies deeper than the bump's depth-1 clone (and depth 32)
        (work / "counter.txt").write_text(f"{i}\n")
        git("add", "counter.txt", cwd=work)
        git("commit", "--quiet", "-m", f"c{i}", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    trace = tmp_path / "trace"
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--no-verify"],
                     env={"GIT_TRACE": str(trace)})
    assert res.returncode == 0, res.stderr
    assert deploy_remote.message().startswith(f"Roll back {API} to 1.0.0\n")
    clones = [ln for ln in trace.read_text().splitlines() if "built-in: git clone" in ln]
    assert len(clones) == 1, clones
    # a local checkout is read and bumped in place (no clone at all)
    git("pull", "--quiet", "origin", "main", cwd=work)
    res = run_gitops(["rollback", "--deploy-repo", str(work), "--image", API, "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert f"{API}:2.0.0" in (work / "apps/api/deployment.yaml").read_text()
    assert deploy_remote.head() == git("rev-parse", "HEAD", cwd=work).strip()
    assert deploy_remote.message().startswith(f"Roll back {API} to 2.0.0\n")


def test_history_errors(deploy_remote: DeployRemote) -> None:
    res = run_gitops(["history", "--deploy-repo", deploy_remote.url, "--image", "registry.example.com/none/x"])
    assert res.returncode == 3 and "no change of registry.example.com/none/x" in res.stderr
    res = run_gitops(["history", "--deploy-repo", deploy_remote.url, "--image", "Bad/Name"])
    assert res.returncode == 2 and "--image" in res.stderr


def test_rollback_steps_commit_message_and_byte_exact_diff(deploy_remote: DeployRemote) -> None:
    bump(deploy_remote, f"{API}:1.1.0")
    bad = bump(deploy_remote, f"{API}:1.2.0")
    deploy_remote.commit_change("notes.yaml", "note: unrelated\n", "unrelated change")
    before = {rel: deploy_remote.show(rel) for rel in ("apps/api/deployment.yaml",)}
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--no-verify"])
    assert res.returncode == 0, res.stderr
    commit = res.stdout.strip()
    assert deploy_remote.head() == commit
    message = deploy_remote.message()
    assert message.startswith(f"Roll back {API} to 1.1.0\n")
    assert f"Rollback-Of: {bad}" in message and f"Image: {API}:1.1.0" in message
    after = deploy_remote.show("apps/api/deployment.yaml")
    assert after == before["apps/api/deployment.yaml"].replace(b"api:1.2.0", b"api:1.1.0")
    # rolling back again goes one step further back in history (the rollback is itself a change)
    data = history_json(deploy_remote, "--image", API)
    assert data["entries"][0]["tag"] == "1.1.0" and data["entries"][0]["rollback_of"] == bad


def test_rollback_to_tag_dry_run_and_noop(deploy_remote: DeployRemote) -> None:
    bump(deploy_remote, f"{API}:1.5.0")
    head = deploy_remote.head()
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--to", "1.0.0",
                      "--no-verify", "--dry-run"])
    assert res.returncode == 0, res.stderr
    minus = [ln for ln in res.stdout.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln for ln in res.stdout.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert minus and all(f"{API}:1.5.0" in ln for ln in minus)
    assert [ln.replace(f"{API}:1.0.0", f"{API}:1.5.0")[1:] for ln in plus] == [ln[1:] for ln in minus]
    assert deploy_remote.head() == head
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--to", "1.5.0",
                      "--no-verify"])
    assert res.returncode == 0 and res.stdout == "" and "already up to date" in res.stderr
    assert deploy_remote.head() == head
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--steps", "9",
                      "--no-verify"])
    assert res.returncode == 3 and "cannot go back 9" in res.stderr
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--to", "1.0.0",
                      "--steps", "1"])
    assert res.returncode == 2


def test_concurrent_rollback_and_bump_both_land(deploy_remote: DeployRemote) -> None:
    bump(deploy_remote, f"{API}:1.1.0")
    from tests.fixtures.cli import GITOPS, gitops_env

    procs = [
        subprocess.Popen([str(GITOPS), "rollback", "--deploy-repo", deploy_remote.url, "--image", API,
                          "--no-verify"], env=gitops_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True),
        subprocess.Popen([str(GITOPS), "bump", "--deploy-repo", deploy_remote.url, "--image", f"{WORKER}:9.9.9"],
                         env=gitops_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    subjects = deploy_remote.log("%s")
    assert subjects[0:2] in ([f"Roll back {API} to 1.0.0", f"Update {WORKER} image to {WORKER}:9.9.9"],
                             [f"Update {WORKER} image to {WORKER}:9.9.9", f"Roll back {API} to 1.0.0"])
    assert deploy_remote.git("rev-list", "--merges", "main").strip() == ""
    text = deploy_remote.show("apps/api/deployment.yaml").decode()
    assert f"{API}:1.0.0" in text


def _push(image: str, base_image: str, label: str) -> str:
    """Build a distinct image (a label changes its config) and push it; return its digest."""
    build = subprocess.run(["docker", "build", "-q", "-t", image, "-"], input=f"FROM {base_image}\nLABEL v={label}\n",
                           capture_output=True, text=True, check=True)
    assert build.returncode == 0
    push = subprocess.run(["docker", "push", image], capture_output=True, text=True)
    assert push.returncode == 0, push.stderr
    inspect = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image],
                             capture_output=True, text=True, check=True)
    repo = image.rsplit(":", 1)[0]
    return next(d for d in json.loads(inspect.stdout) if d.startswith(repo + "@")).split("@", 1)[1]


def test_rollback_verifies_the_tag_still_exists(tmp_path: Path, registry, base_image: str) -> None:
    repo = f"{registry.host}/team/rollme"
    d1 = _push(f"{repo}:v1", base_image, "1")
    _push(f"{repo}:v2", base_image, "2")
    remote = make_bare_remote(tmp_path / "remotes", {
        "app.yaml": f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n"
                    f"    - name: app\n      image: {repo}:v1  # pinned\n",
    })
    bump(remote, f"{repo}:v2")
    # delete v1 from the registry (by its manifest digest), then a verified rollback must refuse
    import urllib.request

    req = urllib.request.Request(f"{registry.url}/v2/team/rollme/manifests/{d1}", method="DELETE")
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 202
    head = remote.head()
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", repo])
    assert res.returncode == 6, res.stderr
    assert "no longer exists in the registry" in res.stderr
    assert remote.head() == head
    # a tag that exists passes the check
    bump(remote, f"{repo}:v1")  # history: v1 -> v2 -> v1(now deleted) ; roll back to v2
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", repo])
    assert res.returncode == 0, res.stderr
    assert f"{repo}:v2  # pinned" in remote.show("app.yaml").decode()


# --- regression tests from the audit -------------------------------------------------------------------


def _retag(registry_url: str, name: str, source: str, tag: str) -> str:
    """Point `tag` at the manifest of `source` (the tag moves); return that manifest's digest."""
    import hashlib
    import urllib.request

    accept = "application/vnd.oci.image.manifest.v1+json"
    with urllib.request.urlopen(urllib.request.Request(f"{registry_url}/v2/{name}/manifests/{source}",
                                                       headers={"Accept": accept})) as resp:
        manifest = resp.read()
    req = urllib.request.Request(f"{registry_url}/v2/{name}/manifests/{tag}", method="PUT", data=manifest,
                                 headers={"Content-Type": accept})
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 201
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def test_rollback_keeps_the_recorded_digest_when_the_tag_moved(tmp_path: Path, registry) -> None:
    from tests.integration.test_bump_digest import push_minimal_image

    image = f"{registry.host}/team/app"
    d1 = push_minimal_image(registry.url, "team/app", "v1")
    d2 = push_minimal_image(registry.url, "team/app", "v2")
    d3 = push_minimal_image(registry.url, "team/app", "v3")
    remote = make_bare_remote(tmp_path / "remotes", {
        "deploy.yaml": f"containers:\n  - name: app\n    image: {image}:v1@{d1}\n"
                       f"  - name: side\n    image: {image}@{d1}\n",
        "kustomization.yaml": f"images:\n  - name: {image}\n    newTag: v1\n    digest: {d1}\n",
    })
    bump(remote, f"{image}:v2")
    bump(remote, f"{image}:v3")
    entries = history_json(remote, "--image", image)["entries"]
    assert [(e["tag"], e["digest"]) for e in entries] == [("v3", d3), ("v2", d2), ("v1", d1)]
    moved = _retag(registry.url, "team/app", "v1", "v2")  # v2 now names another image
    assert moved != d2
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", image, "--dry-run"])
    assert res.returncode == 0, res.stderr
    assert f"now points to {moved}; keeping the recorded digest {d2}" in res.stderr
    plus = [ln for ln in res.stdout.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    pinned = [ln for ln in plus if "sha256:" in ln]
    assert len(pinned) == 3 and all(d2 in ln for ln in pinned) and not any(moved in ln for ln in plus), res.stdout


def test_history_and_rollback_skip_a_file_that_is_not_utf8(deploy_remote: DeployRemote) -> None:
    bump(deploy_remote, f"{API}:1.1.0")
    work = deploy_remote.clone(deploy_remote.path.parent / "w")
    (work / "bin.yaml").write_bytes(b"\xff\xfeimage: registry.example.com/team/api:v3\n")
    (work / "broken.yaml").write_text("image: registry.example.com/team/api:v4\n  bad: [\n")
    git("add", "bin.yaml", "broken.yaml", cwd=work)
    git("commit", "--quiet", "-m", "odd files", cwd=work)
    odd = git("rev-parse", "HEAD", cwd=work).strip()
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    bump(deploy_remote, f"{API}:1.2.0")
    res = run_gitops(["history", "--deploy-repo", deploy_remote.url, "--image", API, "-o", "json"])
    assert res.returncode == 0, res.stderr
    assert [e["tag"] for e in json.loads(res.stdout)["entries"]] == ["1.2.0", "1.1.0", "1.0.0"]
    assert f"warning: {odd[:12]}:bin.yaml: skipped (not UTF-8 text: byte 0)" in res.stderr
    assert f"warning: {odd[:12]}:broken.yaml: skipped (line " in res.stderr
    assert res.stderr.count("bin.yaml") == 1  # once, not once per read
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert deploy_remote.message().startswith(f"Roll back {API} to 1.1.0\n")


def test_a_new_file_at_the_current_value_is_no_change(deploy_remote: DeployRemote) -> None:
    bump(deploy_remote, f"{API}:2.0.0")
    bump(deploy_remote, f"{API}:3.0.0")
    text = deploy_remote.show("apps/api/deployment.yaml").decode()
    deploy_remote.commit_change("overlay/canary.yaml", text, "canary overlay, by hand")
    entries = history_json(deploy_remote, "--image", API)["entries"]
    assert [e["tag"] for e in entries] == ["3.0.0", "2.0.0", "1.0.0"]
    # a new file at a new value is a change
    deploy_remote.commit_change("overlay/next.yaml", text.replace(f"{API}:3.0.0", f"{API}:4.0.0"), "next")
    entries = history_json(deploy_remote, "--image", API)["entries"]
    assert [e["tag"] for e in entries] == ["4.0.0", "3.0.0", "2.0.0", "1.0.0"]
    assert entries[0]["previous"] is None and entries[0]["files"] == ["overlay/next.yaml"]


def test_rollback_skips_history_entries_at_the_current_value(deploy_remote: DeployRemote) -> None:
    bump(deploy_remote, f"{API}:2.0.0")
    bump(deploy_remote, f"{API}:3.0.0")
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--no-verify"])
    assert res.returncode == 0, res.stderr
    bump(deploy_remote, f"{API}:3.0.0")
    tags = [e["tag"] for e in history_json(deploy_remote, "--image", API)["entries"]]
    assert tags == ["3.0.0", "2.0.0", "3.0.0", "2.0.0", "1.0.0"]
    # two steps back: the 3.0.0 two entries ago is the current value, not a step back; 2.0.0 is next
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--no-verify", "--steps", "2"])
    assert res.returncode == 0, res.stderr
    assert "from 3.0.0" in res.stderr and "to 1.0.0" not in res.stderr and "already up to date" not in res.stdout
    assert deploy_remote.message().startswith(f"Roll back {API} to 2.0.0\n")
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--no-verify", "--steps", "3"])
    assert res.returncode == 0, res.stderr
    # now at 2.0.0: the entries back are 3.0.0, 2.0.0 (skipped), 3.0.0, 2.0.0 (skipped), 1.0.0
    assert deploy_remote.message().startswith(f"Roll back {API} to 1.0.0\n")


def test_rollback_steps_zero_is_refused(deploy_remote: DeployRemote) -> None:
    bump(deploy_remote, f"{API}:2.0.0")
    head = deploy_remote.head()
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--no-verify", "--steps", "0"])
    assert res.returncode == 2 and "--steps 0: must be 1 or more" in res.stderr
    assert deploy_remote.head() == head


def test_rollback_image_with_a_tag_is_refused_not_dropped(deploy_remote: DeployRemote) -> None:
    """`--image NAME:TAG` reads as "back to TAG": it was rolled back one step instead, to another tag."""
    for tag in ("2.0.0", "3.0.0", "4.0.0"):
        bump(deploy_remote, f"{API}:{tag}")
    head = deploy_remote.head()
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0", "--no-verify"])
    assert res.returncode == 2, res.stderr
    assert f"--image '{API}:2.0.0': give the repository only ({API})" in res.stderr
    assert f"--image {API} --to 2.0.0" in res.stderr
    assert deploy_remote.head() == head


def test_history_image_with_a_tag_or_digest_is_refused_not_ignored(deploy_remote: DeployRemote) -> None:
    """`history --image NAME:TAG` listed every value of NAME, as if the tag narrowed nothing down."""
    bump(deploy_remote, f"{API}:2.0.0")
    for given in (f"{API}:2.0.0", f"{API}@sha256:{'a' * 64}"):
        res = run_gitops(["history", "--deploy-repo", deploy_remote.url, "--image", given])
        assert res.returncode == 2 and res.stdout == "", res.stderr
        assert f"error: --image '{given}': give the repository only ({API})" in res.stderr
        assert f"hint: history lists every value of the repository: --image {API}" in res.stderr


def test_history_path_is_literal_and_must_exist(deploy_remote: DeployRemote) -> None:
    text = deploy_remote.show("apps/api/deployment.yaml").decode()
    deploy_remote.commit_change("apps/p/x.yaml", text.replace(f"{API}:1.0.0", f"{API}:7.0.0"), "p")
    deploy_remote.commit_change("apps/[prod]/x.yaml", text.replace(f"{API}:1.0.0", f"{API}:8.0.0"), "prod")
    for path in ("apps/[prod]", "apps/[prod]/", "./apps/[prod]", "apps/[prod]/x.yaml"):
        entries = history_json(deploy_remote, "--image", API, "--path", path)["entries"]
        assert [(e["tag"], e["files"]) for e in entries] == [("8.0.0", ["apps/[prod]/x.yaml"])], path
    res = run_gitops(["history", "--deploy-repo", deploy_remote.url, "--image", API, "--path", "apps/nope"])
    assert res.returncode == 2 and "--path 'apps/nope': does not exist in the repository (main)" in res.stderr
    res = run_gitops(["history", "--deploy-repo", deploy_remote.url, "--image", API, "--path", "../x"])
    assert res.returncode == 2 and "outside the repository" in res.stderr


def test_history_of_an_empty_repository(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    git("init", "--quiet", "--initial-branch=main", str(repo))
    res = run_gitops(["history", "--deploy-repo", str(repo)])
    assert res.returncode == 3 and "the repository has no commits" in res.stderr and "--branch" not in res.stderr
    res = run_gitops(["history", "--deploy-repo", str(repo), "--branch", "main"])
    assert res.returncode == 2 and "--branch 'main': no such branch" in res.stderr


def test_a_shallow_local_checkout_says_its_history_stops_at_its_boundary(tmp_path: Path) -> None:
    """A CI checkout cloned --depth 1 or 2: history said `no change of team/app found ... check the image name`
    or listed the newest value as the whole history (`"complete": true`); rollback said `0 recorded earlier
    values`.  Each now names the boundary and the way to the rest."""
    remote = make_bare_remote(tmp_path / "remotes", files={"app.yaml": "image: team/app:v1\n"})
    for tag in ("v2", "v3", "v4"):
        res = run_gitops(["bump", "--deploy-repo", remote.url, "--image", f"team/app:{tag}"])
        assert res.returncode == 0, res.stderr
    shallow = tmp_path / "d1"
    git("clone", "--quiet", "--depth", "1", remote.url, str(shallow))
    boundary = git("rev-parse", "HEAD", cwd=shallow).strip()
    res = run_gitops(["history", "--deploy-repo", str(shallow), "--image", "team/app"])
    assert res.returncode == 3, res.stderr
    assert (f"found in the history of {shallow} (main): the checkout is shallow, and its history stops at commit "
            f"{boundary[:12]}\n") in res.stderr
    assert "hint: fetch the rest of its history (git fetch --unshallow), or give the deploy repo's URL" in res.stderr
    deeper = tmp_path / "d2"
    git("clone", "--quiet", "--depth", "2", remote.url, str(deeper))
    boundary = git("rev-parse", "HEAD~1", cwd=deeper).strip()
    res = run_gitops(["history", "--deploy-repo", str(deeper), "--image", "team/app", "-o", "json"])
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [e["tag"] for e in data["entries"]] == ["v4"]
    assert data["complete"] is False and data["shallow_at"] == boundary
    assert f"warning: the checkout is shallow, and its history stops at commit {boundary[:12]}" in res.stderr
    res = run_gitops(["rollback", "--deploy-repo", str(deeper), "--image", "team/app", "--no-verify", "--dry-run"])
    assert res.returncode == 3 and "(the checkout is shallow, and its history stops at commit" in res.stderr
    assert "git fetch --unshallow" in res.stderr
    git("fetch", "--quiet", "--unshallow", cwd=deeper)  # the hint's way: the whole history
    res = run_gitops(["history", "--deploy-repo", str(deeper), "--image", "team/app", "-o", "json"])
    data = json.loads(res.stdout)
    assert [e["tag"] for e in data["entries"]] == ["v4", "v3", "v2", "v1"] and data["shallow_at"] is None


def test_a_local_partial_clone_is_read_with_its_promisor_remote(tmp_path: Path) -> None:
    """git's lazy fetches of a local blobless clone go to its promisor remote, reached with gitops' credentials
    and ssh options for it: they were looked up for a remote named origin only (`clone -o upstream`: none)."""
    from gitops_cli.history import _promisor_remote

    remote = make_bare_remote(tmp_path / "remotes", files={"app.yaml": "image: team/app:v1\n"})
    git("config", "uploadpack.allowFilter", "true", cwd=remote.path)
    res = run_gitops(["bump", "--deploy-repo", remote.url, "--image", "team/app:v2"])
    assert res.returncode == 0, res.stderr
    partial = tmp_path / "partial"
    git("clone", "--quiet", "--filter=blob:none", "--no-checkout", "-o", "upstream", remote.url, str(partial))
    assert _promisor_remote(partial) == "upstream" and _promisor_remote(remote.clone(tmp_path / "full")) is None
    res = run_gitops(["history", "--deploy-repo", str(partial), "--image", "team/app", "-o", "json"])
    assert res.returncode == 0, res.stderr
    assert [e["tag"] for e in json.loads(res.stdout)["entries"]] == ["v2", "v1"]


def test_history_branch_is_a_branch_name_as_for_bump(tmp_path: Path) -> None:
    """--branch works as for bump: a revision, a full ref or git's shorthand is exit 2 naming it (a remote
    gave exit 10 with git's clone error, a local checkout read `main~1` or a tag as the branch)."""
    remote = make_bare_remote(tmp_path / "remotes", files={"app.yaml": "image: team/app:v1\n"})
    checkout = remote.clone(tmp_path / "co")
    git("tag", "v-tag", cwd=checkout)
    for where in (str(checkout), remote.url):
        for branch, why in (("main~1", "not a valid branch name"), ("-x", "not a valid branch name"),
                            ("@", "not a valid branch name"), ("HEAD", "not a valid branch name"),
                            ("refs/heads/main", "give the branch's name, without refs/heads/")):
            res = run_gitops(["history", "--deploy-repo", where, "--branch", branch])
            assert res.returncode == 2 and f"--branch '{branch}': {why}" in res.stderr, (where, branch, res.stderr)
        res = run_gitops(["history", "--deploy-repo", where, "--branch", "main", "-o", "json"])
        assert res.returncode == 0 and [e["tag"] for e in json.loads(res.stdout)["entries"]] == ["v1"], res.stderr
    res = run_gitops(["history", "--deploy-repo", str(checkout), "--branch", "v-tag"])  # a tag is no branch
    assert res.returncode == 2 and "--branch 'v-tag': no such branch" in res.stderr


TWO_ENVS = {
    "prod/app.yaml": "containers:\n- name: app\n  image: team/app:v1\n",
    "staging/app.yaml": "containers:\n- name: app\n  image: team/app:v1\n",
}


def test_a_local_subdirectory_is_the_scope_of_history_and_rollback(tmp_path: Path) -> None:
    """--deploy-repo prod is the implicit --path of every verb: history and rollback read prod's history only,
    as bump writes prod only (they read the whole repo's and rolled back from staging's value)."""
    remote = make_bare_remote(tmp_path / "remotes", files=TWO_ENVS)
    checkout = remote.clone(tmp_path / "co")
    prod = checkout / "prod"
    for where, tag in (("prod", "v2"), ("staging", "v3")):
        res = run_gitops(["bump", "--deploy-repo", str(checkout / where), "--image", f"team/app:{tag}"])
        assert res.returncode == 0, res.stderr
    res = run_gitops(["history", "--deploy-repo", str(prod), "--image", "team/app", "-o", "json"])
    assert res.returncode == 0, res.stderr
    assert [(e["tag"], e["files"]) for e in json.loads(res.stdout)["entries"]] == [
        ("v2", ["prod/app.yaml"]), ("v1", ["prod/app.yaml"])]
    for path in ("app.yaml", str(prod / "app.yaml")):  # relative to the subdirectory, or absolute
        res = run_gitops(["history", "--deploy-repo", str(prod), "--image", "team/app", "--path", path, "-o", "json"])
        assert res.returncode == 0, res.stderr
        assert [e["tag"] for e in json.loads(res.stdout)["entries"]] == ["v2", "v1"]
    res = run_gitops(["history", "--deploy-repo", str(prod), "--path", "nope.yaml"])
    assert res.returncode == 2 and "--path 'nope.yaml': does not exist" in res.stderr  # the value as given
    res = run_gitops(["rollback", "--deploy-repo", str(prod), "--image", "team/app", "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert "from v2" in res.stderr and "to v1" in res.stderr
    assert "image: team/app:v1" in remote.show("prod/app.yaml").decode()
    assert "image: team/app:v3" in remote.show("staging/app.yaml").decode()


def test_history_of_a_blobless_clone_fetches_blobs_in_batches(tmp_path: Path) -> None:
    """A commit that only adds a reference at a value the tree has makes history scan the parent's tree
    (`git grep`): in the blobless clone that fetched each YAML blob alone (1,503 fetches for 1,500 files)."""
    files = {f"apps/svc{i:03}.yaml": f"containers:\n- name: app\n  image: team/app:v1 # {i}\n" for i in range(150)}
    remote = make_bare_remote(tmp_path / "remotes", files=files)
    for i in range(3):  # new overlays at the current value: no entry, but a scan of the parent tree each
        remote.commit_change(f"overlays/o{i}.yaml", "containers:\n- name: app\n  image: team/app:v1\n", f"o{i}")
    trace = tmp_path / "trace"
    res = run_gitops(["history", "--deploy-repo", remote.url, "--image", "team/app", "--limit", "2", "-o", "json"],
                     env={"GIT_TRACE": str(trace)})
    assert res.returncode == 0, res.stderr
    assert [e["tag"] for e in json.loads(res.stdout)["entries"]] == ["v1"]
    fetches = [ln for ln in trace.read_text().splitlines() if "git fetch" in ln or "fetch origin" in ln]
    assert len(fetches) <= 2 * 4, "\n".join(fetches[:5])  # the lazy fetch and its built-in, per tree at most


def test_history_path_of_a_blobless_clone_fetches_only_the_blobs_under_it(tmp_path: Path) -> None:
    """`history --path prod` fetched every YAML blob of the tree being scanned, not only those under prod/."""
    import re

    files = {f"apps/svc{i:03}.yaml": f"containers:\n- name: app\n  image: team/app:v1 # {i}\n" for i in range(60)}
    files["prod/app.yaml"] = "containers:\n- name: app\n  image: team/app:v1\n"
    remote = make_bare_remote(tmp_path / "remotes", files=files)
    for i in range(2):  # new overlays at the current value: a scan of the parent tree (under prod/) each
        remote.commit_change(f"prod/o{i}.yaml", "containers:\n- name: app\n  image: team/app:v1\n", f"o{i}")
    trace = tmp_path / "trace"
    res = run_gitops(["history", "--deploy-repo", remote.url, "--image", "team/app", "--path", "prod", "-o", "json"],
                     env={"GIT_TRACE": str(trace)})
    assert res.returncode == 0, res.stderr
    assert [e["tag"] for e in json.loads(res.stdout)["entries"]] == ["v1"]
    blob_fetches = [ln for ln in trace.read_text().splitlines()
                    if "built-in: git fetch" in ln and "--filter=blob:none" in ln]
    assert blob_fetches  # the scans did fetch (the check below is not vacuous)
    fetched = {oid for ln in blob_fetches for oid in re.findall(r"\b[0-9a-f]{40}\b", ln)}
    under_prod = {git("rev-parse", f"{rev}:{p}", cwd=remote.path).strip()
                  for rev, p in (("HEAD~2", "prod/app.yaml"), ("HEAD~1", "prod/o0.yaml"))}
    assert fetched <= under_prod | {git("rev-parse", "HEAD:prod/o1.yaml", cwd=remote.path).strip()}, len(fetched)


def test_history_text_shows_the_repositorys_fields_escaped_json_as_they_are(
        tmp_path: Path, deploy_remote: DeployRemote) -> None:
    """A hand-made commit's author and trailer are the repository's to choose: the text line shows them
    escaped (no escape sequence reaches the terminal, the entry stays one line); the JSON keeps them."""
    work = deploy_remote.clone(tmp_path / "hand")
    path = work / "apps/api/deployment.yaml"
    path.write_text(path.read_text().replace(f"{API}:1.0.0", f"{API}:1.0.1"))
    git("commit", "--quiet", "-am", "hand edit\n\nSource-Commit: ab\x1b[2Jcd",
        "--author", "ev\x1b[31mil <fixture@example.com>", cwd=work)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
    res = run_gitops(["history", "--deploy-repo", deploy_remote.url, "--image", API, "--limit", "1"])
    assert res.returncode == 0, res.stderr
    assert "\x1b" not in res.stdout and len(res.stdout.splitlines()) == 1
    assert res.stdout.rstrip("\n").endswith(
        f"  {API}:1.0.1  {deploy_remote.head()[:12]}  ev\\x1b[31mil <fixture@example.com> source ab\\x1b[2Jcd")
    entry = history_json(deploy_remote, "--image", API, "--limit", "1")["entries"][0]
    assert entry["author"] == "ev\x1b[31mil <fixture@example.com>" and entry["source_commit"] == "ab\x1b[2Jcd"


def test_rollback_steps_count_a_value_set_env_by_env_once(tmp_path: Path) -> None:
    """staging -> v2, prod -> v2, everything -> v3: history lists v3, v2, v2, v1 and `--steps 2` went to v2
    too (the same as `--steps 1`); a change is a new value: --steps 2 is v1."""
    remote = make_bare_remote(tmp_path / "remotes", files=TWO_ENVS)
    checkout = remote.clone(tmp_path / "co")
    for where, tag in (("staging", "v2"), ("prod", "v2"), (".", "v3")):
        res = run_gitops(["bump", "--deploy-repo", str(checkout / where), "--image", f"team/app:{tag}"])
        assert res.returncode == 0, res.stderr
    assert [e["tag"] for e in history_json(remote, "--image", "team/app")["entries"]] == ["v3", "v2", "v2", "v1"]
    for steps, tag in (("1", "v2"), ("2", "v1")):
        res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", "team/app", "--no-verify",
                          "--steps", steps, "--dry-run"])
        assert res.returncode == 0, res.stderr
        assert f"from v3 (commit {remote.head()[:12]}) to {tag}\n" in res.stderr
    head = remote.head()
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", "team/app", "--no-verify", "--steps", "3"])
    assert res.returncode == 3 and "has 2 recorded earlier value(s) to go back to; cannot go back 3" in res.stderr
    assert remote.head() == head


def test_rollback_to_a_tag_that_never_existed(tmp_path: Path, registry) -> None:
    """`--to v9`, a tag neither the history nor the registry has, was said to "no longer exist"."""
    from tests.integration.test_bump_digest import push_minimal_image

    image = f"{registry.host}/team/app"
    push_minimal_image(registry.url, "team/app", "v1")
    push_minimal_image(registry.url, "team/app", "v2")
    remote = make_bare_remote(tmp_path / "remotes", {"app.yaml": f"containers:\n- name: app\n  image: {image}:v1\n"})
    bump(remote, f"{image}:v2")
    head = remote.head()
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", image, "--to", "v9"])
    assert res.returncode == 6, res.stderr
    assert (f"error: {image}:v9 does not exist in the registry (and no value in the history has that tag); "
            "refusing to roll back to it\n") in res.stderr
    assert "no longer" not in res.stderr and remote.head() == head
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", image, "--to", "v1"])
    assert res.returncode == 0, res.stderr
    assert remote.message().startswith(f"Roll back {image} to v1\n")


TWO_TAGS = {  # one repository, two containers at two tags
    "app.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  template:\n    spec:\n"
                "      containers:\n        - name: app\n          image: team/app:v1\n"
                "        - name: debug\n          image: team/app:v1-debug\n",
}


def test_a_commit_setting_several_tags_is_no_value_to_guess(tmp_path: Path) -> None:
    """The initial commit sets `app` to v1 and `debug` to v1-debug: history showed it as v1-debug (the longest
    value) and `rollback` after a bump of `app` put v1-debug into the app container."""
    remote = make_bare_remote(tmp_path / "remotes", files=TWO_TAGS)
    res = run_gitops(["bump", "--deploy-repo", remote.url, "--container", "app", "--image", "team/app:v2"])
    assert res.returncode == 0, res.stderr
    entries = history_json(remote, "--image", "team/app")["entries"]
    assert [(e["tag"], e["values"], e["value"]) for e in entries] == [
        ("v2", ["v2"], "v2"), (None, ["v1", "v1-debug"], "v1, v1-debug")]
    res = run_gitops(["history", "--deploy-repo", remote.url, "--image", "team/app"])
    assert res.returncode == 0, res.stderr
    assert "  team/app:{v1,v1-debug}  " in res.stdout.splitlines()[1], res.stdout
    head = remote.head()
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", "team/app", "--no-verify"])
    assert res.returncode == 3, res.stderr
    assert "error: team/app: the value 1 change(s) ago is several values (v1, v1-debug, commit " in res.stderr
    assert "--container" in res.stderr and "v1-debug" not in remote.show("app.yaml").decode().split("name: debug")[0]
    assert remote.head() == head


def test_rollback_container_reads_that_containers_history(tmp_path: Path) -> None:
    """`rollback --container app` read the history of every container: after a bump of `canary` alone it went
    'from v4 to v3' and was 'already up to date' (app was at v3), exit 0, nothing rolled back."""
    remote = make_bare_remote(tmp_path / "remotes", files={
        "app.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  containers:\n"
                    "    - name: app\n      image: team/app:v1\n    - name: canary\n      image: team/app:v1\n"})
    for args in (["--image", "team/app:v2"], ["--image", "team/app:v3"], ["--container", "canary", "--image",
                                                                          "team/app:v4"]):
        res = run_gitops(["bump", "--deploy-repo", remote.url, *args])
        assert res.returncode == 0, res.stderr
    assert [e["tag"] for e in history_json(remote, "--image", "team/app", "--container", "app")["entries"]] == [
        "v3", "v2", "v1"]
    assert [e["tag"] for e in history_json(remote, "--image", "team/app", "--container", "canary")["entries"]] == [
        "v4", "v3", "v2", "v1"]
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--container", "app", "--image", "team/app",
                      "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert "from v3" in res.stderr and "to v2\n" in res.stderr
    assert remote.message().startswith("Roll back team/app to v2\n")
    text = remote.show("app.yaml").decode()
    assert "- name: app\n      image: team/app:v2\n    - name: canary\n      image: team/app:v4\n" in text
    # a container no reference has: no history (exit 3, naming --container)
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--container", "nope", "--image", "team/app",
                      "--no-verify"])
    assert res.returncode == 3 and "no change of team/app" in res.stderr and "--container" in res.stderr
    res = run_gitops(["history", "--deploy-repo", remote.url, "--container", " "])
    assert res.returncode == 2 and "--container ' ': empty" in res.stderr


def test_rollback_container_of_a_repository_at_several_tags(tmp_path: Path) -> None:
    """The app container goes back to its own earlier tag (v1), not to the debug container's (v1-debug)."""
    remote = make_bare_remote(tmp_path / "remotes", files=TWO_TAGS)
    res = run_gitops(["bump", "--deploy-repo", remote.url, "--container", "app", "--image", "team/app:v2"])
    assert res.returncode == 0, res.stderr
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--container", "app", "--image", "team/app",
                      "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert remote.show("app.yaml").decode() == TWO_TAGS["app.yaml"]


THREE_ENVS = {f"envs/{env}/app.yaml": f"apiVersion: v1\nkind: Pod\nmetadata: {{name: app, namespace: {env}}}\nspec:\n"
                                      "  containers:\n    - name: app\n      image: team/app:v1\n"
              for env in ("dev", "staging", "prod")}


def _tags(remote: DeployRemote) -> dict[str, str]:
    return {env: remote.show(f"envs/{env}/app.yaml").decode().rsplit("team/app:", 1)[1].strip()
            for env in ("dev", "staging", "prod")}


def test_rollback_changes_only_what_the_change_rolled_back_set(tmp_path: Path) -> None:
    """staging v2, prod v2, staging v3: `rollback` set every reference to v2, moving dev (never at v2 or v3)
    forward from v1.  It now undoes the newest change only, as git revert does: the references at its value
    in the files it set."""
    remote = make_bare_remote(tmp_path / "remotes", files=THREE_ENVS)
    for tag, env in (("v2", "staging"), ("v2", "prod"), ("v3", "staging")):
        res = run_gitops(["bump", "--deploy-repo", remote.url, "--image", f"team/app:{tag}", "--path", f"envs/{env}"])
        assert res.returncode == 0, res.stderr
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", "team/app", "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert "from v3" in res.stderr and "to v2\n" in res.stderr and "left as it is" not in res.stderr
    assert _tags(remote) == {"dev": "v1", "staging": "v2", "prod": "v2"}
    assert remote.changed_files() == ["envs/staging/app.yaml"]
    # rolling the rollback back: staging goes to v3 again; prod, at v2 too but set by another change, stays
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", "team/app", "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert "from v2" in res.stderr and "to v3\n" in res.stderr
    assert _tags(remote) == {"dev": "v1", "staging": "v3", "prod": "v2"}
    # one change set env by env (dev, then prod, at v4) is rolled back in both; a file added at v4 by hand,
    # which history counts no change, is left with a warning naming it
    for env in ("dev", "prod"):
        res = run_gitops(["bump", "--deploy-repo", remote.url, "--image", "team/app:v4", "--path", f"envs/{env}"])
        assert res.returncode == 0, res.stderr
    remote.commit_change("envs/canary/app.yaml", remote.show("envs/dev/app.yaml").decode(), "canary, by hand")
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", "team/app", "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert "from v4" in res.stderr and "to v3\n" in res.stderr
    assert _tags(remote) == {"dev": "v3", "staging": "v3", "prod": "v3"}
    assert "team/app:v4" in remote.show("envs/canary/app.yaml").decode()
    assert ("warning: envs/canary/app.yaml:7: team/app:v4 left as it is: the change rolled back did not set it "
            "there (`gitops bump --path envs/canary/app.yaml --image team/app:v3` would)") in res.stderr


def test_digest_only_pins_get_the_recorded_digest_of_the_tag_the_trailer_names(tmp_path: Path, registry) -> None:
    """`image: repo@sha256:...`, a kustomize entry with only `digest:` and a Helm map with a digest and no tag:
    history showed bump's entries as `app:-@sha256:...` though their `Image:` trailers name the tag, `rollback`
    was refused ("has no tag", exit 3), and `--to v2` wrote the tag's current digest, not the recorded one."""
    from tests.integration.test_bump_digest import push_minimal_image

    image = f"{registry.host}/team/pinned"
    d1 = push_minimal_image(registry.url, "team/pinned", "v1")
    d2 = push_minimal_image(registry.url, "team/pinned", "v2")
    d3 = push_minimal_image(registry.url, "team/pinned", "v3")
    remote = make_bare_remote(tmp_path / "remotes", {
        "deploy.yaml": f"containers:\n  - name: app\n    image: {image}@{d1}\n",
        "kustomization.yaml": f"images:\n  - name: {image}\n    digest: {d1}\n",
        "chart/values.yaml": f"image:\n  repository: {image}\n  digest: {d1}\n",
    })
    bump(remote, f"{image}:v2")
    bump(remote, f"{image}:v3")
    entries = history_json(remote, "--image", image)["entries"]
    assert [(e["tag"], e["digest"]) for e in entries] == [("v3", d3), ("v2", d2), (None, d1)]
    res = run_gitops(["history", "--deploy-repo", remote.url, "--image", image, "--limit", "1"])
    assert res.returncode == 0 and f"  {image}:v3@{d3[:19]}  " in res.stdout, res.stdout
    moved = _retag(registry.url, "team/pinned", "v1", "v2")  # v2 now names another image
    for choice in (["--steps", "1"], ["--to", "v2"]):
        res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", image, "--dry-run", *choice])
        assert res.returncode == 0, res.stderr
        assert f"to v2@{d2}\n" in res.stderr and f"keeping the recorded digest {d2}" in res.stderr
        plus = [ln for ln in res.stdout.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
        assert len(plus) == 3 and all(d2 in ln for ln in plus) and not any(moved in ln for ln in plus), res.stdout
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", image])
    assert res.returncode == 0, res.stderr
    assert remote.message().startswith(f"Roll back {image} to v2\n")
    assert remote.show("deploy.yaml").decode() == f"containers:\n  - name: app\n    image: {image}@{d2}\n"


def test_a_branch_sharing_its_name_with_a_tag(tmp_path: Path) -> None:
    """A checkout on branch release-1 with a tag release-1 (at an older commit): bump pushed to
    refs/heads/heads/release-1 (exit 10, `git symbolic-ref --short` says heads/release-1), history read the
    tag's commits under the label (heads/release-1); a clone's deepening fetched the tag's history."""
    remote = make_bare_remote(tmp_path / "remotes", files={"app.yaml": "image: team/app:v1\n"})
    checkout = remote.clone(tmp_path / "co")
    git("checkout", "--quiet", "-b", "release-1", cwd=checkout)
    git("tag", "release-1", cwd=checkout)  # at v1
    git("push", "--quiet", "origin", "refs/tags/release-1", "refs/heads/release-1", cwd=checkout)
    for tag in ("v2", "v3"):
        res = run_gitops(["bump", "--deploy-repo", str(checkout), "--image", f"team/app:{tag}"])
        assert res.returncode == 0, res.stderr
        assert "pushed to release-1" in res.stderr
    assert remote.head("release-1") == git("rev-parse", "HEAD", cwd=checkout).strip()
    res = run_gitops(["history", "--deploy-repo", str(checkout), "--image", "team/app", "-o", "json"])
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["branch"] == "release-1" and [e["tag"] for e in data["entries"]] == ["v3", "v2", "v1"]
    res = run_gitops(["rollback", "--deploy-repo", str(checkout), "--image", "team/app", "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert remote.show("app.yaml", "refs/heads/release-1") == b"image: team/app:v2\n"
    # through the URL: 40 commits on top, deeper than the first clone, and the deepening fetches the branch
    work = remote.clone(tmp_path / "w", "release-1")
    for i in range(40):
        (work / "counter.txt").write_text(f"{i}\n")
        git("add", "counter.txt", cwd=work)
        git("commit", "--quiet", "-m", f"c{i}", cwd=work)
    git("push", "--quiet", "origin", "HEAD:refs/heads/release-1", cwd=work)
    data = history_json(remote, "--image", "team/app", "--branch", "release-1")
    assert [e["tag"] for e in data["entries"]] == ["v2", "v3", "v2", "v1"]


def test_a_rollback_that_would_change_nothing_is_refused_not_up_to_date(deploy_remote: DeployRemote) -> None:
    """The file bumped to 1.2.0 was copied to deploy/prod, then deleted (two commits: no rename history can
    follow): `rollback` printed the warning that deploy/prod was left as it is, then "already up to date",
    exit 0 (JSON `up_to_date: true`), `--to` as well, though the image was still at 1.2.0.  It is exit 3 naming
    the change and the references it found and left, with the `--path DIR --to TAG` that works."""
    bumped = bump(deploy_remote, f"{API}:1.2.0")
    work = deploy_remote.clone(deploy_remote.path.parent / "mv")
    (work / "deploy/prod").mkdir(parents=True)
    (work / "deploy/prod/deployment.yaml").write_bytes((work / "apps/api/deployment.yaml").read_bytes())
    git("add", "deploy/prod/deployment.yaml", cwd=work)
    git("commit", "--quiet", "-m", "copy the api to deploy/prod", cwd=work)
    git("rm", "--quiet", "apps/api/deployment.yaml", cwd=work)
    git("commit", "--quiet", "-m", "remove the old copy", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    head = deploy_remote.head()
    lines = [i for i, text in enumerate(deploy_remote.show("deploy/prod/deployment.yaml").decode().splitlines(), 1)
             if f"{API}:1.2.0" in text]
    left = ", ".join(f"deploy/prod/deployment.yaml:{line} (1.2.0)" for line in lines)
    for choice in ([], ["--to", "1.0.0"], ["--output", "json"], ["--dry-run"]):
        res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--no-verify", *choice])
        assert res.returncode == 3, res.stderr
        assert res.stdout == "" and "up to date" not in res.stderr and "rolling back" not in res.stderr
        assert (f"error: {API}: nothing rolled back from 1.2.0 to 1.0.0: the change rolled back (commit "
                f"{bumped[:12]}: apps/api/deployment.yaml) holds no file of the tree now (deleted since, or by that "
                f"change); the references found were left as they are: {left}\n") in res.stderr
        hint = ("hint: roll back where the image is now: `gitops rollback --path deploy/prod --to 1.0.0`" if choice[:1]
                == ["--to"] else "hint: roll back where the image is now, by that path's own history: `gitops "
                "rollback --path deploy/prod` (see `gitops history --path deploy/prod`), or to a value you choose")
        assert hint in res.stderr
        assert deploy_remote.head() == head
    # the hint does it
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--no-verify",
                      "--path", "deploy/prod", "--to", "1.0.0"])
    assert res.returncode == 0, res.stderr
    assert f"{API}:1.0.0" in deploy_remote.show("deploy/prod/deployment.yaml").decode()
    # a rollback to where every reference it changes is already: still "already up to date", exit 0
    head = deploy_remote.head()
    res = run_gitops(["rollback", "--deploy-repo", deploy_remote.url, "--image", API, "--no-verify",
                      "--path", "deploy/prod", "--to", "1.0.0"])
    assert res.returncode == 0 and "already up to date" in res.stderr and deploy_remote.head() == head


def head_of(remote: DeployRemote, back: int) -> str:
    return remote.git("rev-parse", f"{remote.branch}~{back}").strip()


def test_a_rollback_of_a_removal_is_refused(tmp_path: Path) -> None:
    """preview/ set to v3, then deleted, prod at v2: `rollback` (of the removal, v2 -> v3) said "already up to
    date", exit 0, with nothing at v3 and prod still at v2."""
    remote = make_bare_remote(tmp_path / "remotes", {"prod/app.yaml": "containers:\n- name: a\n  image: team/app:v1\n"})
    bump(remote, "team/app:v2")
    remote.commit_change("preview/app.yaml", "containers:\n- name: a\n  image: team/app:v2\n", "preview")
    res = run_gitops(["bump", "--deploy-repo", remote.url, "--image", "team/app:v3", "--path", "preview"])
    assert res.returncode == 0, res.stderr
    work = remote.clone(tmp_path / "rm")
    git("rm", "--quiet", "-r", "preview", cwd=work)
    git("commit", "--quiet", "-m", "preview is gone", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    head = remote.head()
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", "team/app", "--no-verify"])
    assert res.returncode == 3, res.stderr
    assert (f"error: team/app: nothing rolled back from v2 to v3: the change rolled back (commit {head[:12]}: "
            "preview/app.yaml) holds no file of the tree now (deleted since, or by that change); the references "
            "found were left as they are: prod/app.yaml:3 (v2)\n") in res.stderr
    # never `--to v3`: v3 is the deleted preview's value, no value to suggest for prod
    assert "hint: roll back where the image is now, by that path's own history: `gitops rollback --path prod` " \
           "(see `gitops history --path prod`)" in res.stderr and "--to v3" not in res.stderr
    assert "up to date" not in res.stderr
    assert remote.head() == head


def test_a_rollback_to_a_moved_tag_is_refused_where_no_digest_is_written(tmp_path: Path, registry) -> None:
    """Tag-only manifests bumped as build-and-bump does (`--image R:v2@D2`), then v2 pushed again: `rollback`
    warned "keeping the recorded digest D2", printed "to v2@D2" and wrote `Image: R:v2@D2`, but the file got
    `R:v2`, which names the new image.  It is refused (exit 6), naming both images; --no-verify takes the tag
    as it is, and its commit records no digest."""
    from tests.integration.test_bump_digest import push_minimal_image

    image = f"{registry.host}/team/moved"
    push_minimal_image(registry.url, "team/moved", "v1")
    d2 = push_minimal_image(registry.url, "team/moved", "v2")
    d3 = push_minimal_image(registry.url, "team/moved", "v3")
    remote = make_bare_remote(tmp_path / "remotes", {
        "deploy.yaml": f"containers:\n  - name: app\n    image: {image}:v1\n",
        "kustomization.yaml": f"images:\n  - name: {image}\n    newTag: v1\n",
    })
    bump(remote, f"{image}:v2@{d2}")
    bump(remote, f"{image}:v3@{d3}")
    assert f"{image}:v3\n" in remote.show("deploy.yaml").decode()  # the form is kept: no digest written
    moved = push_minimal_image(registry.url, "team/moved", "v2", labels={"tag": "v2, again"})
    assert moved != d2
    head = remote.head()
    for choice in ([], ["--to", "v2"], ["--dry-run"]):
        res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", image, *choice])
        assert res.returncode == 6, res.stderr
        assert (f"error: {image}:v2 now names another image ({moved}) than when it was deployed ({d2}, commit "
                f"{head_of(remote, 1)[:12]}), and the references rolled back carry no digest (deploy.yaml:3, "
                "kustomization.yaml:2): they would run the image the tag names now; refusing to roll back\n"
                ) in res.stderr
        assert f"hint: point v2 back at {image}@{d2} (the image that ran)" in res.stderr and "--no-verify" in res.stderr
        assert "keeping the recorded digest" not in res.stderr and res.stdout == "" and remote.head() == head
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", image, "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert (f"warning: deploy.yaml:3, kustomization.yaml:2: no digest there: they get the tag v2, whatever image it "
            f"names now (not checked: --no-verify); it named {d2} when it was deployed") in res.stderr
    assert "to v2\n" in res.stderr and d2 not in remote.message()
    assert f"Image: {image}:v2\n" in remote.message()
    assert remote.show("deploy.yaml").decode() == f"containers:\n  - name: app\n    image: {image}:v2\n"


def test_a_reference_by_digest_alone_is_not_at_a_tag_rolled_back(tmp_path: Path) -> None:
    """The change rolled back set `api:1.1.0`; the same file's `api@sha256:...` (no tag) shares no part of
    that value to compare, so it is not at it: not rolled back, and its digest is not taken for the
    target's (the rollback said `to 1.0.0@sha256:...` and wrote `1.0.0` without it)."""
    digest = "sha256:" + "a" * 64
    text = f"spec:\n  containers:\n  - image: {API}:1.0.0\n  - image: {API}@{digest}\n"
    remote = make_bare_remote(tmp_path / "r", {"a.yaml": text})
    change = remote.commit_change("a.yaml", text.replace(":1.0.0", ":1.1.0"), "by hand")
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", API, "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert f"rolling back {API} from 1.1.0 (commit {change[:12]}) to 1.0.0\n" in res.stderr
    assert remote.show("a.yaml").decode() == text
