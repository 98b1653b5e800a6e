"""`gitops tag` on clean, dirty, shallow and detached checkouts (real git, no engine needed)."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.services import GIT_ENV, commit_all, git

pytestmark = pytest.mark.integration


def make_repo(path: Path, commits: int = 1) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for i in range(commits):
        (path / "file.txt").write_text(f"version {i}\n")
        commit_all(path, f"commit {i}")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "app", commits=3)


def test_clean_checkout_prints_short_sha_only(gitops, repo: Path) -> None:
    res = gitops(["tag"], cwd=repo)
    assert res.returncode == 0, res.stderr
    assert res.stdout == git(repo, "rev-parse", "HEAD")[:7] + "\n"


def test_length_prefix_and_repo_option(gitops, repo: Path, tmp_path: Path) -> None:
    res = gitops(["tag", "--repo", str(repo), "--length", "12", "--prefix", "v2-"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "v2-" + git(repo, "rev-parse", "HEAD")[:12]


@pytest.mark.parametrize("length", ["6", "41"])
def test_length_out_of_range(gitops, repo: Path, length: str) -> None:
    res = gitops(["tag", "--length", length], cwd=repo)
    assert res.returncode == 2
    assert "--length" in res.stderr and res.stdout == ""


def test_tag_length_from_settings(gitops, repo: Path) -> None:
    (repo / "gitops.toml").write_text("tag_length = 10\n")
    commit_all(repo, "settings")
    assert len(gitops(["tag"], cwd=repo).stdout.strip()) == 10
    env_res = gitops(["tag"], cwd=repo, env={"GITOPS_TAG_LENGTH": "9"})
    assert len(env_res.stdout.strip()) == 9
    assert len(gitops(["tag", "--length", "8"], cwd=repo, env={"GITOPS_TAG_LENGTH": "9"}).stdout.strip()) == 8


def test_dirty_checkout_refused_and_lists_paths(gitops, repo: Path) -> None:
    (repo / "file.txt").write_text("changed\n")
    (repo / "new.txt").write_text("untracked\n")
    res = gitops(["tag"], cwd=repo)
    assert res.returncode == 4
    assert "file.txt" in res.stderr and "new.txt" in res.stderr
    assert res.stdout == ""


def test_dirty_listing_is_capped_at_ten(gitops, repo: Path) -> None:
    for i in range(15):
        (repo / f"extra{i:02}.txt").write_text("x\n")
    res = gitops(["tag"], cwd=repo)
    assert res.returncode == 4
    assert len(re.findall(r"extra\d\d\.txt", res.stderr)) == 10
    assert "extra09.txt and 5 more\n" in res.stderr


def test_dirty_listing_is_on_the_one_error_line(gitops, repo: Path) -> None:
    """The names are listed on the error line itself (not as literal `\\n  name` text), comma-separated,
    a name that needs it quoted as git quotes it."""
    for name in ("u1", "u2", "u 3", "e\x1b[31mred\nx"):
        (repo / name).write_text("x\n")
    res = gitops(["tag"], cwd=repo)
    assert res.returncode == 4 and res.stdout == ""
    error, hint = res.stderr.splitlines()
    assert error.endswith('; a tag must name one source state: "e\\033[31mred\\nx", u 3, u1, u2')
    assert error.startswith("error: ") and hint.startswith("hint: ")


def test_ignored_files_do_not_make_it_dirty(gitops, repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    commit_all(repo, "ignore logs")
    (repo / "debug.log").write_text("noise\n")
    res = gitops(["tag"], cwd=repo)
    assert res.returncode == 0, res.stderr


def test_allow_dirty_tags_differ_per_state(gitops, repo: Path) -> None:
    sha7 = git(repo, "rev-parse", "HEAD")[:7]
    (repo / "file.txt").write_text("state A\n")
    a = gitops(["tag", "--allow-dirty"], cwd=repo).stdout.strip()
    a_again = gitops(["tag", "--allow-dirty"], cwd=repo).stdout.strip()
    (repo / "file.txt").write_text("state B\n")
    b = gitops(["tag", "--allow-dirty"], cwd=repo).stdout.strip()
    (repo / "file.txt").write_text("state A\n")
    (repo / "other.txt").write_text("untracked\n")
    c = gitops(["tag", "--allow-dirty"], cwd=repo).stdout.strip()
    for tag in (a, b, c):
        assert re.fullmatch(rf"{sha7}-dirty-[0-9a-f]{{8}}", tag), tag
    assert a == a_again
    assert len({a, b, c}) == 3


def test_a_clean_tag_reads_the_submodules_indexes_in_one_git_call(tmp_path: Path) -> None:
    """The clean-tree check ran `git ls-files` in every checked-out submodule, looking for flagged files
    (assume-unchanged, skip-worktree) that git status does not see: one git process a submodule, on top of
    git status's own.  One `git ls-files --recurse-submodules` now finds them all; a flagged change in a
    submodule is still dirty."""
    from tests.fixtures.cli import run_gitops

    app = make_repo(tmp_path / "app")
    for i in range(4):
        sub = make_repo(tmp_path / f"sub{i}")
        git(app, "-c", "protocol.file.allow=always", "submodule", "add", "-q", f"file://{sub}", f"vendor/s{i}")
    commit_all(app, "submodules")
    trace = tmp_path / "trace"

    def ls_files_calls() -> int:
        res = run_gitops(["tag"], cwd=app, env={"GIT_TRACE": str(trace)})
        assert res.returncode == 0, res.stderr
        calls = [line for line in trace.read_text().splitlines() if "built-in: git ls-files" in line]
        trace.unlink()
        return len(calls)

    assert ls_files_calls() == 2  # the top index, then every submodule's in one call (was 1 + 4)
    git(app / "vendor" / "s2", "update-index", "--assume-unchanged", "file.txt")
    (app / "vendor" / "s2" / "file.txt").write_text("local\n")
    res = run_gitops(["tag"], cwd=app)
    assert res.returncode == 4 and "vendor/s2" in res.stderr, res.stderr


def test_the_dirty_hash_reads_a_huge_untracked_file_in_chunks(repo: Path) -> None:
    """The dirty hash read each untracked file whole into memory: a 768 MiB one (a dataset, a core dump)
    took 768 MiB more and failed with a MemoryError (exit 70) under a 512 MiB address-space limit, as a
    CI container's memory limit would.  Its content is hashed in chunks, all of it: its last byte counts."""
    import resource

    from tests.fixtures.cli import _gitops_exe, gitops_env

    big = repo / "data.bin"
    with open(big, "wb") as file:  # sparse: no disk space, but read as 768 MiB of zeros
        file.truncate(768 << 20)

    def run() -> subprocess.CompletedProcess[str]:
        limit = 512 << 20
        return subprocess.run([_gitops_exe(), "tag", "--allow-dirty"], cwd=repo, env=gitops_env(),
                              text=True, capture_output=True, timeout=300,
                              preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))

    first = run()
    assert first.returncode == 0, first.stderr
    sha7 = git(repo, "rev-parse", "HEAD")[:7]
    assert re.fullmatch(rf"{sha7}-dirty-[0-9a-f]{{8}}", first.stdout.strip()), first.stdout
    with open(big, "r+b") as file:
        file.seek((768 << 20) - 1)
        file.write(b"x")
    second = run()
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() != first.stdout.strip()


