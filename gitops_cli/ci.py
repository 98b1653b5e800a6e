"""What the CI environment tells about the current run: the source commit and the run's URL.

Read only from environment variables (no git, no network), so it is cheap and pure:

- GitHub Actions: GITHUB_SHA; run URL = GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/GITHUB_RUN_ID
- GitLab CI:      CI_COMMIT_SHA; CI_JOB_URL (else CI_PIPELINE_URL)
- Jenkins:        GIT_COMMIT; BUILD_URL
- any:            GITOPS_SOURCE_COMMIT overrides the commit (e.g. the PR head SHA instead of the
                  merge commit), GITOPS_CI_RUN_URL the run URL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class CIInfo:
    provider: str | None  # "github", "gitlab", "jenkins" or None (not in a known CI)
    source_commit: str | None
    run_url: str | None

    def trailers(self) -> list[tuple[str, str]]:
        """Commit-message trailers for what is known: Source-Commit and CI-Run."""
        out: list[tuple[str, str]] = []
        if self.source_commit:
            out.append(("Source-Commit", self.source_commit))
        if self.run_url:
            out.append(("CI-Run", self.run_url))
        return out


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def detect(environ: Mapping[str, str] | None = None) -> CIInfo:
    """The CI provider, source commit and run URL found in `environ` (default: os.environ)."""
    env = os.environ if environ is None else environ
    provider: str | None = None
    commit: str | None = None
    url: str | None = None
    if _get(env, "GITHUB_ACTIONS") or _get(env, "GITHUB_RUN_ID"):
        provider = "github"
        commit = _get(env, "GITHUB_SHA")
        server, repo = _get(env, "GITHUB_SERVER_URL"), _get(env, "GITHUB_REPOSITORY")
        run = _get(env, "GITHUB_RUN_ID")
        if repo and run:
            url = f"{(server or 'https://github.com').rstrip('/')}/{repo}/actions/runs/{run}"
    elif _get(env, "GITLAB_CI") or _get(env, "CI_JOB_URL") or _get(env, "CI_COMMIT_SHA"):
        provider = "gitlab"
        commit = _get(env, "CI_COMMIT_SHA")
        url = _get(env, "CI_JOB_URL") or _get(env, "CI_PIPELINE_URL")
    elif _get(env, "JENKINS_URL") or _get(env, "BUILD_URL") or _get(env, "GIT_COMMIT"):
        provider = "jenkins"
        commit = _get(env, "GIT_COMMIT")
        url = _get(env, "BUILD_URL")
    commit = _get(env, "GITOPS_SOURCE_COMMIT") or commit
    url = _get(env, "GITOPS_CI_RUN_URL") or url
    return CIInfo(provider=provider, source_commit=commit, run_url=url)
