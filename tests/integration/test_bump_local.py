"""`gitops bump` on a LOCAL checkout of the deploy repo: where it pushes, what it scans, what it never
overwrites, what a failure leaves behind, and which problems are refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.gitremotes import DeployRemote, git, make_bare_remote
from tests.integration.test_bump import API, API_FILE, no_identity_env

pytestmark = pytest.mark.integration

TWO_ENVS = {
    "prod/app.yaml": f"containers:\n- name: api\n  image: {API}:1.0.0\n",
    "staging/app.yaml": f"containers:\n- name: api\n  image: {API}:1.0.0\n",
}


def _head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo).strip()


def test_relative_origin_is_resolved_against_the_checkout(gitops, tmp_path: Path) -> None:
    """origin = ../deploy.git pushes to the checkout's sibling, whatever the current directory is."""
    real = make_bare_remote(tmp_path / "a")
    checkout = real.clone(tmp_path / "a" / "co")
    git("remote", "set-url", "origin", "../deploy.git", cwd=checkout)
    decoy = make_bare_remote(tmp_path / "elsewhere")  # ../deploy.git as seen from the current directory
    cwd = tmp_path / "elsewhere" / "cwd"
    cwd.mkdir()
    decoy_head, real_head = decoy.head(), real.head()
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:6.0.0"], cwd=cwd,
                 env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert decoy.head() == decoy_head
    assert real.head() == res.stdout.strip() != real_head
    assert f"{API}:6.0.0" in real.show(API_FILE).decode()