def test_the_dirty_hash_does_not_depend_on_the_users_diff_settings(gitops, repo: Path, tmp_path: Path) -> None:
    """diff.noprefix (and diff.algorithm, diff.context, a diff driver's funcname...) changed the diff the hash
    was taken of: the same dirty state got another tag."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
    (repo / "file.txt").write_text("".join(f"line {i}\n" for i in range(40)))
    commit_all(repo, "long file")
    (repo / ".gitattributes").write_text("*.txt diff=words\n")
    (repo / "file.txt").write_text("".join(f"line {i}\n" if i != 20 else "changed\n" for i in range(40)))
    (repo / "new.txt").write_text("untracked\n")
    objects = sorted((repo / ".git" / "objects").rglob("*"))
    first = gitops(["tag", "--allow-dirty"], cwd=repo, env=env)
    assert first.returncode == 0, first.stderr
    assert sorted((repo / ".git" / "objects").rglob("*")) == objects  # the hash writes nothing into the repo
    for key, value in (("diff.noprefix", "true"), ("diff.mnemonicPrefix", "true"), ("diff.algorithm", "patience"),
                       ("diff.context", "10"), ("diff.words.xfuncname", "^line 1.*$"), ("core.quotePath", "false")):
        subprocess.run(["git", "config", "--file", str(home / ".gitconfig"), key, value], check=True)
    again = gitops(["tag", "--allow-dirty"], cwd=repo, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout


def test_shallow_clone(gitops, repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "shallow"
    res = subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
                         capture_output=True, text=True, env={**GIT_ENV, "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert git(clone, "rev-parse", "--is-shallow-repository") == "true"
    out = gitops(["tag"], cwd=clone)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == git(repo, "rev-parse", "HEAD")[:7]


def test_shallow_clone_with_sha_of_missing_commit(gitops, repo: Path, tmp_path: Path) -> None:
    """CI passes the PR head SHA, which a shallow merge checkout may not contain."""
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)], check=True,
                   env={**GIT_ENV, "PATH": "/usr/bin:/bin"})
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    out = gitops(["tag", "--sha", first], cwd=clone)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == first[:7]


def test_shallow_clone_refuses_a_short_sha_it_does_not_have(gitops, repo: Path, tmp_path: Path) -> None:
    """Only a full 40-digit SHA is trusted without the commit: a short one could be any commit's."""
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)], check=True,
                   env={**GIT_ENV, "PATH": "/usr/bin:/bin"})
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    out = gitops(["tag", "--sha", first[:7]], cwd=clone)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"error: --sha '{first[:7]}': no such commit in " in out.stderr
    assert "hint: pass the full 40-digit SHA" in out.stderr and out.stdout == ""


