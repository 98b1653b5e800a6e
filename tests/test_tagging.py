"""Tag derivation (gitops_cli.tagging) on real git repositories in tmp."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_cli.dockerignore import BuildContext
from gitops_cli.errors import DirtyTreeError, UsageError
from gitops_cli.tagging import check_unchanged, derive_tag, dirty_hash, dirty_paths, left_out, listed_paths
from tests.fixtures.services import commit_all, git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "a.txt").write_text("a\n")
    (path / "b.txt").write_text("b\n")
    commit_all(path, "first")
    return path


def test_clean(repo: Path) -> None:
    info = derive_tag(repo)
    head = git(repo, "rev-parse", "HEAD")
    assert info.tag == head[:7] and info.sha == head and info.short == head[:7]
    assert not info.dirty and info.repo == repo.resolve()


def test_subdirectory_uses_toplevel(repo: Path) -> None:
    (repo / "sub").mkdir()
    (repo / "sub" / "c.txt").write_text("c\n")
    commit_all(repo, "sub")
    assert derive_tag(repo / "sub").repo == repo.resolve()


def test_prefix_and_length(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert derive_tag(repo, length=40, prefix="v1-").tag == "v1-" + head
    with pytest.raises(UsageError):
        derive_tag(repo, length=6)
    with pytest.raises(UsageError):
        derive_tag(repo, length=41)


def test_invalid_prefix_makes_invalid_tag(repo: Path) -> None:
    from gitops_cli.errors import InvalidReferenceError

    with pytest.raises(InvalidReferenceError):
        derive_tag(repo, prefix="bad/")


def test_dirty_paths_cover_modified_staged_untracked_renamed(repo: Path) -> None:
    (repo / "a.txt").write_text("changed\n")
    git(repo, "mv", "b.txt", "renamed.txt")
    (repo / "new dir").mkdir()
    (repo / "new dir" / "n.txt").write_text("n\n")
    assert sorted(dirty_paths(repo)) == ["a.txt", "new dir/n.txt", "renamed.txt"]


def test_dirty_refused_with_paths(repo: Path) -> None:
    (repo / "a.txt").write_text("changed\n")
    with pytest.raises(DirtyTreeError, match="a.txt"):
        derive_tag(repo)


def test_dirty_refusal_names_the_paths_on_its_one_line(repo: Path) -> None:
    for name in ("u1", "u2", "u 3", "e\x1b[1mz\n"):
        (repo / name).write_text("x\n")
    with pytest.raises(DirtyTreeError) as exc:
        derive_tag(repo)
    assert "\n" not in exc.value.message and "\x1b" not in exc.value.message
    assert exc.value.message.endswith('a tag must name one source state: "e\\033[1mz\\n", u 3, u1, u2')


def test_listed_paths_quotes_what_would_blur_the_list_and_stops_at_ten() -> None:
    assert listed_paths(["a, b", " lead", "trail ", 'q"', "ok"]) == '"a, b", " lead", "trail ", "q\\"", ok'
    many = [f"f{i:02}" for i in range(13)]
    assert listed_paths(many) == ", ".join(many[:10]) + " and 3 more"
    assert listed_paths(many[:10]) == ", ".join(many[:10])


def test_dirty_hash_depends_on_content_not_only_names(repo: Path) -> None:
    (repo / "u.txt").write_text("one\n")
    h1 = dirty_hash(repo)
    (repo / "u.txt").write_text("two\n")
    h2 = dirty_hash(repo)
    (repo / "u.txt").write_text("one\n")
    assert dirty_hash(repo) == h1 != h2


def test_dirty_hash_depends_on_an_untracked_files_executable_bit(repo: Path) -> None:
    """A COPY keeps the bit: the same content as 644 and as 755 is two images, so two tags."""
    script = repo / "run.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    h1 = dirty_hash(repo)
    script.chmod(0o755)
    assert dirty_hash(repo) != h1


def _add_submodule(repo: Path, tmp_path: Path) -> None:
    """A submodule `lib` (one file, l.txt) added to `repo` and committed."""
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    (lib / "l.txt").write_text("lib\n")
    commit_all(lib, "lib")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    commit_all(repo, "add lib")


def test_dirty_hash_sees_changes_inside_a_submodule(repo: Path, tmp_path: Path) -> None:
    _add_submodule(repo, tmp_path)
    assert dirty_paths(repo) == []
    (repo / "lib" / "l.txt").write_text("state one\n")  # git diff HEAD shows only "...-dirty"
    one = derive_tag(repo, allow_dirty=True).tag
    (repo / "lib" / "l.txt").write_text("state two\n")
    two = derive_tag(repo, allow_dirty=True).tag
    (repo / "lib" / "l.txt").write_text("lib\n")
    (repo / "lib" / "untracked.txt").write_text("u1\n")  # an untracked file in the submodule
    three = dirty_hash(repo)
    (repo / "lib" / "untracked.txt").write_text("u2\n")
    assert len({one, two, three, dirty_hash(repo)}) == 4
    (repo / "lib" / "untracked.txt").write_text("u1\n")
    assert dirty_hash(repo) == three  # the same state, the same hash


def test_dirty_hash_sees_the_content_of_an_untracked_nested_repo(repo: Path) -> None:
    nested = repo / "vendor" / "nested"
    nested.mkdir(parents=True)
    git(nested, "init", "-q", "-b", "main")
    (nested / "n.txt").write_text("one\n")
    assert dirty_paths(repo) == ["vendor/nested/"]
    h1 = dirty_hash(repo)
    (nested / "n.txt").write_text("two\n")
    h2 = dirty_hash(repo)
    commit_all(nested, "nested commit")  # committed inside: its HEAD and clean tree count
    h3 = dirty_hash(repo)
    (nested / "n.txt").write_text("three\n")
    assert len({h1, h2, h3, dirty_hash(repo)}) == 4


def test_dirty_hash_of_files_in_an_untracked_directory(repo: Path) -> None:
    (repo / "newdir" / "deep").mkdir(parents=True)
    (repo / "newdir" / "deep" / "f.txt").write_text("one\n")
    (repo / "newdir" / ".gitignore").write_text("ignored.txt\n")
    h1 = dirty_hash(repo)
    (repo / "newdir" / "ignored.txt").write_text("anything\n")  # ignored: not part of the state
    assert dirty_hash(repo) == h1
    (repo / "newdir" / "deep" / "f.txt").write_text("two\n")
    assert dirty_hash(repo) != h1


def test_allow_dirty_tag(repo: Path) -> None:
    (repo / "a.txt").write_text("changed\n")
    info = derive_tag(repo, allow_dirty=True)
    assert info.dirty and info.tag.startswith(info.short + "-dirty-") and len(info.tag) == 7 + 7 + 8


def test_sha_override(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "a.txt").write_text("second\n")
    commit_all(repo, "second")
    assert derive_tag(repo, sha=first[:8]).sha == first
    assert derive_tag(repo, sha=first.upper()).tag == first[:7]
    unknown = "f" * 40
    with pytest.raises(UsageError, match="no such commit"):  # a full clone: an unknown SHA is a mistake
        derive_tag(repo, sha=unknown)
    with pytest.raises(UsageError, match="no such commit"):
        derive_tag(repo, sha="ffffffff")
    blob = git(repo, "rev-parse", "HEAD:a.txt")
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    with pytest.raises(UsageError, match="names a blob, not a commit") as info:
        derive_tag(repo, sha=blob)
    assert info.value.exit_code == 2
    with pytest.raises(UsageError, match="names a tree, not a commit"):
        derive_tag(repo, sha=tree)


def test_unknown_full_sha_is_trusted_in_a_shallow_clone(repo: Path, tmp_path: Path) -> None:
    (repo / "a.txt").write_text("second\n")
    commit_all(repo, "second")
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    assert derive_tag(clone, sha="f" * 40).tag == "fffffff"
    with pytest.raises(UsageError, match="hexadecimal"):
        derive_tag(repo, sha="HEAD~1")


def test_a_sha256_repositorys_full_commit_id_is_taken(tmp_path: Path) -> None:
    """`--sha` refused a full SHA-256 commit id (64 digits: "4 to 40 digits", exit 2); now it names the
    commit, and an unknown full one (64 digits) is trusted in a shallow clone as a SHA-1 one is."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main", "--object-format=sha256")
    (repo / "a.txt").write_text("a\n")
    commit_all(repo, "first")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "a.txt").write_text("second\n")
    commit_all(repo, "second")
    assert len(first) == 64
    info = derive_tag(repo, sha=first)
    assert info.sha == first and info.tag == first[:7]
    with pytest.raises(UsageError, match="no such commit") as caught:  # a full clone: a mistake
        derive_tag(repo, sha="f" * 64)
    assert caught.value.hint == "fetch the commit (git fetch origin SHA)"
    with pytest.raises(UsageError, match="no such commit") as caught:
        derive_tag(repo, sha="f" * 40)
    assert caught.value.hint == "pass the full 64-digit SHA"
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    assert derive_tag(clone, sha="f" * 64).tag == "fffffff"
    with pytest.raises(UsageError, match="no such commit"):  # 40 digits: no full id there
        derive_tag(clone, sha="f" * 40)
    with pytest.raises(UsageError, match="hexadecimal"):
        derive_tag(repo, sha="f" * 65)


