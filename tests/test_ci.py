"""gitops_cli.ci: source commit, branch, run URL and pull requests from the CI environment; the tag rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops_cli.ci import CIInfo, check_checkout, check_pr_merge_head, detect, github_pr_head
from gitops_cli.errors import UsageError


def test_github_actions() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SHA": "a" * 40, "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "org/app", "GITHUB_RUN_ID": "42"}
    assert detect(env) == CIInfo("github", "a" * 40, "https://github.com/org/app/actions/runs/42")


def test_github_actions_rerun_attempt_has_its_own_url() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SHA": "a" * 40, "GITHUB_REPOSITORY": "org/app", "GITHUB_RUN_ID": "42"}
    assert detect({**env, "GITHUB_RUN_ATTEMPT": "1"}).run_url == "https://github.com/org/app/actions/runs/42"
    assert detect({**env, "GITHUB_RUN_ATTEMPT": "3"}).run_url == \
        "https://github.com/org/app/actions/runs/42/attempts/3"


def test_gitlab_and_jenkins() -> None:
    gl = detect({"GITLAB_CI": "true", "CI_COMMIT_SHA": "b" * 40, "CI_JOB_URL": "https://gl.example/j/7"})
    assert gl == CIInfo("gitlab", "b" * 40, "https://gl.example/j/7")
    jk = detect({"JENKINS_URL": "https://ci/", "GIT_COMMIT": "c" * 40, "BUILD_URL": "https://ci/job/x/3/"})
    assert jk == CIInfo("jenkins", "c" * 40, "https://ci/job/x/3/")


def test_overrides_and_nothing_known() -> None:
    assert detect({}) == CIInfo(None, None, None)
    assert detect({}).trailers() == []
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SHA": "merge", "GITOPS_SOURCE_COMMIT": "d" * 40}
    info = detect(env)
    # the override is for the trailer only: the CI's own commit stays the source commit (the tag rule's)
    assert info.source_commit == "merge" and info.trailer_commit == "d" * 40 and info.run_url is None
    assert info.trailers() == [("Source-Commit", "d" * 40)]
    assert detect({"GITOPS_SOURCE_COMMIT": " e ", "GITOPS_CI_RUN_URL": "u"}).trailers() == [
        ("Source-Commit", "e"), ("CI-Run", "u")]


# --- pull requests, branches, generic CI and the tag rule ------------------------------------------------

HEAD, MERGE = "1" * 40, "2" * 40


def _pr_event(tmp_path: Path, sha: str = HEAD) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"action": "synchronize", "number": 7,
                                "pull_request": {"head": {"sha": sha, "ref": "feature"}}}))
    return str(path)


def test_github_pull_request_uses_the_head_sha_from_the_event(tmp_path: Path) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": MERGE,
           "GITHUB_EVENT_PATH": _pr_event(tmp_path), "GITHUB_HEAD_REF": "feature",
           "GITHUB_REF_NAME": "7/merge"}
    info = detect(env)
    assert (info.source_commit, info.merge_commit, info.pull_request, info.branch) == (HEAD, MERGE, True,
                                                                                       "feature")
    assert info.trailers() == [("Source-Commit", HEAD), ("Source-Branch", "feature")]  # never the merge commit


def test_github_push_event_uses_github_sha_and_ref_name() -> None:
    info = detect({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_SHA": HEAD,
                   "GITHUB_REF_NAME": "main"})
    assert (info.source_commit, info.branch) == (HEAD, "main")
    assert (info.pull_request, info.merge_commit) == (False, None)


def test_github_event_payload_unreadable_or_odd(tmp_path: Path) -> None:
    assert github_pr_head({}) is None
    assert github_pr_head({"GITHUB_EVENT_PATH": str(tmp_path / "missing.json")}) is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert github_pr_head({"GITHUB_EVENT_PATH": str(bad)}) is None
    bad.write_text(json.dumps({"pull_request": {"head": {"sha": 5}}}))
    assert github_pr_head({"GITHUB_EVENT_PATH": str(bad)}) is None
    info = detect({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": MERGE})
    assert info.source_commit is None and info.merge_commit == MERGE  # unknown head: never the merge SHA
    info = detect({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_SHA": MERGE})
    assert info.source_commit is None and info.merge_commit is None and info.base_commit == MERGE


def test_gitlab_merge_requests() -> None:
    base = {"GITLAB_CI": "true", "CI_MERGE_REQUEST_IID": "12", "CI_COMMIT_REF_NAME": "feature",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature", "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": HEAD}
    detached = detect({**base, "CI_COMMIT_SHA": HEAD, "CI_MERGE_REQUEST_EVENT_TYPE": "detached"})
    assert (detached.source_commit, detached.merge_commit, detached.pull_request) == (HEAD, None, True)
    merged = detect({**base, "CI_COMMIT_SHA": MERGE, "CI_MERGE_REQUEST_EVENT_TYPE": "merged_result"})
    assert (merged.source_commit, merged.merge_commit, merged.branch) == (HEAD, MERGE, "feature")
    branch = detect({"GITLAB_CI": "true", "CI_COMMIT_SHA": HEAD, "CI_COMMIT_REF_NAME": "main"})
    assert (branch.branch, branch.pull_request) == ("main", False)


def test_jenkins_branch_and_change_id_and_generic_ci() -> None:
    jk = detect({"JENKINS_URL": "https://ci/", "GIT_COMMIT": HEAD, "GIT_BRANCH": "origin/main"})
    assert (jk.branch, jk.pull_request) == ("main", False)
    pr = detect({"JENKINS_URL": "https://ci/", "GIT_COMMIT": HEAD, "BRANCH_NAME": "PR-3", "CHANGE_ID": "3"})
    assert (pr.branch, pr.pull_request) == ("PR-3", True)
    assert detect({"CI": "true"}) == CIInfo("ci", None, None)
    assert detect({"CI": "false"}).provider is None


def test_check_checkout_rule() -> None:
    check_checkout(HEAD, CIInfo(None, None, None))  # no CI: HEAD is the tag
    check_checkout(HEAD, CIInfo("github", HEAD, None, "feature", True, MERGE))  # PR head checked out
    check_checkout(MERGE, CIInfo("github", "3" * 40, None))  # push build: HEAD wins, no refusal
    with pytest.raises(UsageError, match="merge commit") as err:
        check_checkout(MERGE, CIInfo("github", HEAD, None, "feature", True, MERGE))
    assert HEAD in err.value.message and "--sha" in (err.value.hint or "")
    with pytest.raises(UsageError):  # head unknown (no event payload) but HEAD is the announced merge commit
        check_checkout(MERGE, CIInfo("github", None, None, None, True, MERGE))
    with pytest.raises(UsageError):  # Jenkins PR build whose HEAD is a local merge of GIT_COMMIT
        check_checkout(MERGE, CIInfo("jenkins", HEAD, None, "PR-3", True))


def test_source_commit_override_never_drives_the_tag_rule(tmp_path: Path) -> None:
    pr = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": MERGE,
          "GITHUB_EVENT_PATH": _pr_event(tmp_path)}
    # the PR head checked out, override = another commit: not refused (it used to name the override as head)
    check_checkout(HEAD, detect({**pr, "GITOPS_SOURCE_COMMIT": "3" * 40}))
    # the merge commit checked out, override = the merge commit: still refused (it used to bypass the rule)
    with pytest.raises(UsageError, match="merge commit"):
        check_checkout(MERGE, detect({**pr, "GITOPS_SOURCE_COMMIT": MERGE}))
    assert detect({**pr, "GITOPS_SOURCE_COMMIT": MERGE}).trailers() == [("Source-Commit", MERGE),
                                                                      ("Source-Branch", "feature")]


def test_jenkins_pr_build_on_an_agent_merge_commit_is_refused() -> None:
    pr = detect({"JENKINS_URL": "https://ci/", "GIT_COMMIT": MERGE, "BRANCH_NAME": "PR-5", "CHANGE_ID": "5"})
    check_checkout(MERGE, pr)  # GIT_COMMIT is HEAD: check_checkout cannot tell, the parent count does
    with pytest.raises(UsageError, match="merge commit") as err:
        check_pr_merge_head(MERGE, 2, pr)
    assert "--sha" in (err.value.hint or "")
    check_pr_merge_head(HEAD, 1, pr)  # the PR head itself (the "current revision" strategy)
    branch = detect({"JENKINS_URL": "https://ci/", "GIT_COMMIT": MERGE, "BRANCH_NAME": "main"})
    check_pr_merge_head(MERGE, 2, branch)  # a merge commit on a branch build is an ordinary commit
    check_pr_merge_head(MERGE, 2, detect({"GITHUB_ACTIONS": "true", "GITHUB_SHA": MERGE}))


def test_a_refused_merge_commit_gets_its_own_cis_hint() -> None:
    from gitops_cli.ci import check_checkout
    from gitops_cli.errors import UsageError

    gitlab = detect({"GITLAB_CI": "true", "CI_COMMIT_SHA": MERGE, "CI_MERGE_REQUEST_IID": "3",
                     "CI_MERGE_REQUEST_EVENT_TYPE": "merged_result", "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": HEAD})
    with pytest.raises(UsageError) as info:
        check_checkout(MERGE, gitlab)
    assert info.value.exit_code == 2 and "$CI_MERGE_REQUEST_SOURCE_BRANCH_SHA" in (info.value.hint or "")
    assert "actions/checkout" not in (info.value.hint or "")


def test_github_pull_request_target_checks_out_the_base_head_no_merge_commit(tmp_path: Path) -> None:
    """For pull_request_target GITHUB_SHA is the base branch's head, an ordinary commit (what
    actions/checkout checks out by default): it was taken for GitHub's merge commit and the run refused
    with "checked out a merge commit"."""
    base = "3" * 40
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_SHA": base,
           "GITHUB_EVENT_PATH": _pr_event(tmp_path), "GITHUB_HEAD_REF": "feature"}
    info = detect(env)
    assert (info.source_commit, info.merge_commit, info.base_commit, info.pull_request) == (HEAD, None, base, True)
    check_checkout(base, info)  # the base branch's head: tagged (gitops_cli.tagging warns)
    check_checkout(HEAD, info)  # the PR head, checked out on purpose
    with pytest.raises(UsageError) as err:  # a third commit: not what the build is for, and said so
        check_checkout(MERGE, info)
    assert "merge commit" not in err.value.message
    assert err.value.message == (f"refusing to tag {MERGE[:12]}: the checkout is not the commit this github "
                                 f"pull-request build is for (pull_request.head.sha {HEAD})")
    # pull_request: GITHUB_SHA is GitHub's merge commit, refused as before
    with pytest.raises(UsageError, match="checked out a merge commit"):
        check_checkout(base, detect({**env, "GITHUB_EVENT_NAME": "pull_request"}))


def test_github_pull_request_target_trailers_name_the_branch_of_the_commit(tmp_path: Path) -> None:
    """build-and-bump names the tagged commit (GITOPS_SOURCE_COMMIT): the base branch's head by default
    for pull_request_target.  The trailers paired it with the PR's branch (GITHUB_HEAD_REF)."""
    from dataclasses import replace

    base = "3" * 40
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_SHA": base,
           "GITHUB_EVENT_PATH": _pr_event(tmp_path), "GITHUB_HEAD_REF": "feature", "GITHUB_BASE_REF": "main"}
    info = detect(env)
    assert ("Source-Branch", "main") in replace(info, trailer_commit=base).trailers()
    assert ("Source-Commit", base) in replace(info, trailer_commit=base).trailers()
    assert ("Source-Branch", "feature") in info.trailers()  # the PR head (bump alone): the PR's branch
    assert ("Source-Branch", "feature") in replace(info, trailer_commit=HEAD).trailers()