def test_detached_head(gitops, repo: Path) -> None:
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    git(repo, "checkout", "-q", "--detach", first)
    res = gitops(["tag"], cwd=repo)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == first[:7]


def test_sha_override(gitops, repo: Path) -> None:
    parent = git(repo, "rev-parse", "HEAD~1")
    res = gitops(["tag", "--sha", parent[:10]], cwd=repo)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == parent[:7]
    bad = gitops(["tag", "--sha", "not-a-sha"], cwd=repo)
    assert bad.returncode == 2 and "--sha" in bad.stderr


def test_not_a_git_checkout(gitops, tmp_path: Path) -> None:
    res = gitops(["tag"], cwd=tmp_path)
    assert res.returncode == 4
    assert "not a git checkout" in res.stderr


def colliding_commits(repo: Path) -> tuple[str, str]:
    """Write two commit objects whose SHAs share their first 7 hex digits (a birthday search)."""
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    parent = git(repo, "rev-parse", "HEAD")
    seen: dict[str, bytes] = {}
    for i in range(2_000_000):
        body = (f"tree {tree}\nparent {parent}\nauthor T <t@example.com> 1700000000 +0000\n"
                f"committer T <t@example.com> 1700000000 +0000\n\nattempt {i}\n").encode()
        sha = hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()
        if sha[:7] in seen:
            shas = []
            for content in (seen[sha[:7]], body):
                res = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=repo,
                                     input=content, capture_output=True, check=True)
                shas.append(res.stdout.decode().strip())
            return shas[0], shas[1]
        seen[sha[:7]] = body
    raise AssertionError("no 7-digit collision found")


def test_ambiguous_short_sha_is_lengthened(gitops, repo: Path) -> None:
    first, second = colliding_commits(repo)
    assert first[:7] == second[:7] and first != second
    res = gitops(["tag", "--sha", first], cwd=repo)
    assert res.returncode == 0, res.stderr
    tag = res.stdout.strip()
    assert len(tag) > 7 and first.startswith(tag) and not second.startswith(tag)


def test_github_pull_request_merge_checkout_is_refused(gitops, repo: Path, tmp_path: Path) -> None:
    """The CI tag rule applies to `gitops tag` too: a PR build that checked out a merge commit is refused."""
    import json

    head = git(repo, "rev-parse", "HEAD")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"sha": "f" * 40}}}))
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": head,
           "GITHUB_EVENT_PATH": str(event)}
    res = gitops(["tag"], cwd=repo, env=env)
    assert res.returncode == 2 and res.stdout == ""
    assert "merge commit" in res.stderr and "--sha" in res.stderr
    res = gitops(["tag", "--sha", head], cwd=repo, env=env)  # naming the build explicitly works
    assert res.returncode == 0 and res.stdout.strip() == head[:7]
    event.write_text(json.dumps({"pull_request": {"head": {"sha": head}}}))  # the PR head checked out
    res = gitops(["tag"], cwd=repo, env=env)
    assert res.returncode == 0 and res.stdout.strip() == head[:7]