def test_a_sha_longer_than_the_repositorys_ids_is_named(repo: Path) -> None:
    with pytest.raises(UsageError, match="64 digits, a commit id of .* has 40"):
        derive_tag(repo, sha="f" * 64)


def test_no_commit_yet(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(DirtyTreeError, match="no commit"):
        derive_tag(tmp_path)


def test_not_a_checkout(tmp_path: Path) -> None:
    with pytest.raises(DirtyTreeError, match="not a git checkout"):
        derive_tag(tmp_path / ".." / tmp_path.name)
    with pytest.raises(UsageError, match="missing: no such directory"):  # a bad --repo: exit 2
        derive_tag(tmp_path / "missing")
    (tmp_path / "file").write_text("x")  # GitPython would run git in the current directory (a checkout)
    with pytest.raises(UsageError, match="file: not a directory"):
        derive_tag(tmp_path / "file")


def _feature_and_moved_main(repo: Path) -> None:
    """A `feature` branch with one commit, and `main` moved on since (checked out)."""
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "feature.txt").write_text("f\n")
    commit_all(repo, "feature")
    git(repo, "checkout", "-q", "main")
    (repo / "other.txt").write_text("o\n")
    commit_all(repo, "target moved")


def test_jenkins_pr_merge_on_the_agent_is_refused_for_every_verb(repo: Path) -> None:
    """derive_tag (gitops tag, build and build-and-bump) refuses a Jenkins PR build's agent-local merge."""
    _feature_and_moved_main(repo)
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge PR-5", "feature")
    merge = git(repo, "rev-parse", "HEAD")
    pr = {"JENKINS_URL": "https://ci.example/", "CHANGE_ID": "5", "BRANCH_NAME": "PR-5", "GIT_COMMIT": merge}
    with pytest.raises(UsageError, match="merge commit made on the agent"):
        derive_tag(repo, environ=pr)
    # --sha names the build; a branch build of a merge commit is an ordinary commit
    assert derive_tag(repo, environ=pr, sha=git(repo, "rev-parse", "feature")).sha != merge
    branch = {"JENKINS_URL": "https://ci.example/", "BRANCH_NAME": "main", "GIT_COMMIT": merge}
    assert derive_tag(repo, environ=branch).sha == merge