def test_jenkins_pull_request_branch_is_change_branch() -> None:
    """BRANCH_NAME (and GIT_BRANCH) of a Jenkins PR build is the job's name, `PR-5`: the Source-Branch
    trailer is the PR's own branch, CHANGE_BRANCH."""
    env = {"JENKINS_URL": "http://j/", "BUILD_URL": "http://j/job/app/PR-5/3/", "GIT_COMMIT": HEAD,
           "GIT_BRANCH": "PR-5", "BRANCH_NAME": "PR-5", "CHANGE_ID": "5", "CHANGE_BRANCH": "pr-branch"}
    assert detect(env).trailers() == [("Source-Commit", HEAD), ("Source-Branch", "pr-branch"),
                                      ("CI-Run", "http://j/job/app/PR-5/3/")]
    assert detect({**env, "CHANGE_BRANCH": " "}).branch == "PR-5"  # not given: the job's name still
    branch = {k: v for k, v in env.items() if k != "CHANGE_ID"}  # CHANGE_BRANCH without a PR: not used
    assert detect({**branch, "BRANCH_NAME": "main"}).branch == "main"


def test_a_jenkins_pr_checkout_other_than_git_commit_is_not_called_a_merge_commit() -> None:
    """HEAD != GIT_COMMIT in a Jenkins PR build was refused as "checked out a merge commit" whatever HEAD
    was; the message says what is known: the checkout is not GIT_COMMIT."""
    pr = detect({"JENKINS_URL": "https://ci/", "GIT_COMMIT": HEAD, "BRANCH_NAME": "PR-3", "CHANGE_ID": "3"})
    with pytest.raises(UsageError) as err:
        check_checkout(MERGE, pr)
    assert err.value.message == (f"refusing to tag {MERGE[:12]}: the checkout is not the commit this jenkins "
                                 f"pull-request build is for (GIT_COMMIT {HEAD})")
    assert err.value.hint == f"check out {HEAD[:12]} or name the build yourself with --sha"
    assert err.value.exit_code == 2


