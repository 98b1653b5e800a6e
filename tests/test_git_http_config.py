"""The config gitops gives git in its environment (git.env_config) and the user's http.extraHeader entries as
git itself applies them to a URL (git.extra_headers), checked against what the real git sends to a real
smart-HTTP server."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_cli import git
from tests.fixtures.gitremotes import make_bare_remote, private_git_env


def test_env_config_values_reach_git_as_given_after_the_users_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quotes, `!`, blanks and an empty value (not a boolean) survive git's GIT_CONFIG_PARAMETERS parsing,
    and the entries come after the user's there (a parent git's `-c`), whose value they follow."""
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'gitops.test'='user'")
    values = ["user", "it's a \"test\"!", "", "a = b; c"]
    env = git.env_config([("gitops.test", v) for v in values[1:]])
    res = git.run_outside(["config", "-z", "--get-all", "gitops.test"], env=env, strip=False)
    assert res.stdout.split("\0")[:-1] == values
    assert "gitops.test" not in " ".join(git.run_outside(["version"], env=env).stdout.split())  # not in argv


@pytest.fixture
def served(tmp_path: Path, http_git_server):  # type: ignore[no-untyped-def]
    make_bare_remote(tmp_path / "srv", {"a.yaml": "a: 1\n"})
    return http_git_server(tmp_path / "srv")


# entries of GIT_CONFIG_PARAMETERS, in order; `{u}` is the repository's URL, `{h}` its scheme://host:port
CASES = {
    "plain ones": [("http.extraHeader", "X-1: a"), ("http.extraHeader", "X-2: b")],
    "plain after a URL's: ignored": [("http.{h}/.extraHeader", "X-1: a"), ("http.extraHeader", "X-2: b")],
    "a URL's after plain": [("http.extraHeader", "X-1: a"), ("http.{h}/.extraHeader", "X-2: b")],
    "host after path: ignored": [("http.{u}.extraHeader", "X-1: a"), ("http.{h}/.extraHeader", "X-2: b"),
                                 ("http.{h}.extraHeader", "")],
    "reset at the same URL": [("http.{h}.extraHeader", "X-1: a"), ("http.{h}/.extraHeader", ""),
                              ("http.{h}.extraHeader", "X-2: b")],
    "a wildcard host, upper case": [("http.extraHeader", "X-1: a"), ("http.HTTP://*.0.0.1:{p}/.extraHeader", "X-2: b")],
    "other URLs never match": [("http.extraHeader", "X-1: a"), ("http.{h}/deploy.extraHeader", "X-2: b"),
                               ("http.{h}/other.git.extraHeader", "X-3: c"),
                               ("http.https://127.0.0.1:{p}/.extraHeader", "X-4: d"),
                               ("http.http://127.0.0.1:1/.extraHeader", "X-5: e"),
                               ("http.http://bob@127.0.0.1:{p}/.extraHeader", "X-6: f")],
    "escapes and dot segments": [("http.{h}/x/../deploy%2Egit/./.extraHeader", "X-1: a"),
                                 ("http.{h}/%64eploy.git.extraHeader", "X-2: b"),
                                 ("http.http://127.0.0.1:0{p}/deploy.git.extraHeader", "X-3: c")],
    "an invalid URL is no match": [("http.extraHeader", "X-1: a"),
                                   ("http.http://127.0.0.1:99999/.extraHeader", "X-2: b"),
                                   ("http.{h}/%zz.extraHeader", "X-3: c")],
}


@pytest.mark.parametrize("case", list(CASES))
def test_extra_headers_are_those_git_sends(tmp_path: Path, served, case: str) -> None:  # type: ignore[no-untyped-def]
    """git.extra_headers (urlmatch.c's rules, in Python) lists exactly the extra headers git sends, in order."""
    url, host = served.url(), f"http://127.0.0.1:{served.port}"
    entries = [(k.format(u=url, h=host, p=served.port), v) for k, v in CASES[case]]
    env = {**private_git_env(tmp_path), **git.env_config(entries)}
    git.run_outside(["ls-remote", url], env=env)
    sent = [f"{name}: {value}" for name, value in served.requests()[0]["headers"] if name.startswith("X-")]
    assert git.extra_headers(url, env=env) == sent
    assert sent or case == "reset at the same URL"