def test_jenkins_pr_head_that_is_itself_a_merge_on_the_remote_is_accepted(repo: Path, tmp_path: Path) -> None:
    """The PR branch merged its target ("Update branch"): its head is a merge commit, but it is on the
    remote (the "current pull request revision" strategy checks it out) -- not the agent's own merge."""
    _feature_and_moved_main(repo)
    git(repo, "checkout", "-q", "feature")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge main into feature", "main")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "feature:refs/heads/PR-7")
    git(repo, "fetch", "-q", "origin")  # refs/remotes/origin/PR-7 now holds the PR head
    head = git(repo, "rev-parse", "HEAD")
    pr = {"JENKINS_URL": "https://ci.example/", "CHANGE_ID": "7", "BRANCH_NAME": "PR-7", "GIT_COMMIT": head}
    assert derive_tag(repo, environ=pr).sha == head


def index_flags(repo: Path) -> str:
    return git(repo, "ls-files", "-v", "--stage")


@pytest.mark.parametrize("flag", ["--skip-worktree", "--assume-unchanged"])
def test_a_changed_file_marked_to_hide_its_changes_is_dirty(repo: Path, flag: str) -> None:
    """`git update-index --skip-worktree` (or --assume-unchanged), then a local edit: git status shows
    nothing, but the engine copies the edit into an image labelled as the commit.  Refused, naming the
    file and why git status does not show it; the user's index keeps its flags."""
    git(repo, "update-index", flag, "a.txt")
    assert dirty_paths(repo) == []  # flagged but unchanged: clean
    (repo / "a.txt").write_text("LOCAL-CREDS\n")
    flags = index_flags(repo)
    assert git(repo, "status", "--porcelain") == ""
    assert dirty_paths(repo) == ["a.txt"]
    with pytest.raises(DirtyTreeError) as exc:
        derive_tag(repo)
    assert exc.value.message.endswith("source state: a.txt")
    assert "a.txt: marked assume-unchanged or skip-worktree (`git ls-files -v`)" in (exc.value.hint or "")
    one = derive_tag(repo, allow_dirty=True).tag
    (repo / "a.txt").write_text("OTHER-CREDS\n")
    assert derive_tag(repo, allow_dirty=True).tag != one  # the dirty hash sees the flagged file too
    (repo / "a.txt").unlink()  # deleted: a change too (no sparse checkout)
    assert dirty_paths(repo) == ["a.txt"]
    assert index_flags(repo) == flags  # read-only: the flags are cleared on a copy of the index


