"""What the CI environment tells about the current run: source commit, branch, run URL, pull request.

Read from environment variables and, on GitHub Actions pull-request events, the event payload
($GITHUB_EVENT_PATH); no git, no network, so it is cheap:

- GitHub Actions: GITHUB_SHA; run URL = GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/GITHUB_RUN_ID
                  (+ /attempts/GITHUB_RUN_ATTEMPT for a re-run's attempt 2 and later).
                  GITHUB_REF under refs/pull/ (refs/pull/N/merge: `pull_request`,
                  `pull_request_review`, `pull_request_review_comment`) means GITHUB_SHA is GitHub's
                  synthetic merge commit (merge_commit), which actions/checkout checks out by default:
                  the source commit is `pull_request.head.sha` from the event payload
                  ($GITHUB_EVENT_PATH), the branch GITHUB_HEAD_REF (else the payload's
                  `pull_request.head.ref`; GitHub sets GITHUB_HEAD_REF for `pull_request` and
                  `pull_request_target` only).  Those events without a GITHUB_REF are taken the same way.
                  A `pull_request` event whose GITHUB_REF is a branch (refs/heads/<base>) is a merged
                  pull request's `closed` event: GITHUB_SHA is the real merge commit on that branch, a
                  branch build.  For `pull_request_target` GITHUB_SHA is the head of the branch GITHUB_REF
                  names (the default branch, on older GitHub versions the PR's base branch; base_commit),
                  an ordinary commit, which actions/checkout checks out by default; the source commit is
                  the payload's PR head.  Otherwise the branch comes from GITHUB_REF (else
                  GITHUB_REF_NAME); a tag (refs/tags/, GITHUB_REF_TYPE=tag) gives none.
- GitLab CI:      CI_COMMIT_SHA; CI_COMMIT_BRANCH, else CI_COMMIT_REF_NAME (MRs:
                  CI_MERGE_REQUEST_SOURCE_BRANCH_NAME; a tag pipeline, CI_COMMIT_TAG, has none);
                  CI_JOB_URL (else CI_PIPELINE_URL).  Merged-results / merge-train pipelines
                  (CI_MERGE_REQUEST_EVENT_TYPE) check out a merge commit: the source commit is then
                  CI_MERGE_REQUEST_SOURCE_BRANCH_SHA.
- Jenkins:        GIT_COMMIT; BRANCH_NAME (multibranch), else GIT_LOCAL_BRANCH, else GIT_BRANCH without
                  its remote (see jenkins_git_branch); none for a tag build (TAG_NAME); BUILD_URL;
                  CHANGE_ID marks a PR build, whose branch is CHANGE_BRANCH (the PR's own branch;
                  BRANCH_NAME is then `PR-5`).
                  Its default PR strategy merges the PR into its target on the agent: GIT_COMMIT is
                  then that local merge commit and no variable names the PR head (see
                  check_pr_merge_head).
- any other CI:   CI=true (provider "ci"); nothing else is known.
- overrides:      GITOPS_SOURCE_COMMIT (the Source-Commit trailer only: `trailer_commit`) and
                  GITOPS_CI_RUN_URL (the run URL).  The override never feeds the tag rule, which
                  uses the CI's own variables only.

The tag rule (`check_checkout`, applied by gitops_cli.tagging.derive_tag for every verb that tags): the
tag names the commit that was checked out and built (HEAD), or the commit given with `--sha`.  A CI's
merge commit is never used as the tag by surprise: in a pull/merge-request build whose HEAD is the merge
commit the CI announced (the one GitHub checks out by default when GITHUB_REF is refs/pull/N/merge, a GitLab
merged-results commit) the run is refused; check out the PR head (actions/checkout
`ref: ${{ github.event.pull_request.head.sha }}`) or pass `--sha`.  A pull/merge-request build whose HEAD
is another commit than the PR's (than GIT_COMMIT on Jenkins) is refused too, saying so; but a GitHub
`pull_request_target` build of GITHUB_SHA (its branch's head) is tagged as it is (a warning names the PR
head).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from gitops_cli.errors import UsageError

# the events GitHub runs on a pull request's merge branch, GITHUB_REF refs/pull/N/merge, whose GITHUB_SHA
# is a synthetic merge commit (until the pull request is merged: then GITHUB_REF is the branch it went into)
_MERGE_REF_EVENTS = ("pull_request", "pull_request_review", "pull_request_review_comment")


@dataclass(frozen=True)
class CIInfo:
    provider: str | None  # "github", "gitlab", "jenkins", "ci" (generic CI=true) or None
    source_commit: str | None  # the commit the run is about (a PR's head commit, never a merge commit)
    run_url: str | None
    branch: str | None = None
    pull_request: bool = False  # a pull/merge-request build
    merge_commit: str | None = None  # the CI's synthetic merge commit, when it announced one
    trailer_commit: str | None = None  # GITOPS_SOURCE_COMMIT: the Source-Commit trailer only, never the tag rule
    base_commit: str | None = None  # GITHUB_SHA of a GitHub pull_request_target build: its branch's head
    base_branch: str | None = None  # that branch (GITHUB_REF's, else GITHUB_BASE_REF)

    def trailers(self) -> list[tuple[str, str]]:
        """Commit-message trailers for what is known: Source-Commit, Source-Branch and CI-Run.  A source
        commit that is a pull_request_target build's GITHUB_SHA (build-and-bump names the tagged commit: the
        default checkout) is on that build's branch, not on the PR's; a tag build has no branch.  A commit
        is pushed for good: the run URL has no credentials (git.url_shown: user-info, query and fragment
        dropped) and every value has the secrets gitops knows of masked (`***`)."""
        from gitops_cli.git import url_shown
        from gitops_cli.output import redact

        out: list[tuple[str, str]] = []
        commit = self.trailer_commit or self.source_commit
        if commit:
            out.append(("Source-Commit", redact(commit)))
        branch = self.base_branch if commit and commit == self.base_commit and self.base_branch else self.branch
        if branch:
            out.append(("Source-Branch", redact(branch)))
        if self.run_url:
            out.append(("CI-Run", redact(url_shown(self.run_url))))
        return out


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _github_pr_head_field(env: Mapping[str, str], field: str) -> str | None:
    """`pull_request.head.<field>` from the event payload at $GITHUB_EVENT_PATH (None when unreadable)."""
    path = _get(env, "GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            event = json.load(f)
        value = event["pull_request"]["head"][field]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


def github_pr_head(env: Mapping[str, str]) -> str | None:
    """`pull_request.head.sha` from the event payload at $GITHUB_EVENT_PATH (None when unreadable)."""
    sha = _github_pr_head_field(env, "sha")
    return sha.lower() if sha else None


def _github_ref_branch(ref: str) -> str | None:
    """The branch a GITHUB_REF names: refs/heads/<branch>, or a short name (GitHub gave one for a merged
    pull request's event until 2023); None for a tag or any other ref (refs/tags/, refs/pull/)."""
    if ref.startswith("refs/heads/"):
        return ref[len("refs/heads/"):] or None
    return None if ref.startswith("refs/") else ref


def _github(env: Mapping[str, str]) -> CIInfo:
    sha = _get(env, "GITHUB_SHA")
    server = (_get(env, "GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    repo, run = _get(env, "GITHUB_REPOSITORY"), _get(env, "GITHUB_RUN_ID")
    url = f"{server}/{repo}/actions/runs/{run}" if repo and run else None
    attempt = _get(env, "GITHUB_RUN_ATTEMPT")
    if url and attempt and attempt != "1":  # a re-run: its own page (the run's URL shows the latest attempt)
        url += f"/attempts/{attempt}"
    event, ref = _get(env, "GITHUB_EVENT_NAME"), _get(env, "GITHUB_REF")
    if event == "pull_request_target" or (ref or "").startswith("refs/pull/") or (
            ref is None and event in _MERGE_REF_EVENTS):
        head_branch = _get(env, "GITHUB_HEAD_REF") or _github_pr_head_field(env, "ref")
        pr = CIInfo("github", github_pr_head(env), url, head_branch, True)
        if event != "pull_request_target":  # GITHUB_SHA is the merge branch's synthetic merge commit
            return replace(pr, merge_commit=sha)
        # GITHUB_SHA: the head of GITHUB_REF's branch (the default branch; the PR's base on older GitHubs)
        base = _github_ref_branch(ref) if ref else None
        return replace(pr, base_commit=sha, base_branch=base or _get(env, "GITHUB_BASE_REF"))
    if event in _MERGE_REF_EVENTS:  # a merged pull request: GITHUB_REF is the branch it went into
        branch = _github_ref_branch(ref or "") or _get(env, "GITHUB_BASE_REF")
    elif ref is not None:
        branch = _github_ref_branch(ref)
    else:
        branch = None if _get(env, "GITHUB_REF_TYPE") == "tag" else _get(env, "GITHUB_REF_NAME")
    return CIInfo("github", sha, url, branch)


def _gitlab(env: Mapping[str, str]) -> CIInfo:
    sha = _get(env, "CI_COMMIT_SHA")
    url = _get(env, "CI_JOB_URL") or _get(env, "CI_PIPELINE_URL")
    if _get(env, "CI_MERGE_REQUEST_IID"):
        branch = _get(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or _get(env, "CI_COMMIT_REF_NAME")
        merged = _get(env, "CI_MERGE_REQUEST_EVENT_TYPE") in ("merged_result", "merge_train")
        head = _get(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA") if merged else sha
        return CIInfo("gitlab", head, url, branch, True, sha if merged else None)
    if _get(env, "CI_COMMIT_TAG"):  # a tag pipeline: CI_COMMIT_REF_NAME is the tag's name
        return CIInfo("gitlab", sha, url)
    return CIInfo("gitlab", sha, url, _get(env, "CI_COMMIT_BRANCH") or _get(env, "CI_COMMIT_REF_NAME"))


def jenkins_git_branch(name: str | None) -> str | None:
    """The branch that GIT_BRANCH of a Jenkins job that is not multibranch names.  Jenkins' git plugin names
    the remote-tracking branch it built without `refs/remotes/`, so with its remote first (`origin/main`,
    `upstream/release/2`); it strips the job's remote names for GIT_LOCAL_BRANCH, which gitops does not
    know: the first component, that remote, is dropped.  `refs/heads/X` and `refs/remotes/R/X` give X; a
    tag or another ref (`refs/tags/v1`, `origin/tags/v1` from the git plugin's usual refspec for building
    tags, Gerrit's `refs/changes/...`) and a SHA built as such (`detached`) give None."""
    if name is None or name == "detached":
        return None
    if name.startswith("refs/heads/"):
        return name[len("refs/heads/"):] or None
    if name.startswith("refs/remotes/"):
        name = name[len("refs/remotes/"):]
    elif name.startswith("refs/"):
        return None
    _remote, slash, branch = name.partition("/")
    if slash and branch.startswith("tags/"):  # the git plugin's tag refspec: refs/tags/*:refs/remotes/origin/tags/*
        return None
    return (branch or None) if slash else name


def _jenkins(env: Mapping[str, str]) -> CIInfo:
    pull_request = bool(_get(env, "CHANGE_ID"))
    if pull_request:  # BRANCH_NAME (and GIT_BRANCH) is then the job's name, `PR-5`
        branch = _get(env, "CHANGE_BRANCH") or _get(env, "BRANCH_NAME") or _get(env, "GIT_BRANCH")
    elif _get(env, "TAG_NAME"):  # a multibranch tag build: BRANCH_NAME is the tag's name
        branch = None
    else:
        branch = _get(env, "BRANCH_NAME") or _get(env, "GIT_LOCAL_BRANCH") or jenkins_git_branch(
            _get(env, "GIT_BRANCH"))
    return CIInfo("jenkins", _get(env, "GIT_COMMIT"), _get(env, "BUILD_URL"), branch, pull_request)


def detect(environ: Mapping[str, str] | None = None) -> CIInfo:
    """The CI provider, source commit, branch and run URL found in `environ` (default: os.environ)."""
    env = os.environ if environ is None else environ
    if _get(env, "GITHUB_ACTIONS") or _get(env, "GITHUB_RUN_ID"):
        info = _github(env)
    elif _get(env, "GITLAB_CI") or _get(env, "CI_JOB_URL") or _get(env, "CI_COMMIT_SHA"):
        info = _gitlab(env)
    elif _get(env, "JENKINS_URL") or _get(env, "BUILD_URL") or _get(env, "GIT_COMMIT"):
        info = _jenkins(env)
    elif (_get(env, "CI") or "").lower() in ("true", "1", "yes"):
        info = CIInfo("ci", None, None)
    else:
        info = CIInfo(None, None, None)
    return replace(info, run_url=_get(env, "GITOPS_CI_RUN_URL") or info.run_url,
                   trailer_commit=_get(env, "GITOPS_SOURCE_COMMIT"))


def check_checkout(head: str, info: CIInfo) -> None:
    """Refuse to tag a CI's merge commit, or another commit than the one a pull/merge-request build is for
    (see the module docstring); UsageError (exit 2)."""
    if info.source_commit is not None and head == info.source_commit:
        return  # the run's own commit is checked out
    if info.merge_commit is not None and head == info.merge_commit:
        what = f"the pull request's head is {info.source_commit}" if info.source_commit else (
            "the pull request's head commit is unknown")
        raise UsageError(
            f"refusing to tag {head[:12]}: this {info.provider} pull-request build checked out a merge commit, "
            f"not the pull request's own commit ({what}); its SHA names no commit anyone can find later",
            hint=_CHECKOUT_HINTS.get(info.provider or "", _CHECKOUT_HINTS[""]),
        )
    if not info.pull_request or info.source_commit is None or head == info.base_commit:
        return  # a branch build, or the base branch's head of a pull_request_target build (tagging warns)
    named = _SOURCE_VARIABLES.get(info.provider or "", "the pull request's own commit")
    if info.provider == "gitlab" and info.merge_commit is None:
        named = "CI_COMMIT_SHA"
    raise UsageError(
        f"refusing to tag {head[:12]}: the checkout is not the commit this {info.provider} pull-request build "
        f"is for ({named} {info.source_commit})",
        hint=f"check out {info.source_commit[:12]} or name the build yourself with --sha",
    )


# what names a pull/merge-request build's own commit, by CI
_SOURCE_VARIABLES = {"github": "pull_request.head.sha", "gitlab": "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA",
                     "jenkins": "GIT_COMMIT"}


_CHECKOUT_HINTS = {
    "github": "check out the PR head (actions/checkout with `ref: ${{ github.event.pull_request.head.sha }}`) "
              "or name the build yourself with --sha",
    "gitlab": "check out the merge request's own commit (git checkout $CI_MERGE_REQUEST_SOURCE_BRANCH_SHA) "
              "or name the build yourself with --sha",
    "": "check out the pull request's own commit or name the build yourself with --sha",
}


def check_pr_merge_head(head: str, parents: int, info: CIInfo, on_remote: bool = False) -> None:
    """Refuse a Jenkins PR build whose HEAD is a merge made on the agent (UsageError, exit 2).

    Jenkins' default PR strategy ("merge with the target branch") merges the PR into its target on the
    agent: GIT_COMMIT is that local merge commit, found nowhere else, and no variable names the PR's
    own head, so check_checkout cannot tell.  `parents`: HEAD's parent count; `on_remote`: a
    remote-tracking ref contains HEAD (the caller asks git) -- a PR head that is itself a merge (the
    PR's branch merged its target: "Update branch") is on the remote, the agent's merge is not.
    """
    if info.provider != "jenkins" or not info.pull_request or parents < 2 or on_remote:
        return
    raise UsageError(
        f"refusing to tag {head[:12]}: this Jenkins pull-request build (CHANGE_ID) checked out a merge "
        "commit made on the agent (the 'merge with the target branch' strategy); its SHA names no commit "
        "anyone can find later",
        hint="build the PR head (discover PRs with the 'current pull request revision' strategy) or name "
             "the build yourself with --sha",
    )