# --- GitHub: which runs check out a synthetic merge commit; the branch of a trailer ----------------------


@pytest.mark.parametrize("event", ["pull_request", "pull_request_review", "pull_request_review_comment"])
@pytest.mark.parametrize("ref", ["refs/pull/7/merge", None])
def test_github_pr_review_events_check_out_the_merge_commit_too(tmp_path: Path, event: str,
                                                                 ref: str | None) -> None:
    """pull_request_review and pull_request_review_comment run on refs/pull/N/merge, GITHUB_SHA its
    synthetic merge commit (what actions/checkout checks out), like pull_request: they were taken for
    branch builds, and the merge commit was tagged silently, with `Source-Branch: 7/merge`.  GitHub sets
    no GITHUB_HEAD_REF for them: the branch is the payload's pull_request.head.ref."""
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event, "GITHUB_SHA": MERGE,
           "GITHUB_EVENT_PATH": _pr_event(tmp_path), "GITHUB_REF_NAME": "7/merge"}
    if ref:
        env["GITHUB_REF"] = ref
    info = detect(env)
    assert (info.source_commit, info.merge_commit, info.pull_request, info.branch) == (HEAD, MERGE, True,
                                                                                       "feature")
    assert info.trailers() == [("Source-Commit", HEAD), ("Source-Branch", "feature")]
    with pytest.raises(UsageError, match="checked out a merge commit") as err:
        check_checkout(MERGE, info)
    assert "pull_request.head.sha" in (err.value.hint or "")
    check_checkout(HEAD, info)  # the PR head checked out: its tag