def test_an_executable_bit_hidden_by_core_filemode_false_is_dirty(repo: Path) -> None:
    git(repo, "config", "core.fileMode", "false")
    (repo / "a.txt").chmod(0o755)
    assert git(repo, "status", "--porcelain") == ""
    assert dirty_paths(repo) == ["a.txt"]
    with pytest.raises(DirtyTreeError) as exc:
        derive_tag(repo)
    assert "a.txt: executable bit changed, which `git status` does not show under core.fileMode=false" in (
        exc.value.hint or "")
    (repo / "b.txt").write_text("changed\n")
    executable = dirty_hash(repo)
    (repo / "a.txt").chmod(0o644)
    assert dirty_paths(repo) == ["b.txt"] and dirty_hash(repo) != executable
    assert git(repo, "config", "core.fileMode") == "false"


def test_a_file_system_without_executable_bits_leaves_them_to_core_filemode(repo: Path) -> None:
    """vfat or WSL's /mnt/c show every file executable, and git makes such repositories with core.fileMode
    false: every file would differ from the index.  Told by git's HEAD file, which git never makes
    executable: the bits are left to core.fileMode there."""
    git(repo, "config", "core.fileMode", "false")
    for path in [*repo.rglob("*")]:
        if path.is_file():
            path.chmod(0o755)  # as such a file system shows them, .git/HEAD included
    assert dirty_paths(repo) == []
    assert derive_tag(repo).tag == git(repo, "rev-parse", "--short=7", "HEAD")


def test_files_a_sparse_checkout_leaves_out_are_no_change(repo: Path) -> None:
    (repo / "app").mkdir()
    (repo / "app" / "main.txt").write_text("main\n")
    (repo / "other").mkdir()
    (repo / "other" / "o.txt").write_text("o\n")
    commit_all(repo, "dirs")
    git(repo, "sparse-checkout", "set", "app")
    assert not (repo / "other" / "o.txt").exists() and "S other/o.txt" in git(repo, "ls-files", "-v")
    assert dirty_paths(repo) == []
    assert not derive_tag(repo).dirty
    # ... to git, and to a build whose context does not hold them (the app's directory)
    assert not derive_tag(repo, context=lambda: BuildContext.load(str(repo / "app"), None)).dirty


def test_files_a_sparse_checkout_leaves_out_that_the_build_would_send_are_refused(repo: Path) -> None:
    """`COPY . /src/` from a sparse checkout: the image lacked the files left out, yet was tagged (and
    labelled) as the commit, and a full checkout of it then found it already published.  Refused (exit 4,
    --allow-dirty too) when the build context would send them; not when .dockerignore leaves them out."""
    (repo / "conf").mkdir()
    (repo / "conf" / "settings").write_text("x=1\n")
    (repo / "Dockerfile").write_text("FROM scratch\nCOPY . /src/\n")
    commit_all(repo, "conf")
    git(repo, "sparse-checkout", "set", "--no-cone", "/*", "!/conf/")
    assert not (repo / "conf").exists() and dirty_paths(repo) == []
    context = BuildContext.load(str(repo), None)
    assert left_out(repo, lambda: context) == ["conf/settings"]
    for allow_dirty in (False, True):
        with pytest.raises(DirtyTreeError) as exc:
            derive_tag(repo, allow_dirty=allow_dirty, context=lambda: context)
        assert exc.value.exit_code == 4
        assert exc.value.message == (f"{repo.resolve()}: the sparse checkout leaves out files the build context "
                                     "would send: conf/settings; the image would lack them under the commit's tag")
        assert "git sparse-checkout disable" in (exc.value.hint or "")
    assert not derive_tag(repo).dirty  # no build context (`gitops tag`): not looked at
    (repo / ".dockerignore").write_text("conf\n")  # untracked, and left out of the build itself
    assert left_out(repo, lambda: BuildContext.load(str(repo), None)) == []
    git(repo, "sparse-checkout", "disable")
    (repo / ".dockerignore").unlink()
    assert left_out(repo, lambda: BuildContext.load(str(repo), None)) == []