def test_github_pull_request_target_build_of_the_base_head_is_tagged(gitops, repo: Path, tmp_path: Path) -> None:
    """pull_request_target: actions/checkout checks out the base branch's head, GITHUB_SHA, an ordinary
    commit.  It was refused as "this github pull-request build checked out a merge commit"."""
    import json

    head = git(repo, "rev-parse", "main")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"sha": "f" * 40}}}))
    env = {"GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_EVENT_NAME": "pull_request_target",
           "GITHUB_EVENT_PATH": str(event), "GITHUB_SHA": head, "GITHUB_REF": "refs/heads/main"}
    res = gitops(["tag"], cwd=repo, env=env)
    assert res.returncode == 0 and res.stdout.strip() == head[:7], res.stderr
    assert res.stderr == (f"warning: this pull_request_target build checked out the head of main, {head[:12]} "
                          f"(GITHUB_SHA), not the pull request's head {'f' * 12}: tagging the checkout (what "
                          "is built)\n")
    # another commit than the base head or the PR head: refused, and not called a merge commit
    git(repo, "checkout", "-q", "HEAD~1")
    res = gitops(["tag"], cwd=repo, env=env)
    assert res.returncode == 2 and res.stdout == ""
    assert "merge commit" not in res.stderr and f"(pull_request.head.sha {'f' * 40})" in res.stderr


def pr_merge_repo(path: Path) -> tuple[Path, str, str]:
    """main and a PR branch `feat` merged by a merge commit on a detached HEAD (as GitHub's refs/pull/N/merge
    is): (repo, the PR head, the merge commit), the merge commit checked out."""
    repo = make_repo(path)
    git(repo, "checkout", "-q", "-b", "feat")
    (repo / "feat.txt").write_text("feature\n")
    pr_head = commit_all(repo, "feature")
    git(repo, "checkout", "-q", "main")
    (repo / "main.txt").write_text("main moved on\n")
    commit_all(repo, "main moved on")
    git(repo, "checkout", "-q", "--detach")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge feat", "feat")
    return repo, pr_head, git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize("event", ["pull_request", "pull_request_review", "pull_request_review_comment"])
def test_github_pr_review_events_merge_checkout_is_refused(gitops, tmp_path: Path, event: str) -> None:
    """pull_request_review(_comment) runs check out refs/pull/N/merge like pull_request: the synthetic merge
    commit was tagged silently (exit 0, its SHA on stdout)."""
    import json

    repo, pr_head, merge = pr_merge_repo(tmp_path / "app")
    payload = tmp_path / "event.json"
    payload.write_text(json.dumps({"pull_request": {"head": {"sha": pr_head, "ref": "feat"}}}))
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event, "GITHUB_SHA": merge,
           "GITHUB_REF": "refs/pull/1/merge", "GITHUB_EVENT_PATH": str(payload)}
    res = gitops(["tag"], cwd=repo, env=env)
    assert (res.returncode, res.stdout) == (2, ""), res.stderr
    assert res.stderr.splitlines() == [
        f"error: refusing to tag {merge[:12]}: this github pull-request build checked out a merge commit, not the "
        f"pull request's own commit (the pull request's head is {pr_head}); its SHA names no commit anyone can "
        "find later",
        "hint: check out the PR head (actions/checkout with `ref: ${{ github.event.pull_request.head.sha }}`) or "
        "name the build yourself with --sha"]
    git(repo, "checkout", "-q", pr_head)  # the PR head checked out: its tag
    res = gitops(["tag"], cwd=repo, env=env)
    assert (res.returncode, res.stdout, res.stderr) == (0, pr_head[:7] + "\n", "")