def test_github_merged_pull_request_is_a_branch_build(tmp_path: Path) -> None:
    """`on: pull_request: types: [closed]` with `if: github.event.pull_request.merged`: GITHUB_REF is the
    branch the PR went into and GITHUB_SHA the real merge commit on it (merge_commit_sha), which
    actions/checkout checks out.  It was refused as "checked out a merge commit ... names no commit
    anyone can find later", with a hint to build the PR head (not on main after a squash merge)."""
    event = tmp_path / "closed.json"
    event.write_text(json.dumps({"action": "closed", "pull_request": {
        "merged": True, "merge_commit_sha": MERGE, "head": {"sha": HEAD, "ref": "feature"}}}))
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": MERGE,
           "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main", "GITHUB_BASE_REF": "main",
           "GITHUB_HEAD_REF": "feature", "GITHUB_EVENT_PATH": str(event)}
    info = detect(env)
    assert info == CIInfo("github", MERGE, None, "main")
    assert info.trailers() == [("Source-Commit", MERGE), ("Source-Branch", "main")]
    check_checkout(MERGE, info)  # tagged
    check_checkout(HEAD, info)  # any checkout of a branch build is tagged (tagging warns)
    # GitHub's short GITHUB_REF of such a run before 2023 (`main`): a branch too
    assert detect({**env, "GITHUB_REF": "main"}).branch == "main"
    # closed without being merged: GITHUB_REF stays refs/pull/N/merge, GITHUB_SHA the synthetic merge
    closed = detect({**env, "GITHUB_REF": "refs/pull/7/merge", "GITHUB_REF_NAME": "7/merge"})
    assert (closed.merge_commit, closed.source_commit, closed.branch) == (MERGE, HEAD, "feature")
    with pytest.raises(UsageError, match="checked out a merge commit"):
        check_checkout(MERGE, closed)


def test_github_pull_request_target_branch_is_github_refs(tmp_path: Path) -> None:
    """pull_request_target: GITHUB_SHA is the head of the branch GITHUB_REF names, the default branch on
    GitHub since December 2025 (the PR's base branch before): the trailer of that commit names GITHUB_REF's
    branch, not GITHUB_BASE_REF (a PR into release/2 runs on main's head)."""
    from dataclasses import replace

    base = "3" * 40
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_SHA": base,
           "GITHUB_REF": "refs/heads/main", "GITHUB_BASE_REF": "release/2", "GITHUB_HEAD_REF": "feature",
           "GITHUB_EVENT_PATH": _pr_event(tmp_path)}
    info = detect(env)
    assert (info.base_commit, info.base_branch, info.merge_commit, info.source_commit) == (base, "main", None,
                                                                                           HEAD)
    assert ("Source-Branch", "main") in replace(info, trailer_commit=base).trailers()
    no_ref = {k: v for k, v in env.items() if k != "GITHUB_REF"}
    assert detect(no_ref).base_branch == "release/2"
    check_checkout(base, info)


