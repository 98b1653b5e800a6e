"""gitops_cli.ci: source commit and run URL from CI environment variables."""

from __future__ import annotations

from gitops_cli.ci import CIInfo, detect


def test_github_actions() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SHA": "a" * 40, "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "org/app", "GITHUB_RUN_ID": "42"}
    assert detect(env) == CIInfo("github", "a" * 40, "https://github.com/org/app/actions/runs/42")


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
    assert info.source_commit == "d" * 40 and info.run_url is None
    assert info.trailers() == [("Source-Commit", "d" * 40)]
    assert detect({"GITOPS_SOURCE_COMMIT": " e ", "GITOPS_CI_RUN_URL": "u"}).trailers() == [
        ("Source-Commit", "e"), ("CI-Run", "u")]