@pytest.mark.parametrize("mode", ["--dry-run", "--no-commit", "commit"])
def test_a_subdirectory_is_the_scope_of_every_mode(mode: str, gitops, tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "remotes", files=TWO_ENVS)
    checkout = remote.clone(tmp_path / "co")
    args = ["bump", "--deploy-repo", str(checkout / "prod"), "--image", f"{API}:2.0.0", "-o", "json"]
    res = gitops(args + ([] if mode == "commit" else [mode]), env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["files"] == ["prod/app.yaml"]  # relative to the repo root, in every mode
    if mode == "commit":  # reported as the remote it was pushed to
        assert remote.changed_files() == ["prod/app.yaml"]
        assert remote.show("staging/app.yaml").decode() == TWO_ENVS["staging/app.yaml"]
    elif mode == "--no-commit":
        assert report["repository"] == str(checkout.resolve())
        assert git("status", "--porcelain", cwd=checkout).splitlines() == [" M prod/app.yaml"]
    else:
        assert git("status", "--porcelain", cwd=checkout) == ""


def test_fast_forward_never_overwrites_untracked_files(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    checkout = deploy_remote.clone(tmp_path / "checkout")
    deploy_remote.commit_change("notes/todo.txt", "from origin\n")  # origin now tracks a file ...
    mine = checkout / "notes" / "todo.txt"  # ... that the user has, untracked, in the checkout
    mine.parent.mkdir()
    mine.write_text("my own notes\n")
    before = _head(checkout)
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 4, res.stderr
    assert "would overwrite untracked files (notes/todo.txt)" in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2  # the error and its hint
    assert mine.read_text() == "my own notes\n"
    assert _head(checkout) == before
    assert deploy_remote.log("%s")[0] == "unrelated change"  # nothing pushed


def _reject_pushes(remote: DeployRemote) -> None:
    hook = remote.path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: no direct pushes' >&2\nexit 1\n")
    hook.chmod(0o755)


def test_failed_push_leaves_the_checkout_as_it_was(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    checkout = deploy_remote.clone(tmp_path / "checkout")
    deploy_remote.commit_change("unrelated.txt", "moved on\n")  # the bump fast-forwards first
    before, remote_before = _head(checkout), deploy_remote.head()
    _reject_pushes(deploy_remote)
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 10, res.stderr
    assert "refused" in res.stderr and f"reset to {before[:12]}" in res.stderr
    assert "hint: the remote says: protected: no direct pushes\n" in res.stderr  # the hook's own reason
    assert _head(checkout) == before
    assert git("status", "--porcelain", cwd=checkout) == ""
    assert deploy_remote.head() == remote_before
    # the next bump is not blocked by a leftover "[ahead 1]" commit
    (deploy_remote.path / "hooks" / "pre-receive").unlink()
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert deploy_remote.head() == res.stdout.strip() == _head(checkout)


def test_refused_push_over_http_leaves_no_commit_behind(http_git_server, gitops, tmp_path: Path) -> None:
    """The server refuses the push (receive-pack off: HTTP 403, exit 11): the checkout is not left ahead."""
    remote = make_bare_remote(tmp_path / "srv")
    git("config", "http.receivepack", "false", cwd=remote.path)
    server = http_git_server(tmp_path / "srv")
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", server.url(), str(checkout))
    before = _head(checkout)
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 11, res.stderr
    assert f"reset to {before[:12]}" in res.stderr
    assert _head(checkout) == before and git("status", "--porcelain", cwd=checkout) == ""
    assert remote.head() == before


def test_dirty_local_checkout_is_refused_before_any_work(deploy_remote: DeployRemote, tmp_path: Path) -> None:
    """reach (which build-and-bump calls before the build) refuses a dirty checkout: exit 4."""
    from gitops_cli.bump import BumpRequest, reach
    from gitops_cli.errors import DirtyTreeError
    from gitops_cli.imageref import parse

    checkout = deploy_remote.clone(tmp_path / "checkout")
    (checkout / "README.md").write_text("edited\n")
    with pytest.raises(DirtyTreeError) as exc:
        reach(BumpRequest(str(checkout), []), images_required=False)
    assert exc.value.exit_code == 4 and "uncommitted changes (README.md)" in exc.value.message
    reach(BumpRequest(str(checkout), [parse(f"{API}:2.0.0")], commit=False))  # --no-commit: fine
    reach(BumpRequest(str(checkout), [parse(f"{API}:2.0.0")], commit=False, dry_run=True))  # and its --dry-run
    with pytest.raises(DirtyTreeError):  # the --dry-run of a bump that commits: refused as the bump is
        reach(BumpRequest(str(checkout), [parse(f"{API}:2.0.0")], dry_run=True))


def test_subdirectory_with_a_path_below_it(gitops, tmp_path: Path) -> None:
    files = dict(TWO_ENVS, **{"prod/extra/other.yaml": f"image: {API}:1.0.0\n"})
    remote = make_bare_remote(tmp_path / "remotes", files=files)
    checkout = remote.clone(tmp_path / "co")
    res = gitops(["bump", "--deploy-repo", str(checkout / "prod"), "--path", "extra", "--image", f"{API}:2.0.0",
                  "-o", "json"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["files"] == ["prod/extra/other.yaml"]
    assert remote.changed_files() == ["prod/extra/other.yaml"]


def test_subdirectory_with_an_absolute_path_and_errors_naming_the_value_given(gitops, tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "remotes", files=TWO_ENVS)
    checkout = remote.clone(tmp_path / "co")
    prod = checkout / "prod"
    res = gitops(["bump", "--deploy-repo", str(prod), "--path", str(prod / "app.yaml"), "--image", f"{API}:2.0.0",
                  "-o", "json"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr  # an absolute --path is taken as it is, not joined to prod/
    assert json.loads(res.stdout)["files"] == ["prod/app.yaml"]
    res = gitops(["bump", "--deploy-repo", str(prod), "--path", "nope.yaml", "--image", f"{API}:3.0.0", "--dry-run"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 2 and "--path 'nope.yaml': does not exist" in res.stderr


def test_fast_forward_never_overwrites_an_ignored_file(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    """reset --keep overwrites IGNORED files, and the restore after a refused push deleted them: the files the
    new commits add are checked on disk first (exit 4, naming them; nothing changed)."""
    checkout = deploy_remote.clone(tmp_path / "checkout")
    (checkout / ".git" / "info" / "exclude").write_text("*.local\n")
    mine = checkout / "notes.local"
    mine.write_text("my own notes\n")
    deploy_remote.commit_change("notes.local", "from origin\n")
    _reject_pushes(deploy_remote)
    before = _head(checkout)
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 4, res.stderr
    assert "would overwrite untracked files (notes.local)" in res.stderr
    assert mine.read_text() == "my own notes\n"
    assert _head(checkout) == before and "reset to" not in res.stderr


def test_detached_or_ahead_checkout_is_exit_4_before_any_work(deploy_remote: DeployRemote, tmp_path: Path) -> None:
    """reach (build-and-bump calls it before the tests and the build): a detached HEAD was exit 10 at the
    bump step, a branch ahead of origin was only found after the fetch (exit 10)."""
    from gitops_cli.bump import BumpRequest, reach
    from gitops_cli.errors import DirtyTreeError

    checkout = deploy_remote.clone(tmp_path / "checkout")
    git("checkout", "--quiet", "--detach", cwd=checkout)
    with pytest.raises(DirtyTreeError, match="detached HEAD") as exc:
        reach(BumpRequest(str(checkout), []), images_required=False)
    assert exc.value.exit_code == 4
    git("checkout", "--quiet", "main", cwd=checkout)
    (checkout / "mine.txt").write_text("local\n")
    git("add", "mine.txt", cwd=checkout)
    git("commit", "--quiet", "-m", "local only", cwd=checkout)
    with pytest.raises(DirtyTreeError, match="commits that are not on origin/main") as exc:
        reach(BumpRequest(str(checkout), []), images_required=False)
    assert exc.value.exit_code == 4 and "git fetch" in (exc.value.hint or "")


def _push_by_url(checkout: Path, remote: DeployRemote, rel: str = "mine.txt") -> str:
    """A commit pushed as the previous version pushed a bump (by URL): refs/remotes/origin/main is stale."""
    (checkout / rel).write_text("pushed by URL\n")
    git("add", rel, cwd=checkout)
    git("commit", "--quiet", "-m", "pushed by URL", cwd=checkout)
    git("push", "--quiet", remote.url, "main", cwd=checkout)
    assert git("rev-parse", "origin/main", cwd=checkout).strip() != _head(checkout)  # "[ahead 1]"
    return _head(checkout)


def test_a_stale_origin_ref_is_not_ahead(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    """origin/main as last fetched lags behind commits that ARE on origin (pushed by URL): reach and the bump
    went on with exit 4; one ls-remote tells that origin has them."""
    from gitops_cli.bump import BumpRequest, reach

    checkout = deploy_remote.clone(tmp_path / "checkout")
    pushed = _push_by_url(checkout, deploy_remote)
    reach(BumpRequest(str(checkout), []), images_required=False)  # origin's head is HEAD
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert git("rev-parse", "HEAD^", cwd=checkout).strip() == pushed
    assert deploy_remote.head() == res.stdout.strip() == _head(checkout)
    # origin moved on from there (known here after a fetch elsewhere? no: unknown here) -> the fetch decides
    _push_by_url(checkout, deploy_remote, "mine2.txt")
    other = deploy_remote.clone(tmp_path / "other")
    (other / "theirs.txt").write_text("x\n")
    git("add", "theirs.txt", cwd=other)
    git("-c", "user.name=o", "-c", "user.email=o@x", "commit", "--quiet", "-m", "theirs", cwd=other)
    git("push", "--quiet", "origin", "main", cwd=other)
    reach(BumpRequest(str(checkout), []), images_required=False)  # unknown here: not refused early
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:3.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert deploy_remote.head() == res.stdout.strip() == _head(checkout)
    assert git("rev-parse", "HEAD^", cwd=checkout).strip() == git("rev-parse", "HEAD", cwd=other).strip()


def test_ahead_after_the_fetch_is_exit_4_and_changes_nothing(deploy_remote: DeployRemote, gitops,
                                                             tmp_path: Path) -> None:
    checkout = deploy_remote.clone(tmp_path / "checkout")
    (checkout / "mine.txt").write_text("local\n")
    git("add", "mine.txt", cwd=checkout)
    git("commit", "--quiet", "-m", "local only", cwd=checkout)
    git("update-ref", "refs/remotes/origin/main", "HEAD", cwd=checkout)  # looks pushed, as last fetched
    before, remote_before = _head(checkout), deploy_remote.head()
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 4, res.stderr
    assert "branch main has commits that are not on origin/main" in res.stderr
    assert _head(checkout) == before and deploy_remote.head() == remote_before


def test_a_shallow_checkout_behind_origin_is_fast_forwarded(deploy_remote: DeployRemote, gitops,
                                                            tmp_path: Path) -> None:
    """actions/checkout depth 1: fetching --depth 1 cut the link, and a checkout behind looked ahead (exit 10)."""
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", "--depth", "1", deploy_remote.url, str(checkout))
    deploy_remote.commit_change("unrelated.txt", "moved on\n")
    moved = deploy_remote.commit_change("unrelated.txt", "moved on again\n")
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert deploy_remote.head() == res.stdout.strip() == _head(checkout)
    assert git("rev-parse", "HEAD^", cwd=checkout).strip() == moved


def test_push_branch_with_a_local_checkout_is_refused(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    """The bump commit went on the user's branch and only to origin/<push-branch>: the next bump failed."""
    checkout = deploy_remote.clone(tmp_path / "checkout")
    before, remote_before = _head(checkout), deploy_remote.head()
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0", "--push-branch", "bump/x"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 2 and "--push-branch 'bump/x': not with a local checkout" in res.stderr
    assert _head(checkout) == before and deploy_remote.head() == remote_before
    assert deploy_remote.git("branch", "--list", "bump/x") == ""
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0", "--push-branch", "bump/x",
                  "--dry-run"], env=no_identity_env(tmp_path))
    assert res.returncode == 2 and "--push-branch 'bump/x': not with a local checkout" in res.stderr  # as the bump


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_fast_forward_never_replaces_a_file_with_a_directory(kind: str, deploy_remote: DeployRemote, gitops,
                                                              tmp_path: Path) -> None:
    """.gitignore has `local-values`; origin adds `local-values/x.yaml`: the user's FILE (or symlink)
    `local-values` was silently replaced by a directory."""
    checkout = deploy_remote.clone(tmp_path / "checkout")
    (checkout / ".git" / "info" / "exclude").write_text("local-values\n")
    mine = checkout / "local-values"
    if kind == "file":
        mine.write_text("my values\n")
    else:
        (tmp_path / "elsewhere").mkdir()
        mine.symlink_to(tmp_path / "elsewhere")
    deploy_remote.commit_change("local-values/x.yaml", "a: 1\n")
    before = _head(checkout)
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 4, res.stderr
    assert "would overwrite untracked files (local-values)" in res.stderr
    assert mine.is_symlink() if kind == "symlink" else mine.read_text() == "my values\n"
    assert not (tmp_path / "elsewhere" / "x.yaml").exists()
    assert _head(checkout) == before


def test_fast_forward_turns_a_tracked_file_into_a_directory(deploy_remote: DeployRemote, gitops,
                                                            tmp_path: Path) -> None:
    """A file the checkout TRACKS that origin made a directory is git's to replace: not refused."""
    deploy_remote.commit_change("values", "old\n")
    checkout = deploy_remote.clone(tmp_path / "checkout")
    other = deploy_remote.clone(tmp_path / "other")
    git("rm", "--quiet", "values", cwd=other)
    (other / "values").mkdir()
    (other / "values" / "x.yaml").write_text("a: 1\n")
    git("add", "values", cwd=other)
    git("-c", "user.name=o", "-c", "user.email=o@x", "commit", "--quiet", "-m", "values/ now", cwd=other)
    git("push", "--quiet", "origin", "main", cwd=other)
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert (checkout / "values" / "x.yaml").read_text() == "a: 1\n"


def test_fast_forward_fetches_once(deploy_remote: DeployRemote, gitops, tmp_path: Path) -> None:
    """The fast-forward fetched, checked, then fetched again and reset to whatever arrived: it now resets to
    the commit it checked (one fetch)."""
    checkout = deploy_remote.clone(tmp_path / "checkout")
    moved = deploy_remote.commit_change("unrelated.txt", "moved on\n")
    trace = tmp_path / "trace"
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"],
                 env=no_identity_env(tmp_path, GIT_TRACE=str(trace)))
    assert res.returncode == 0, res.stderr
    assert git("rev-parse", "HEAD^", cwd=checkout).strip() == moved
    assert sum("built-in: git fetch" in line for line in trace.read_text().splitlines()) == 1


def test_a_pushed_bump_stays_when_the_tracking_ref_cannot_be_moved(deploy_remote: DeployRemote, gitops,
                                                                   tmp_path: Path) -> None:
    """The push went through, then `update-ref refs/remotes/origin/main` failed: the bump was reported as
    failed (exit 10) and the checkout reset although origin had the commit. Now: a warning, exit 0."""
    checkout = deploy_remote.clone(tmp_path / "checkout")
    hook = checkout / ".git" / "hooks" / "reference-transaction"
    hook.write_text('#!/bin/sh\n[ "$1" = prepared ] || exit 0\n'
                    'tr "\\0" " " </proc/$PPID/cmdline | grep -q update-ref && exit 1\nexit 0\n')
    hook.chmod(0o755)
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "pushed, but refs/remotes/origin/main was not moved" in res.stderr and "git fetch" in res.stderr
    assert deploy_remote.head() == res.stdout.strip() == _head(checkout)
    assert "reset to" not in res.stderr


@pytest.mark.parametrize("mode", ["commit", "--dry-run", "--no-commit"])
def test_files_git_does_not_track_are_never_bumped_into_a_commit(mode: str, gitops, tmp_path: Path) -> None:
    """A local checkout's untracked or ignored YAML naming the image is left as is (with a warning) by a
    bump that commits: the commit holds only the bump.  --no-commit patches the files on disk, all of them."""
    remote = make_bare_remote(tmp_path / "remotes", files=TWO_ENVS)
    checkout = remote.clone(tmp_path / "co")
    untracked = checkout / "scratch.yaml"
    untracked.write_text(f"image: {API}:1.0.0\n")
    (checkout / ".git" / "info" / "exclude").write_text("local-values.yaml\n")
    ignored = checkout / "local-values.yaml"
    ignored.write_text(f"image: {API}:0.9.0\n")
    args = ["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0", "-o", "json"]
    res = gitops(args + ([] if mode == "commit" else [mode]), env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    if mode == "--no-commit":
        assert report["files"] == ["local-values.yaml", "prod/app.yaml", "scratch.yaml", "staging/app.yaml"]
        return
    assert report["files"] == ["prod/app.yaml", "staging/app.yaml"]
    for name in ("local-values.yaml", "scratch.yaml"):
        assert f"warning: {name}: skipped (not tracked by git: a bump commit holds only tracked files)" in res.stderr
    assert untracked.read_text() == f"image: {API}:1.0.0\n" and ignored.read_text() == f"image: {API}:0.9.0\n"
    if mode == "commit":
        assert remote.changed_files() == ["prod/app.yaml", "staging/app.yaml"]
    assert git("status", "--porcelain", "--ignored", cwd=checkout).splitlines() == ["?? scratch.yaml",
                                                                                 "!! local-values.yaml"]


def test_no_commit_leaves_a_nested_repository_alone(gitops, tmp_path: Path) -> None:
    """An initialised submodule (or any clone inside the checkout) is another repository: --no-commit
    patched its files (`git status` then showed ` m sub`, and the superproject's `git checkout .` could
    not undo it), while a bump that commits never saw them."""
    checkout = tmp_path / "deploy"
    git("init", "--quiet", "-b", "main", str(checkout))
    (checkout / "app.yaml").write_text(TWO_ENVS["prod/app.yaml"])
    nested = checkout / "vendor" / "other"
    git("init", "--quiet", "-b", "main", str(nested))
    (nested / "app.yaml").write_text(TWO_ENVS["prod/app.yaml"])
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0", "--no-commit"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["app.yaml"]
    assert (nested / "app.yaml").read_text() == TWO_ENVS["prod/app.yaml"]
    assert f"{API}:2.0.0" in (checkout / "app.yaml").read_text()


def test_a_path_inside_a_nested_repository_is_refused(gitops, tmp_path: Path) -> None:
    """`--path` naming the nested repository (or a directory in it) got into it: --no-commit patched it."""
    checkout = tmp_path / "deploy"
    git("init", "--quiet", "-b", "main", str(checkout))
    nested = checkout / "vendor" / "other"
    git("init", "--quiet", "-b", "main", str(nested))
    (nested / "apps").mkdir()
    (nested / "apps" / "app.yaml").write_text(TWO_ENVS["prod/app.yaml"])
    for path in ("vendor/other", "vendor/other/apps"):
        res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0", "--no-commit",
                      "--path", path], env=no_identity_env(tmp_path))
        assert res.returncode == 2, res.stderr
        assert f"--path '{path}': inside another repository (vendor/other has its own .git)" in res.stderr
    assert (nested / "apps" / "app.yaml").read_text() == TWO_ENVS["prod/app.yaml"]
