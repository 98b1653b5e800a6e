"""`gitops history` (and the `rollback` it drives) across merge commits, renamed and removed files, many
files changed at once, and untagged references, on real git remotes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.cli import run_gitops
from tests.fixtures.gitremotes import FIXTURE_IDENTITY, DeployRemote, git, make_bare_remote

pytestmark = pytest.mark.integration

IMG = "registry.example.com/team/x"
APP = {"apps/api/deployment.yaml": f"containers:\n- name: app\n  image: {IMG}:v1\n"}


def _bump(remote: DeployRemote, image: str, *args: str, source: str | None = None) -> None:
    env = {"GITOPS_SOURCE_COMMIT": source} if source else None
    res = run_gitops(["bump", "--deploy-repo", remote.url, "--image", image, *args], env=env)
    assert res.returncode == 0, res.stderr


def _history(where: str, *args: str) -> list[dict]:
    res = run_gitops(["history", "--deploy-repo", where, "--image", IMG, "-o", "json", *args])
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["entries"]


def _traced_history(where: str, trace: Path) -> tuple[list[dict], list[str]]:
    """history's entries, and the git commands it ran (GIT_TRACE)."""
    trace.unlink(missing_ok=True)
    res = run_gitops(["history", "--deploy-repo", where, "--image", IMG, "-o", "json"], env={"GIT_TRACE": str(trace)})
    assert res.returncode == 0, res.stderr
    commands = [ln for ln in trace.read_text().splitlines() if "built-in: git " in ln]
    return json.loads(res.stdout)["entries"], commands


def _commit_all(work: Path, message: str) -> None:
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", message, cwd=work)


def test_a_pull_merge_keeps_the_values_of_the_mainline_it_merged(tmp_path: Path) -> None:
    """A human with an older clone commits, `git pull` (a merge: their commit is the first parent, the
    remote's v2 and v3 the second) and pushes: history showed v3 on the merge, credited to the human with no
    source commit, and no v2 (rollback went v3 -> v1).  The merged side's commits are now the entries; the
    side is deeper than the first clone (32), so it is deepened for them."""
    remote = make_bare_remote(tmp_path / "remotes", files=APP)
    human = remote.clone(tmp_path / "human")
    _bump(remote, f"{IMG}:v2", source="2" * 40)
    work = remote.clone(tmp_path / "w")
    for i in range(40):
        (work / "counter.txt").write_text(f"{i}\n")
        _commit_all(work, f"c{i}")
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    _bump(remote, f"{IMG}:v3", source="3" * 40)
    (human / "notes.yaml").write_text("note: unrelated\n")
    _commit_all(human, "notes")
    git("-c", "pull.rebase=false", "pull", "--quiet", "--no-edit", "origin", "main", cwd=human)
    git("push", "--quiet", "origin", "HEAD:main", cwd=human)
    assert len(git("rev-list", "--parents", "-1", "HEAD", cwd=human).split()) == 3  # a merge
    for where in (remote.url, str(human)):
        entries = _history(where)
        assert [(e["tag"], e["previous"], e["by_gitops"], e["source_commit"]) for e in entries] == [
            ("v3", "v2", True, "3" * 40), ("v2", "v1", True, "2" * 40), ("v1", None, False, None)], where
        assert entries[0]["commit"] == git("rev-parse", "HEAD^2", cwd=human).strip()
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", IMG, "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert "from v3" in res.stderr and "to v2\n" in res.stderr
    assert f"image: {IMG}:v2\n" in remote.show("apps/api/deployment.yaml").decode()