def test_github_merged_pull_request_tags_the_merge_commit_on_its_branch(gitops, tmp_path: Path) -> None:
    """`pull_request` `closed` of a merged PR (deploy on merge): GITHUB_REF is refs/heads/main and GITHUB_SHA
    the real merge commit on main, which actions/checkout checks out.  It was refused as a synthetic merge
    commit "no one can find later", with a hint to build the PR head."""
    import json

    repo, pr_head, merge = pr_merge_repo(tmp_path / "app")
    git(repo, "checkout", "-q", "-B", "main")  # the merge is main's head now
    payload = tmp_path / "event.json"
    payload.write_text(json.dumps({"action": "closed", "pull_request": {
        "merged": True, "merge_commit_sha": merge, "head": {"sha": pr_head, "ref": "feat"}}}))
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": merge,
           "GITHUB_REF": "refs/heads/main", "GITHUB_BASE_REF": "main", "GITHUB_HEAD_REF": "feat",
           "GITHUB_EVENT_PATH": str(payload)}
    res = gitops(["tag"], cwd=repo, env=env)
    assert (res.returncode, res.stdout, res.stderr) == (0, merge[:7] + "\n", "")
    # closed without a merge: GITHUB_REF stays the merge branch, its merge commit is refused as before
    res = gitops(["tag"], cwd=repo, env={**env, "GITHUB_REF": "refs/pull/1/merge"})
    assert (res.returncode, res.stdout) == (2, "") and "checked out a merge commit" in res.stderr


def test_jenkins_pull_request_checkout_other_than_git_commit(gitops, repo: Path) -> None:
    """HEAD != GIT_COMMIT in a Jenkins PR build (HEAD no merge): it was refused as "checked out a merge
    commit"; the message now says what is so."""
    head, previous = git(repo, "rev-parse", "HEAD"), git(repo, "rev-parse", "HEAD~1")
    env = {"JENKINS_URL": "http://j/", "BUILD_URL": "http://j/job/app/PR-5/3/", "GIT_COMMIT": previous,
           "GIT_BRANCH": "PR-5", "BRANCH_NAME": "PR-5", "CHANGE_ID": "5", "CHANGE_BRANCH": "pr-branch"}
    res = gitops(["tag"], cwd=repo, env=env)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == [
        f"error: refusing to tag {head[:12]}: the checkout is not the commit this jenkins pull-request build "
        f"is for (GIT_COMMIT {previous})",
        f"hint: check out {previous[:12]} or name the build yourself with --sha"]


def test_subdirectory_names_the_config_of_the_app_root_it_does_not_read(gitops, repo: Path) -> None:
    """A directory is an app of its own (a parent's settings would build another app): in a subdirectory
    the root's config is not read, and a warning names it, so a different tag never comes silently."""
    (repo / "gitops.toml").write_text("tag_length = 13\n")
    (repo / "src" / "pkg").mkdir(parents=True)
    (repo / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    commit_all(repo, "config")
    head = git(repo, "rev-parse", "HEAD")
    at_root = gitops(["tag"], cwd=repo)
    in_sub = gitops(["tag"], cwd=repo / "src" / "pkg")
    assert at_root.returncode == in_sub.returncode == 0, at_root.stderr + in_sub.stderr
    assert at_root.stdout == head[:13] + "\n" and at_root.stderr == ""
    assert in_sub.stdout == head[:7] + "\n"
    assert f"{repo / 'gitops.toml'} is not read" in in_sub.stderr and f"--repo {repo}" in in_sub.stderr
    assert gitops(["tag", "--repo", str(repo)], cwd=repo / "src" / "pkg").stdout == head[:13] + "\n"


@pytest.mark.parametrize("verb", ["tag", "build", "test", "publish", "build-and-bump"])
def test_a_repo_that_is_no_directory_is_its_error_alone(gitops, repo: Path, verb: str) -> None:
    """`cd app; gitops tag --repo gitops.toml` named app/gitops.toml in a warning that a parent's config
    is not read (the file's directory was searched as the app's parent) before the --repo error."""
    (repo / "app").mkdir()
    (repo / "app" / "gitops.toml").write_text("tag_length = 9\n")
    commit_all(repo, "app config")
    for given, why in (("gitops.toml", "not a directory"), ("missing", "no such directory")):
        res = gitops([verb, "--repo", given], cwd=repo / "app")
        assert (res.returncode, res.stdout, res.stderr) == (2, "", f"error: {given}: {why}\n")


def test_bad_config_values_name_the_file_key(gitops, repo: Path) -> None:
    (repo / "gitops.toml").write_text("tag_length = 3\n")
    res = gitops(["tag"], cwd=repo)
    assert res.returncode == 2 and "gitops.toml: tag_length = 3: must be between 7 and 40" in res.stderr
    assert "--length" not in res.stderr
    (repo / "gitops.toml").write_text('tag_prefix = "v/"\n')
    res = gitops(["tag"], cwd=repo)
    assert res.returncode == 2 and "gitops.toml: tag_prefix = 'v/'" in res.stderr
    assert "invalid tag" not in res.stderr