def test_the_build_context_is_read_only_when_a_sparse_checkout_leaves_files_out(repo: Path) -> None:
    """derive_tag's `context` loads the build context (reads and compiles .dockerignore) only when a sparse
    checkout leaves some file out: a full checkout, or a sparse one leaving nothing out, never reads it."""
    loads: list[str] = []

    def load() -> BuildContext:
        loads.append("loaded")
        return BuildContext.load(str(repo), None)

    assert not derive_tag(repo, context=load).dirty and loads == []
    (repo / "conf").mkdir()
    (repo / "conf" / "settings").write_text("x=1\n")
    commit_all(repo, "conf")
    git(repo, "sparse-checkout", "set", "--no-cone", "/*")  # sparse, every file in it
    assert left_out(repo, load) == [] and loads == []
    git(repo, "sparse-checkout", "set", "--no-cone", "/*", "!/conf/")
    assert left_out(repo, load) == ["conf/settings"] and loads == ["loaded"]


@pytest.mark.parametrize("flag", ["--assume-unchanged", "--skip-worktree"])
def test_a_flagged_change_inside_a_submodule_names_the_submodule(flag: str, repo: Path, tmp_path: Path) -> None:
    _add_submodule(repo, tmp_path)
    git(repo / "lib", "update-index", flag, "l.txt")
    (repo / "lib" / "l.txt").write_text("local\n")
    assert git(repo, "status", "--porcelain", "--ignore-submodules=none") == ""
    assert dirty_paths(repo) == ["lib"]
    with pytest.raises(DirtyTreeError) as exc:
        derive_tag(repo)
    hint = exc.value.hint or ""
    assert "lib: a file inside is marked assume-unchanged or skip-worktree" in hint
    assert "executable bit" not in hint  # core.fileMode is true, and no bit changed


def test_a_flagged_change_inside_an_inactive_submodule_names_the_submodule(repo: Path, tmp_path: Path) -> None:
    """A checked-out submodule git does not count as active (submodule.<name>.active false): `git ls-files
    --recurse-submodules` does not read its index, so its flagged files are not listed; it may still hide a
    change (dirty_paths looks into it)."""
    _add_submodule(repo, tmp_path)
    git(repo, "config", "submodule.lib.active", "false")
    assert "lib/l.txt" not in git(repo, "ls-files", "--recurse-submodules")  # not looked into
    git(repo / "lib", "update-index", "--assume-unchanged", "l.txt")
    (repo / "lib" / "l.txt").write_text("local\n")
    assert dirty_paths(repo) == ["lib"]
    with pytest.raises(DirtyTreeError, match="lib"):
        derive_tag(repo)


def test_check_unchanged_refuses_a_state_changed_since_it_was_tagged(repo: Path) -> None:
    info = derive_tag(repo)
    check_unchanged(repo, info.state, "the test command 'true'", info.tag)  # nothing changed
    (repo / "report.xml").write_text("<x/>\n")
    with pytest.raises(DirtyTreeError) as exc:
        check_unchanged(repo, info.state, "the test command 'make test'", info.tag)
    assert exc.value.exit_code == 4
    assert f"the test command 'make test' changed the working tree after it was tagged {info.tag}: report.xml;" \
        in exc.value.message

    dirty = derive_tag(repo, allow_dirty=True)
    check_unchanged(repo, dirty.state, "the test command 'true'", dirty.tag)  # the same dirty state
    (repo / "report.xml").write_text("<y/>\n")
    with pytest.raises(DirtyTreeError, match=r"changed the uncommitted state tagged .*-dirty-.* \(now report.xml\)"):
        check_unchanged(repo, dirty.state, "the test command 'make test'", dirty.tag)
    (repo / "report.xml").unlink()
    with pytest.raises(DirtyTreeError, match=r"\(now clean\)"):
        check_unchanged(repo, dirty.state, "the test command 'make test'", dirty.tag)