def test_a_merged_review_branch_keeps_its_bump_commits(tmp_path: Path) -> None:
    """`bump --push-branch bump-v2`, then `git merge --no-ff origin/bump-v2` (and so for v3): the entries were
    the merges, with no trailer read (by_gitops false, no source commit).  A merge that resolved a conflict
    to a value neither side had is itself the entry."""
    remote = make_bare_remote(tmp_path / "remotes", files=APP)
    work = remote.clone(tmp_path / "w")
    for tag in ("v2", "v3"):
        _bump(remote, f"{IMG}:{tag}", "--push-branch", f"bump-{tag}", source=tag[1] * 40)
        git("fetch", "--quiet", "origin", cwd=work)
        git("merge", "--quiet", "--no-ff", "-m", f"Merge bump-{tag}", f"origin/bump-{tag}", cwd=work)
        git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    entries = _history(remote.url)
    assert [(e["tag"], e["by_gitops"], e["source_commit"]) for e in entries] == [
        ("v3", True, "3" * 40), ("v2", True, "2" * 40), ("v1", False, None)]
    assert entries[0]["commit"] == remote.head("bump-v3") and entries[1]["commit"] == remote.head("bump-v2")
    # a conflict resolved to v5: the merge is the entry
    _bump(remote, f"{IMG}:v4", "--push-branch", "bump-v4")
    path = work / "apps/api/deployment.yaml"
    path.write_text(path.read_text().replace(":v3", ":v6"))
    _commit_all(work, "v6 by hand")
    git("fetch", "--quiet", "origin", cwd=work)
    res = git_status("merge", "--quiet", "--no-ff", "-m", "Merge bump-v4", "origin/bump-v4", cwd=work)
    assert res != 0  # a conflict
    path.write_text(f"containers:\n- name: app\n  image: {IMG}:v5\n")
    _commit_all(work, "Merge bump-v4, at v5")
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    entries = _history(remote.url)
    assert [(e["tag"], e["previous"]) for e in entries[:3]] == [("v5", "v6"), ("v6", "v3"), ("v3", "v2")]
    assert entries[0]["commit"] == remote.head()