def test_a_tag_build_has_no_source_branch() -> None:
    """GitHub, GitLab and Jenkins tag builds gave `Source-Branch: v1.2.0`, a tag's name."""
    sha = "a" * 40
    github = {"GITHUB_ACTIONS": "true", "GITHUB_SHA": sha, "GITHUB_EVENT_NAME": "push",
              "GITHUB_REF": "refs/tags/v1.2.0", "GITHUB_REF_NAME": "v1.2.0", "GITHUB_REF_TYPE": "tag"}
    assert detect(github).trailers() == [("Source-Commit", sha)]
    assert detect({**github, "GITHUB_EVENT_NAME": "release"}).branch is None
    no_ref = {k: v for k, v in github.items() if k != "GITHUB_REF"}
    assert detect(no_ref).branch is None
    assert detect({**github, "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main",
                   "GITHUB_REF_TYPE": "branch"}).branch == "main"
    gitlab = {"GITLAB_CI": "true", "CI_COMMIT_SHA": sha, "CI_COMMIT_REF_NAME": "v1.2.0", "CI_COMMIT_TAG": "v1.2.0"}
    assert detect(gitlab).trailers() == [("Source-Commit", sha)]
    assert detect({**gitlab, "CI_COMMIT_TAG": "", "CI_COMMIT_REF_NAME": "main"}).branch == "main"
    assert detect({"GITLAB_CI": "true", "CI_COMMIT_SHA": sha, "CI_COMMIT_BRANCH": "release/2",
                   "CI_COMMIT_REF_NAME": "release/2"}).branch == "release/2"
    jenkins = {"JENKINS_URL": "x", "GIT_COMMIT": sha, "BRANCH_NAME": "v1.2.0", "TAG_NAME": "v1.2.0"}
    assert detect(jenkins).trailers() == [("Source-Commit", sha)]
    assert detect({"JENKINS_URL": "x", "GIT_COMMIT": sha, "GIT_BRANCH": "refs/tags/v1.2.0"}).branch is None


@pytest.mark.parametrize(("git_branch", "branch"), [
    ("origin/main", "main"),
    ("origin/feature/x", "feature/x"),
    ("upstream/release/2", "release/2"),  # a job's remote of another name
    ("refs/remotes/origin/feature/x", "feature/x"),
    ("refs/heads/main", "main"),
    ("main", "main"),
    ("refs/tags/v1", None),
    ("origin/tags/v1", None),  # the git plugin's refspec for tags: +refs/tags/*:refs/remotes/origin/tags/*
    ("refs/remotes/origin/tags/v1", None),
    ("refs/changes/45/12345/2", None),  # a Gerrit change
    ("detached", None),  # a SHA given as the branch specifier
    ("origin/", None),
])
def test_jenkins_git_branch_without_its_remote(git_branch: str, branch: str | None) -> None:
    """GIT_BRANCH of a job that is not multibranch names the remote-tracking branch: `origin/main` went
    into the Source-Branch trailer as it was."""
    env = {"JENKINS_URL": "x", "GIT_COMMIT": "a" * 40, "GIT_BRANCH": git_branch}
    assert detect(env).branch == branch
    assert detect({**env, "GIT_LOCAL_BRANCH": "local"}).branch == "local"  # the git plugin's own stripping
    assert detect({**env, "BRANCH_NAME": "feature/x"}).branch == "feature/x"  # multibranch: as it is


@pytest.mark.usefixtures("secrets_restored")
@pytest.mark.parametrize(("run_url", "shown"), [
    ("https://ci.example.com/run/7?access_token={tok}", "https://ci.example.com/run/7"),
    ("https://bot:{tok}@ci.example.com/run/7", "https://ci.example.com/run/7"),
    ("https://bot:pass word@ci.example.com/run/7#x", "https://ci.example.com/run/7"),
    ("https://ci.example.com/{tok}/run/7", "https://ci.example.com/***/run/7"),
])
def test_trailers_hold_no_credential_nor_known_secret(run_url: str, shown: str) -> None:
    """GITOPS_CI_RUN_URL=https://ci.example.com/run/7?access_token=$TOK went into the CI-Run trailer as it was,
    pushed for good with the deploy commit.  The URL's credentials are dropped (user-info, query, fragment)
    and every trailer value has the secrets gitops knows of masked."""
    from gitops_cli import output

    token = "ghs_TrailerToken1234"
    output.register_secret(token)
    info = detect({"GITOPS_CI_RUN_URL": run_url.format(tok=token), "GITOPS_SOURCE_COMMIT": f"x {token}"})
    assert info.trailers() == [("Source-Commit", "x ***"), ("CI-Run", shown)]