def test_a_merged_review_branch_writing_several_forms_keeps_its_bump_commit(tmp_path: Path) -> None:
    """A bump writing one value in several forms (`tag@digest` in one file, `@digest` in another) merged
    from its review branch: the side's entry has one value for the forms, and is the merge's value."""
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    files = {"a.yaml": f"image: {IMG}:v1@{d1}\n", "b.yaml": f"image: {IMG}@{d1}\n"}
    remote = make_bare_remote(tmp_path / "remotes", files=files)
    work = remote.clone(tmp_path / "w")
    _bump(remote, f"{IMG}:v2@{d2}", "--push-branch", "bump-v2", source="2" * 40)
    git("fetch", "--quiet", "origin", cwd=work)
    git("merge", "--quiet", "--no-ff", "-m", "Merge bump-v2", "origin/bump-v2", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    [newest, _] = _history(remote.url)
    assert (newest["value"], newest["by_gitops"], newest["source_commit"]) == (f"v2@{d2}", True, "2" * 40)
    assert newest["commit"] == remote.head("bump-v2")


def _prod_on_a_branch_staging_on_main(tmp_path: Path, branch: str) -> tuple[DeployRemote, Path, str, str]:
    """prod/ and staging/ at v1; `branch` sets prod to v5, then main sets staging to v2 (main checked out):
    (remote, work tree, the prod commit, the staging commit)."""
    files = {"prod/d.yaml": f"image: {IMG}:v1\n", "staging/d.yaml": f"image: {IMG}:v1\n"}
    remote = make_bare_remote(tmp_path / "remotes", files=files)
    work = remote.clone(tmp_path / "w")
    commits = []
    for switch, path, tag in ((["-b", branch], "prod", "v5"), (["main"], "staging", "v2")):
        git("checkout", "--quiet", *switch, cwd=work)
        (work / path / "d.yaml").write_text(f"image: {IMG}:{tag}\n")
        _commit_all(work, f"{path} {tag}")
        commits.append(git("rev-parse", "HEAD", cwd=work).strip())
    return remote, work, commits[0], commits[1]


def test_a_branch_that_merged_main_before_it_was_merged_lists_each_commit_once(tmp_path: Path) -> None:
    """The "update branch" flow: main gets a change (staging v2), the feature branch (prod v5) merges main,
    then main merges the feature branch.  The nested merge's side was read again: staging's v2 was listed
    twice, once as the newest entry, and rollback set staging from v2 to prod's v5."""
    remote, work, feature, staging = _prod_on_a_branch_staging_on_main(tmp_path, "feature")
    for _ in range(2):  # the branch merges main (twice: the second merges nothing new), then is merged
        git("checkout", "--quiet", "feature", cwd=work)
        git("merge", "--quiet", "--no-edit", "--no-ff", "main", cwd=work)
        git("checkout", "--quiet", "main", cwd=work)
    git("merge", "--quiet", "--no-ff", "--no-edit", "feature", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    for where in (remote.url, str(work)):
        entries = _history(where)
        assert [(e["tag"], e["commit"], e["files"]) for e in entries][:2] == [
            ("v5", feature, ["prod/d.yaml"]), ("v2", staging, ["staging/d.yaml"])], where
        assert len({e["commit"] for e in entries}) == len(entries) == 3


def test_a_branch_that_merged_a_branch_of_a_newer_main_lists_mains_commit_once(tmp_path: Path) -> None:
    """F (prod v5) merges G, a branch started from main after main's staging v2, with no image change of its
    own; main then merges F.  "F merges G" was an entry (staging v2, the newest), a copy of main's commit."""
    remote, work, _, _ = _prod_on_a_branch_staging_on_main(tmp_path, "F")
    git("checkout", "--quiet", "-b", "G", cwd=work)
    (work / "README").write_text("docs\n")
    _commit_all(work, "G: docs")
    git("checkout", "--quiet", "F", cwd=work)
    git("merge", "--quiet", "--no-ff", "--no-edit", "G", cwd=work)
    git("checkout", "--quiet", "main", cwd=work)
    git("merge", "--quiet", "--no-ff", "--no-edit", "F", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    for where in (remote.url, str(work)):
        assert [(e["tag"], e["subject"]) for e in _history(where)] == [
            ("v5", "prod v5"), ("v2", "staging v2"), ("v1", "Initial manifests")], where


def test_a_merge_that_kept_an_older_value_of_its_side_is_the_entry(tmp_path: Path) -> None:
    """F sets prod v5, then merges main taking main's v2; main moves to v3 and merges F keeping F's prod (v2).
    The final merge was replaced by F's own v5 commit: history's newest value was v5 while the file held v2."""
    remote = make_bare_remote(tmp_path / "remotes", files=APP)
    work = remote.clone(tmp_path / "w")
    path = work / "apps/api/deployment.yaml"
    git("checkout", "--quiet", "-b", "F", cwd=work)
    path.write_text(f"containers:\n- name: app\n  image: {IMG}:v5\n")
    _commit_all(work, "prod v5")
    git("checkout", "--quiet", "main", cwd=work)
    path.write_text(f"containers:\n- name: app\n  image: {IMG}:v2\n")
    _commit_all(work, "prod v2")
    git("checkout", "--quiet", "F", cwd=work)
    git("merge", "--quiet", "--no-edit", "-X", "theirs", "main", cwd=work)
    git("checkout", "--quiet", "main", cwd=work)
    path.write_text(f"containers:\n- name: app\n  image: {IMG}:v3\n")
    _commit_all(work, "prod v3")
    git("merge", "--quiet", "--no-ff", "--no-commit", "F", cwd=work)
    git("checkout", "F", "--", "apps/api/deployment.yaml", cwd=work)
    git("commit", "--quiet", "-m", "merge F, keeping F's prod", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    for where in (remote.url, str(work)):
        assert [(e["tag"], e["subject"]) for e in _history(where)] == [
            ("v2", "merge F, keeping F's prod"), ("v3", "prod v3"), ("v2", "prod v2"),
            ("v1", "Initial manifests")], where


def git_status(*args: str, cwd: Path) -> int:
    """git's exit status (a merge that stops at a conflict is not an error here)."""
    return subprocess.run(["git", *args], cwd=cwd, env=dict(os.environ, **FIXTURE_IDENTITY),
                          capture_output=True).returncode


def test_a_merged_review_branch_of_digest_only_pins_has_the_tags(tmp_path: Path, registry) -> None:
    """Digest-only pins (`image: repo@sha256:...`) bumped on review branches and merged: the merges had no
    tag (`rollback --steps 1` was exit 3, "has no tag"); the branch's commits name it in their trailers."""
    from tests.integration.test_bump_digest import push_minimal_image

    image = f"{registry.host}/team/pinned"
    d1, d2, d3 = (push_minimal_image(registry.url, "team/pinned", tag) for tag in ("v1", "v2", "v3"))
    remote = make_bare_remote(tmp_path / "remotes",
                              {"deploy.yaml": f"containers:\n- name: app\n  image: {image}@{d1}\n"})
    work = remote.clone(tmp_path / "w")
    for tag in ("v2", "v3"):
        res = run_gitops(["bump", "--deploy-repo", remote.url, "--image", f"{image}:{tag}", "--push-branch",
                          f"bump-{tag}"])
        assert res.returncode == 0, res.stderr
        git("fetch", "--quiet", "origin", cwd=work)
        git("merge", "--quiet", "--no-ff", "-m", f"Merge bump-{tag}", f"origin/bump-{tag}", cwd=work)
        git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    res = run_gitops(["history", "--deploy-repo", remote.url, "--image", image, "-o", "json"])
    assert res.returncode == 0, res.stderr
    entries = json.loads(res.stdout)["entries"]
    assert [(e["tag"], e["digest"], e["by_gitops"]) for e in entries] == [
        ("v3", d3, True), ("v2", d2, True), (None, d1, False)]
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", image, "--steps", "1"])
    assert res.returncode == 0, res.stderr
    assert remote.show("deploy.yaml").decode() == f"containers:\n- name: app\n  image: {image}@{d2}\n"


def test_rollback_after_a_file_was_moved(tmp_path: Path) -> None:
    """Bump to v2, then `git mv apps/api/deployment.yaml deploy/prod/`: rollback said "rolling back from v2
    to v1", warned the moved file was "left as it is" and was "already up to date" (exit 0, nothing done).
    Entries now name the files where they are at the branch's tip; a move is no entry.  The same for a
    kustomization moved to overlays/."""
    remote = make_bare_remote(tmp_path / "remotes", files={
        **APP, "kustomization.yaml": f"images:\n- name: {IMG}\n  newTag: v1\n"})
    _bump(remote, f"{IMG}:v2")
    work = remote.clone(tmp_path / "w")
    (work / "deploy/prod").mkdir(parents=True)
    (work / "overlays").mkdir()
    git("mv", "apps/api/deployment.yaml", "deploy/prod/", cwd=work)
    git("mv", "kustomization.yaml", "overlays/", cwd=work)
    git("commit", "--quiet", "-m", "move", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    entries = _history(remote.url)
    assert [(e["tag"], e["files"]) for e in entries] == [
        ("v2", ["deploy/prod/deployment.yaml", "overlays/kustomization.yaml"]),
        ("v1", ["deploy/prod/deployment.yaml", "overlays/kustomization.yaml"])]
    assert entries[0]["commit_files"] == ["apps/api/deployment.yaml", "kustomization.yaml"]
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", IMG, "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert "left as it is" not in res.stderr and "already up to date" not in res.stderr
    assert remote.show("deploy/prod/deployment.yaml").decode() == APP["apps/api/deployment.yaml"]
    assert remote.show("overlays/kustomization.yaml").decode() == f"images:\n- name: {IMG}\n  newTag: v1\n"


def test_a_removed_file_removes_its_value_from_the_history(tmp_path: Path) -> None:
    """prod at v2, preview at v3, then `git rm -r preview`: history listed v3 as the newest value though no
    file had it.  The removal is a change of the tree's values: its entry is the values left (v2), from v3."""
    remote = make_bare_remote(tmp_path / "remotes", files={
        "prod/app.yaml": f"image: {IMG}:v1\n", "preview/app.yaml": f"image: {IMG}:v1\n"})
    _bump(remote, f"{IMG}:v2", "--path", "prod")
    _bump(remote, f"{IMG}:v3", "--path", "preview")
    work = remote.clone(tmp_path / "w")
    git("rm", "--quiet", "-r", "preview", cwd=work)
    git("commit", "--quiet", "-m", "no more preview", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    entries = _history(remote.url)
    assert [(e["tag"], e["previous"], e["files"]) for e in entries] == [
        ("v2", "v3", []), ("v3", "v1", []), ("v2", "v1", ["prod/app.yaml"]), ("v1", None, ["prod/app.yaml"])]
    assert entries[0]["commit"] == remote.head() and entries[0]["commit_files"] == ["preview/app.yaml"]
    # prod's own history is unchanged; removing a file at a value another file still has is no change
    assert [e["tag"] for e in _history(remote.url, "--path", "prod")] == ["v2", "v1"]
    remote.commit_change("prod/copy.yaml", f"image: {IMG}:v2\n", "a copy")
    work = remote.clone(tmp_path / "w2")
    git("rm", "--quiet", "prod/copy.yaml", cwd=work)
    git("commit", "--quiet", "-m", "no more copy", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    assert [e["commit"] for e in _history(remote.url)][0] == entries[0]["commit"]


def test_a_commit_changing_many_unrelated_files_is_read_in_few_git_commands(tmp_path: Path) -> None:
    """A commit editing 300 YAML files that name other images: history ran `git show` twice for each (one
    process per file and side: ~20 s for 1,000 files).  Their contents are read in batches; the references
    in every form (a kustomize newName, a Helm map) are still found."""
    files = {f"other/svc{i:03}.yaml": f"image: registry.example.com/team/other{i}:v1\n" for i in range(300)}
    files["app/kustomization.yaml"] = f"images:\n- name: team/x\n  newName: {IMG}\n  newTag: v1\n"
    files["chart/values.yaml"] = "image:\n  registry: registry.example.com\n  repository: team/x\n  tag: v1\n"
    remote = make_bare_remote(tmp_path / "remotes", files=files)
    work = remote.clone(tmp_path / "w")
    for i in range(300):
        (work / f"other/svc{i:03}.yaml").write_text(f"image: registry.example.com/team/other{i}:v2\n")
    for rel in ("app/kustomization.yaml", "chart/values.yaml"):
        (work / rel).write_text((work / rel).read_text().replace("v1", "v2"))
    _commit_all(work, "everything to v2")
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    for where in (remote.url, str(work)):
        entries, commands = _traced_history(where, tmp_path / "trace")
        assert [(e["tag"], e["files"]) for e in entries] == [
            ("v2", ["app/kustomization.yaml", "chart/values.yaml"]),
            ("v1", ["app/kustomization.yaml", "chart/values.yaml"])]
        assert len(commands) < 40, "\n".join(commands[:50])


def test_an_untagged_reference_is_shown_as_such(tmp_path: Path) -> None:
    """`image: repo` with no tag, then `repo:v2` by hand: JSON said `"previous": null`, as for a new reference;
    a kustomize base left untagged next to an overlay at v1 gave `"previous": ", v1"`."""
    remote = make_bare_remote(tmp_path / "remotes", files={"app.yaml": f"image: {IMG}\n"})
    remote.commit_change("app.yaml", f"image: {IMG}:v2\n", "v2 by hand")
    entries = _history(remote.url)
    assert [(e["tag"], e["value"], e["previous"]) for e in entries] == [("v2", "v2", "-"), (None, "-", None)]
    remote = make_bare_remote(tmp_path / "remotes2", files={
        "base/kustomization.yaml": f"images:\n- name: {IMG}\n",
        "overlay/kustomization.yaml": f"images:\n- name: {IMG}\n  newTag: v1\n"})
    work = remote.clone(tmp_path / "w")
    for rel in ("base/kustomization.yaml", "overlay/kustomization.yaml"):
        (work / rel).write_text(f"images:\n- name: {IMG}\n  newTag: v2\n")
    _commit_all(work, "both at v2")
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    entries = _history(remote.url)
    assert [(e["tag"], e["previous"]) for e in entries] == [("v2", "-, v1"), ("v1", None)]


def test_a_kustomization_named_kustomization_is_read(tmp_path: Path) -> None:
    """kustomize reads a file named `Kustomization` as it reads kustomization.yaml, and bump writes it: history
    did not read it (no entry for its bumps, and rollback left it as it was)."""
    remote = make_bare_remote(tmp_path / "remotes",
                              files={"app/Kustomization": f"images:\n- name: {IMG}\n  newTag: v1\n"})
    _bump(remote, f"{IMG}:v2")
    assert [(e["tag"], e["files"]) for e in _history(remote.url)] == [
        ("v2", ["app/Kustomization"]), ("v1", ["app/Kustomization"])]
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", IMG, "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert remote.show("app/Kustomization").decode() == f"images:\n- name: {IMG}\n  newTag: v1\n"


def _long_history(bare: Path, commits: int, image_changes: dict[int, str], rename_at: int) -> None:
    """`commits` commits on top of the remote's first one (written with `git fast-import`, fast): each bumps
    one of 50 other services; commit i in `image_changes` also sets IMG's tag, and commit `rename_at` moves
    its manifest to deploy/api.yaml without changing it."""
    head = git("rev-parse", "main", cwd=bare).strip()
    path, tag = "apps/api/deployment.yaml", "v1"
    stream = []
    for i in range(1, commits + 1):
        ops = [f"M 644 inline svc/svc-{i % 50:02}.yaml\ndata <<END\n"
               f"image: registry.example.com/team/svc-{i % 50:02}:t{i}\nEND\n"]
        if i == rename_at:
            ops.append(f"D {path}\n")
            path = "deploy/api.yaml"
        if i in image_changes or i == rename_at:
            tag = image_changes.get(i, tag)
            ops.append(f"M 644 inline {path}\ndata <<END\ncontainers:\n- name: app\n  image: {IMG}:{tag}\nEND\n")
        message = f"commit {i}"
        stream.append(f"commit refs/heads/main\ncommitter CI <ci@example.com> {1600000000 + i} +0000\n"
                      f"data {len(message)}\n{message}\n" + (f"from {head}\n" if i == 1 else "") + "".join(ops))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=bare, input="".join(stream).encode(), check=True)


def test_a_long_history_is_read_in_few_git_commands(tmp_path: Path) -> None:
    """A deploy repo shared by many services: history read each commit of the branch with its own `git
    diff-tree` and `git cat-file` (and, in a blobless clone, a `git rev-list` of its missing objects), ~30 s
    for 20 entries among 10,000 commits.  Commits are now read in batches growing to 1,024; the entries
    (and the rename followed across the batches) are the same, from a remote and from a local checkout."""
    remote = make_bare_remote(tmp_path / "remotes", files=APP)
    _long_history(remote.path, 700, {20: "v2", 333: "v3", 690: "v4"}, rename_at=500)
    work = remote.clone(tmp_path / "w")
    for where in (remote.url, str(work)):
        entries, commands = _traced_history(where, tmp_path / "trace")
        assert [(e["tag"], e["previous"], e["files"]) for e in entries] == [
            ("v4", "v3", ["deploy/api.yaml"]), ("v3", "v2", ["deploy/api.yaml"]),
            ("v2", "v1", ["deploy/api.yaml"]), ("v1", None, ["deploy/api.yaml"])], where
        assert [e["commit_files"] for e in entries] == [
            ["deploy/api.yaml"], ["apps/api/deployment.yaml"], ["apps/api/deployment.yaml"],
            ["apps/api/deployment.yaml"]]
        assert len(commands) < 200, "\n".join(commands[:220])  # was ~2,200 (three a commit)
    res = run_gitops(["rollback", "--deploy-repo", remote.url, "--image", IMG, "--steps", "2", "--no-verify"])
    assert res.returncode == 0, res.stderr
    assert f"image: {IMG}:v2\n" in remote.show("deploy/api.yaml").decode()


def test_many_entries_are_read_with_their_trailers_in_few_git_commands(tmp_path: Path) -> None:
    """Every commit of a long history changes the image (`--limit 1000`): history ran one `git show` per entry
    for its date, author and trailers.  They are read in one `git log` per batch of commits; each entry keeps
    its own author, subject and trailers (a commit message with a body and trailers, one without)."""
    remote = make_bare_remote(tmp_path / "remotes", files=APP)
    head = git("rev-parse", "main", cwd=remote.path).strip()
    stream = []
    for i in range(1, 301):
        trailers = f"\n\nBumped by CI.\n\nImage: {IMG}:t{i}\nSource-Commit: {i:040x}\n" if i % 2 else ""
        message = f"deploy t{i}{trailers}"
        stream.append(f"commit refs/heads/main\nauthor Dev {i} <dev{i}@example.com> {1600000000 + i} +0000\n"
                      f"committer CI <ci@example.com> {1600000000 + i} +0000\ndata {len(message.encode())}\n"
                      f"{message}\n" + (f"from {head}\n" if i == 1 else "")
                      + f"M 644 inline apps/api/deployment.yaml\ndata <<END\n"
                        f"containers:\n- name: app\n  image: {IMG}:t{i}\nEND\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=remote.path, input="".join(stream).encode(), check=True)
    work = remote.clone(tmp_path / "w")
    trace = tmp_path / "trace"
    res = run_gitops(["history", "--deploy-repo", str(work), "--image", IMG, "--limit", "1000", "-o", "json"],
                     env={"GIT_TRACE": str(trace)})
    assert res.returncode == 0, res.stderr
    entries = json.loads(res.stdout)["entries"]
    assert len(entries) == 301
    assert [(e["tag"], e["author"], e["subject"], e["by_gitops"], e["source_commit"]) for e in entries[:3]] == [
        ("t300", "Dev 300 <dev300@example.com>", "deploy t300", False, None),
        ("t299", "Dev 299 <dev299@example.com>", "deploy t299", True, f"{299:040x}"),
        ("t298", "Dev 298 <dev298@example.com>", "deploy t298", False, None)]
    assert all(e["by_gitops"] == (int(e["tag"][1:]) % 2 == 1) for e in entries[:-1])
    assert entries[-1]["tag"] == "v1" and entries[-1]["subject"] == "Initial manifests"
    commands = [ln for ln in trace.read_text().splitlines() if "built-in: git " in ln]
    assert len(commands) < 60, "\n".join(commands[:80])  # was ~900 (three a commit, and one an entry)
