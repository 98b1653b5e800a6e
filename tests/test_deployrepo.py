"""gitops_cli.deployrepo against real git remotes (file://, smart HTTP with basic auth)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from gitops_cli import deployrepo
from gitops_cli.errors import DirtyTreeError, GitAuthError, GitError, UsageError
from gitops_cli.git import run_outside
from gitops_cli.output import redact
from tests.fixtures.gitremotes import git, make_bare_remote, write_tree

BOT = deployrepo.Identity("Bot", "bot@x.org")
DEFAULT = deployrepo.Identity("gitops-cli", "gitops-cli@localhost")

# --- classification and credentials (pure) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("https://git.example.com/org/deploy.git", True),
        ("http://127.0.0.1:8080/deploy.git", True),
        ("file:///srv/deploy.git", True),
        ("ssh://git@example.com:2222/org/deploy.git", True),
        ("git@github.com:org/deploy.git", True),
        ("github.com:org/deploy.git", True),
        ("ftp://example.com/x", False),
        ("./deploy", False),
        ("/srv/deploy", False),
    ],
)
def test_is_url(spec: str, expected: bool) -> None:
    assert deployrepo.is_url(spec) is expected


def test_local_directory_is_not_a_url(tmp_path: Path) -> None:
    weird = tmp_path / "host:path"
    weird.mkdir()
    assert deployrepo.is_url(str(weird)) is False


def test_select_token_precedence_and_usernames() -> None:
    env = {"GITOPS_GIT_TOKEN": "tok1", "GITHUB_TOKEN": "gh", "CI_JOB_TOKEN": "ci"}
    expected = ("x-access-token", "tok1", "GITOPS_GIT_TOKEN")
    assert deployrepo.select_token("https://git.example.com/x.git", None, env) == expected
    assert deployrepo.select_token("https://h/x", "alice", env)[0] == "alice"
    assert deployrepo.select_token("https://h/x", "alice", {**env, "GITOPS_GIT_USERNAME": "bob"})[0] == "bob"
    gh = {"GITHUB_TOKEN": "gh"}
    assert deployrepo.select_token("https://github.com/o/x", None, gh) == ("x-access-token", "gh", "GITHUB_TOKEN")
    ghes = {**gh, "GITHUB_SERVER_URL": "https://ghe.corp.example"}
    assert deployrepo.select_token("https://ghe.corp.example/o/x", None, ghes) is not None
    gl = {"CI_JOB_TOKEN": "ci", "CI_SERVER_HOST": "gitlab.example.com"}
    expected = ("gitlab-ci-token", "ci", "CI_JOB_TOKEN")
    assert deployrepo.select_token("https://gitlab.example.com/g/x.git", None, gl) == expected


def test_ci_tokens_are_never_sent_to_other_hosts() -> None:
    env = {"GITHUB_TOKEN": "gh", "CI_JOB_TOKEN": "ci", "CI_SERVER_HOST": "gitlab.example.com"}
    assert deployrepo.select_token("https://evil.example.org/x", None, env) is None
    assert deployrepo.select_token("https://gitlab.example.com.evil.org/x", None, env) is None


@pytest.mark.parametrize("host", ["gitlab.example.com.evil.org", "evilgitlab.example.com",
                                  "xgitlab.example.com:443", "gitlab.example.com.evil.org:443"])
def test_the_ci_job_token_goes_to_ci_server_host_only_not_to_a_host_that_contains_it(host: str) -> None:
    env = {"CI_JOB_TOKEN": "ci", "CI_SERVER_HOST": "gitlab.example.com"}
    assert deployrepo.select_token("https://gitlab.example.com:443/x", None, env) == (
        "gitlab-ci-token", "ci", "CI_JOB_TOKEN")
    assert deployrepo.select_token(f"https://{host}/x", None, env) is None


@pytest.mark.parametrize("host", ["evilgithub.com", "github.com.evil.org", "github.co", "ghe.corp.example.evil.org",
                                  "evil-ghe.corp.example"])
def test_the_github_token_goes_to_github_or_github_server_url_only_not_to_a_lookalike(host: str) -> None:
    env = {"GITHUB_TOKEN": "gh", "GITHUB_SERVER_URL": "https://ghe.corp.example"}
    assert deployrepo.select_token("https://github.com/o/x", None, env) == ("x-access-token", "gh", "GITHUB_TOKEN")
    assert deployrepo.select_token(f"https://{host}/o/x", None, env) is None


@pytest.mark.parametrize(("url", "env"), [
    # another port of the CI server's host: another server, anyone's
    ("https://127.0.0.1:18080/o/x.git", {"GITHUB_SERVER_URL": "https://127.0.0.1"}),
    ("https://github.com:8443/o/x.git", {}),
    ("https://gitlab.example.com:8443/g/x.git", {"CI_SERVER_HOST": "gitlab.example.com"}),
    ("https://gitlab.example.com/g/x.git", {"CI_SERVER_URL": "https://gitlab.example.com:8443"}),
    ("https://gitlab.example.com:444/g/x.git", {"CI_SERVER_HOST": "gitlab.example.com", "CI_SERVER_PORT": "443"}),
    # plain http to a server that speaks https: the token in clear on the network
    ("http://github.com/o/x.git", {}),
    ("http://ghe.corp.example/o/x.git", {"GITHUB_SERVER_URL": "https://ghe.corp.example"}),
    ("http://gitlab.example.com/g/x.git", {"CI_SERVER_URL": "https://gitlab.example.com"}),
    ("http://gitlab.example.com:443/g/x.git", {"CI_SERVER_HOST": "gitlab.example.com"}),
])
def test_a_ci_token_goes_only_to_its_servers_scheme_host_and_port(url: str, env: dict[str, str]) -> None:
    """select_token compared the host alone: GITHUB_TOKEN went to any port of GITHUB_SERVER_URL's host (a
    listener on 127.0.0.1:18080 got `x-access-token:ghs_...`), over plain http too."""
    env = {"GITHUB_TOKEN": "gh", "CI_JOB_TOKEN": "ci", **env}
    assert deployrepo.select_token(url, None, env) is None


@pytest.mark.parametrize(("url", "env", "source"), [
    ("https://127.0.0.1/o/x.git", {"GITHUB_SERVER_URL": "https://127.0.0.1"}, "GITHUB_TOKEN"),
    ("https://GitHub.com:443/o/x.git", {}, "GITHUB_TOKEN"),
    ("http://127.0.0.1:8080/o/x.git", {"GITHUB_SERVER_URL": "http://127.0.0.1:8080"}, "GITHUB_TOKEN"),
    ("https://[::1]:8443/o/x.git", {"GITHUB_SERVER_URL": "https://[::1]:8443/"}, "GITHUB_TOKEN"),
    ("https://gitlab.example.com:8443/g/x.git", {"CI_SERVER_URL": "https://gitlab.example.com:8443"}, "CI_JOB_TOKEN"),
    ("https://gitlab.example.com:8443/g/x.git", {"CI_SERVER_HOST": "gitlab.example.com", "CI_SERVER_PORT": "8443"},
     "CI_JOB_TOKEN"),
    ("http://gitlab.local/g/x.git", {"CI_SERVER_URL": "http://gitlab.local"}, "CI_JOB_TOKEN"),
])
def test_a_ci_token_goes_to_its_servers_own_origin(url: str, env: dict[str, str], source: str) -> None:
    env = {"GITHUB_TOKEN": "gh", "CI_JOB_TOKEN": "ci", **env}
    found = deployrepo.select_token(url, None, env)
    assert found is not None and found[2] == source


def test_a_credential_sent_over_plain_http_to_another_machine_gets_a_warning(capsys) -> None:
    """GITOPS_GIT_TOKEN (any host, as documented) or a URL's password sent over plain http to a host that is not
    this machine: a warning, once a run for a URL, naming where the credential comes from (never the secret)."""
    env = {"GITOPS_GIT_TOKEN": "plain-http-token-1"}
    for _ in range(2):
        deployrepo.open_remote("http://git.example.com/org/deploy.git", environ=env)
    deployrepo.open_remote("http://bot:url-pass-12@git2.example.com/deploy.git", environ={})
    for local in ("http://127.0.0.1:8080/x.git", "http://localhost/x.git", "http://[::1]/x.git",
                  "https://git3.example.com/x.git"):
        deployrepo.open_remote(local, environ=env)
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "warning: the credential from GITOPS_GIT_TOKEN is sent to http://git.example.com/org/deploy.git over "
        "plain HTTP, unencrypted: anyone on the network path can read it; use https://",
        "warning: the credential from the URL is sent to http://git2.example.com/deploy.git over plain HTTP, "
        "unencrypted: anyone on the network path can read it; use https://",
    ]


def test_https_remote_moves_url_credentials_into_a_scoped_header() -> None:
    remote = deployrepo.open_remote("https://bot:s3cr3t-token@git.example.com/org/deploy.git", environ={})
    assert remote.url == remote.display == "https://git.example.com/org/deploy.git"
    assert "s3cr3t-token" not in remote.url
    # for that URL: an empty value (which drops the extra headers read before it), then the header
    key = "http.https://git.example.com/org/deploy.git.extraheader"
    headers = run_outside(["config", "--get-all", key], env=remote.env).stdout.split("\n")
    assert headers == ["", "Authorization: Basic " + base64.b64encode(b"bot:s3cr3t-token").decode()]
    assert not any("s3cr3t" in k or "s3cr3t" in v for k, v in remote.env.items() if k.startswith("GIT_"))
    assert redact("token s3cr3t-token here") == "token *** here"


def test_https_remote_without_token_has_no_auth() -> None:
    remote = deployrepo.open_remote("https://git.example.com/org/deploy.git", environ={})
    assert remote.env == {} and remote.auth is None


# what check_ssh_key takes for a private key (its content is not parsed: ssh does that)
FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def fake_key(path: Path, mode: int = 0o600) -> Path:
    path.write_text(FAKE_KEY)
    path.chmod(mode)
    return path


def test_ssh_key_sets_ssh_command(tmp_path: Path) -> None:
    key = fake_key(tmp_path / "id ed25519")
    remote = deployrepo.open_remote("git@example.com:org/deploy.git", ssh_key=key, environ={})
    cmd = remote.env["GIT_SSH_COMMAND"]
    assert cmd.startswith("ssh -o ") and f"\'IdentityFile=\"{key}\"\'" in cmd  # quoted for the shell, then ssh
    for option in ("IdentitiesOnly=yes", "BatchMode=yes", "StrictHostKeyChecking=accept-new"):
        assert option in cmd
    with pytest.raises(UsageError, match="--ssh-key"):
        deployrepo.open_remote("git@example.com:org/deploy.git", ssh_key=tmp_path / "missing", environ={})
    quoted = fake_key(tmp_path / 'a "quoted" key')
    with pytest.raises(UsageError, match="--ssh-key .*: ssh cannot be given a path with a quote"):
        deployrepo.open_remote("git@example.com:org/deploy.git", ssh_key=quoted, environ={})


def test_an_ssh_key_ssh_would_not_load_is_refused_up_front(tmp_path: Path) -> None:
    """ssh ignores such a key (`Load key "K": bad permissions` / `invalid format`, on stderr) and the
    clone then failed with "Permission denied (publickey)" and the generic credentials hint (exit 11)."""
    def refused(key: Path) -> UsageError:
        with pytest.raises(UsageError) as caught:
            deployrepo.open_remote("git@example.com:org/deploy.git", ssh_key=key, environ={})
        assert str(key) in str(caught.value)
        assert FAKE_KEY.splitlines()[1] not in str(caught.value) + (caught.value.hint or "")  # never the key
        return caught.value

    too_open = fake_key(tmp_path / "deploy key", 0o644)
    err = refused(too_open)
    assert "permissions 0644 are too open" in str(err) and err.hint == f"chmod 600 '{too_open}'"
    assert "too open" in str(refused(fake_key(tmp_path / "g", 0o640)))
    empty = tmp_path / "empty"
    empty.write_text("")
    empty.chmod(0o600)
    assert "empty, not a private key" in str(refused(empty))
    public = tmp_path / "deploy key.pub"
    public.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOs deploy\n")
    err = refused(public)
    assert "a public key" in str(err) and err.hint == f"--ssh-key '{too_open}'"  # the private key beside it
    other = tmp_path / "cert.pem"
    other.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    other.chmod(0o600)
    assert "not a private key" in str(refused(other))
    assert "not a file" in str(refused(tmp_path))
    # a key the user does not own is not judged by its mode, as ssh does not
    theirs = fake_key(tmp_path / "theirs", 0o644)
    os.chown(theirs, 1234, 1234)
    assert deployrepo.open_remote("git@example.com:org/deploy.git", ssh_key=theirs, environ={}).auth


def test_open_remote_local_checkout_and_bare_repo(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path)
    as_path = deployrepo.open_remote(str(remote.path), environ={})
    assert as_path.local is None and as_path.url == remote.url  # a bare repo on disk is a remote
    checkout = remote.clone(tmp_path / "co")
    local = deployrepo.open_remote(str(checkout), environ={})
    assert local.local == checkout.resolve()
    with pytest.raises(UsageError, match="no such directory"):
        deployrepo.open_remote(str(tmp_path / "nope"), environ={})


# url.<base>.pushInsteadOf / insteadOf rules (base, prefix) over file:// URLs ({r}: the test's directory)
PUSH_RULES = {
    "none": ([], []),
    "a push rule": ([("{r}/b.git", "{r}/a.git")], []),
    "the longest prefix wins": ([("{r}/b.git", "{r}/a"), ("{r}/c.git", "{r}/a.git")], []),
    "the first of equal ones": ([("{r}/c.git", "{r}/a.git"), ("{r}/b.git", "{r}/a.git")], []),
    "insteadOf alone": ([], [("{r}/c.git", "{r}/a.git")]),
    "a push rule beats insteadOf": ([("{r}/b.git", "{r}/a.git")], [("{r}/c.git", "{r}/a.git")]),
    "never applied to insteadOf's result": ([("{r}/b.git", "{r}/c.git")], [("{r}/c.git", "{r}/a.git")]),
}


@pytest.mark.parametrize("case", list(PUSH_RULES))
def test_pushed_url_is_where_git_push_goes(tmp_path: Path, case: str) -> None:
    """deployrepo.pushed_url (remote.c's alias_url, in Python) against the URL `git push` itself names."""
    root = tmp_path.as_uri()
    for name in ("a.git", "b.git", "c.git"):
        git("init", "--quiet", "--bare", str(tmp_path / name))
    work = tmp_path / "work"
    git("init", "--quiet", str(work))
    git("commit", "--quiet", "--allow-empty", "-m", "x", cwd=work)
    push_rules, fetch_rules = PUSH_RULES[case]
    entries = [(f"url.{base.format(r=root)}.pushInsteadOf", prefix.format(r=root)) for base, prefix in push_rules]
    entries += [(f"url.{base.format(r=root)}.insteadOf", prefix.format(r=root)) for base, prefix in fetch_rules]
    env = {"GIT_CONFIG_COUNT": str(len(entries)), "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}
    for i, (key, value) in enumerate(entries):
        env.update({f"GIT_CONFIG_KEY_{i}": key, f"GIT_CONFIG_VALUE_{i}": value})
    url = f"{root}/a.git"
    said = git("push", "--dry-run", "--porcelain", url, "HEAD:refs/heads/t", cwd=work, env=env)
    assert deployrepo.pushed_url(url, env) == said.splitlines()[0].removeprefix("To ")


# (branch.main.pushRemote, remote.pushDefault): None = not set; `fork` is a second remote when main has an upstream
PUSH_SETTINGS = [(None, None), ("origin", None), ("fork", None), (None, "origin"), (None, "fork"), ("origin", "fork"),
                 ("fork", "origin"), ("file:///elsewhere.git", None), ("", None), (None, "nowhere")]


@pytest.mark.parametrize(("push_remote", "push_default"), PUSH_SETTINGS)
@pytest.mark.parametrize("upstream", [True, False], ids=["upstream", "only-remote"])
def test_checkout_remote_is_refused_exactly_when_git_push_pushes_elsewhere(
    tmp_path: Path, push_remote: str | None, push_default: str | None, upstream: bool
) -> None:
    """The remote a bump fetches and pushes (the upstream, else the only remote) against the one `git push`
    pushes to, as git itself names it (`%(push:remotename)`): taken when they are one, else exit 4 naming the
    setting that sends `git push` elsewhere (it was never read: the bump went to the upstream)."""
    remote = make_bare_remote(tmp_path / "remotes")
    checkout = remote.clone(tmp_path / "co")
    if upstream:
        git("remote", "add", "fork", (tmp_path / "fork.git").as_uri(), cwd=checkout)
    else:
        git("branch", "--quiet", "--unset-upstream", cwd=checkout)
    for key, value in (("branch.main.pushRemote", push_remote), ("remote.pushDefault", push_default)):
        if value is not None:
            git("config", key, value, cwd=checkout)
    pushed = git("for-each-ref", "--format=%(push:remotename)", "refs/heads/main", cwd=checkout).strip()
    if pushed == "origin" or not (upstream or push_remote is not None or push_default is not None):
        # nothing names one (no upstream, no setting): git pushes to its default remote, `origin`
        assert deployrepo.checkout_remote(checkout, "main") == "origin"
        return
    key = "branch.main.pushRemote" if push_remote is not None else "remote.pushDefault"
    with pytest.raises(DirtyTreeError) as refused:
        deployrepo.checkout_remote(checkout, "main")
    assert f"`git push` pushes branch main to {pushed!r} ({key}), not to origin" in refused.value.message
    assert "`git config branch.main.pushRemote origin`" in (refused.value.hint or "")


@pytest.mark.parametrize("push_default", [None, "simple", "upstream", "tracking", "current", "matching", "nothing"])
@pytest.mark.parametrize("merge", ["refs/heads/main", "main", "refs/heads/release"])
def test_checkout_remote_is_refused_when_git_push_pushes_the_branch_to_another_name(
    tmp_path: Path, push_default: str | None, merge: str
) -> None:
    """A checkout whose main tracks origin's release (branch.main.merge): `git push` pushes it there
    (push.default upstream) or refuses (simple, nothing), where a bump pushed origin's main.  Taken exactly when
    git pushes main to origin's main (`git push --dry-run` says so), or when main tracks main (push.default
    nothing refuses any push without a refspec: the bump's push names one, as before)."""
    remote = make_bare_remote(tmp_path / "remotes")
    checkout = remote.clone(tmp_path / "co")
    git("push", "--quiet", "origin", "main:release", cwd=checkout)
    git("config", "branch.main.merge", merge, cwd=checkout)
    if push_default is not None:
        git("config", "push.default", push_default, cwd=checkout)
    said = subprocess.run(["git", "push", "--dry-run", "--porcelain"], cwd=checkout, capture_output=True,
                          text=True, check=False)
    to_main = said.returncode == 0 and "refs/heads/main:refs/heads/main" in said.stdout
    if to_main or merge in ("main", "refs/heads/main"):
        assert deployrepo.checkout_remote(checkout, "main") == "origin"
        return
    with pytest.raises(DirtyTreeError) as refused:
        deployrepo.checkout_remote(checkout, "main")
    pushes = ("pushes branch main to origin's release" if push_default in ("upstream", "tracking") else
              f"refuses to push branch main (push.default {push_default or 'simple'})")
    assert refused.value.message == (
        f"{checkout}: branch main tracks origin's release (branch.main.merge = refs/heads/release), so `git push` "
        f"{pushes}; a bump fetches, commits and pushes origin's main: nothing was changed")
    assert refused.value.hint == ("to bump origin's main: `git branch --set-upstream-to origin/main`; to bump "
                                  "release, give the deploy repo's URL as --deploy-repo with --branch release "
                                  "(gitops clones it)")


@pytest.mark.parametrize(
    ("text", "identity"),
    [
        ("CI Bot <ci@example.com>", ("CI Bot", "ci@example.com")),
        ("  Jane Doe   <jane@x.org> ", ("Jane Doe", "jane@x.org")),
    ],
)
def test_parse_identity(text: str, identity: tuple[str, str]) -> None:
    assert deployrepo.parse_identity(text) == deployrepo.Identity(*identity)


@pytest.mark.parametrize("text", ["ci@example.com", "Bot <>", "<a@b.c>", "Bot <no-at>", "Bot <a@b> x"])
def test_parse_identity_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="--author"):
        deployrepo.parse_identity(text)


def test_parse_push_status_and_retryable() -> None:
    out = "To file:///r.git\n!\tHEAD:refs/heads/main\t[rejected] (fetch first)\nDone\n"
    assert deployrepo.parse_push_status(out) == [("!", "[rejected] (fetch first)")]
    assert deployrepo.is_retryable_rejection("[rejected] (non-fast-forward)")
    assert deployrepo.is_retryable_rejection("[remote rejected] (cannot lock ref 'refs/heads/main': is at x)")
    assert deployrepo.is_retryable_rejection("[remote rejected] (failed to update ref)")
    assert not deployrepo.is_retryable_rejection("[remote rejected] (pre-receive hook declined)")
    assert not deployrepo.is_retryable_rejection("[remote failure] (remote failed to report status)")


# --- real git over file:// ---------------------------------------------------------------------------


def test_default_branch_clone_commit_push(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path, {"a.yaml": "image: x:1\n"}, branch="production")
    r = deployrepo.open_remote(remote.url, environ={})
    assert deployrepo.default_branch(r) == "production"
    work = tmp_path / "clone"
    deployrepo.clone(r, work, "production")
    assert git("rev-parse", "--is-shallow-repository", cwd=work).strip() == "true"
    assert (work / "a.yaml").read_text() == "image: x:1\n"
    (work / "a.yaml").write_text("image: x:2\n")
    sha = deployrepo.commit(work, ["a.yaml"], "Update x image to x:2", BOT)
    assert deployrepo.push(work, r, "production") == deployrepo.PushOutcome(ok=True, rejected=False)
    assert remote.head("production") == sha
    assert remote.git("log", "-1", "--format=%an <%ae>|%cn <%ce>", "production").strip() == (
        "Bot <bot@x.org>|Bot <bot@x.org>")


def test_clone_without_a_branch_takes_the_remotes_head_without_ls_remote(tmp_path: Path, monkeypatch) -> None:
    remote = make_bare_remote(tmp_path, {"a.yaml": "image: x:1\n"}, branch="production")
    r = deployrepo.open_remote(remote.url, environ={})
    calls: list[str] = []
    real = deployrepo.git.run

    def recorded(args, *a, **kw):  # type: ignore[no-untyped-def]
        calls.append(args[0])
        return real(args, *a, **kw)

    monkeypatch.setattr(deployrepo.git, "run", recorded)
    assert deployrepo.clone(r, tmp_path / "clone", None, checkout=False) == "production"
    assert "ls-remote" not in calls
    assert git("rev-parse", "HEAD", cwd=tmp_path / "clone").strip() == remote.head("production")


def test_clone_without_a_branch_when_the_remote_head_names_none(tmp_path: Path) -> None:
    """A bare repo whose HEAD is `master` while only `release` was pushed: the one branch is taken (as
    default_branch does); an empty repository is an error naming it; no clone dir is left half-made."""
    remote = make_bare_remote(tmp_path / "a", {"a.yaml": "image: x:1\n"}, branch="release")
    remote.git("symbolic-ref", "HEAD", "refs/heads/master")
    r = deployrepo.open_remote(remote.url, environ={})
    assert deployrepo.clone(r, tmp_path / "clone", None, checkout=False) == "release"
    assert git("rev-parse", "HEAD", cwd=tmp_path / "clone").strip() == remote.head("release")
    empty = tmp_path / "empty.git"
    subprocess.run(["git", "init", "-q", "--bare", str(empty)], check=True)
    with pytest.raises(GitError, match="no branch"):
        deployrepo.clone(deployrepo.open_remote(empty.as_uri(), environ={}), tmp_path / "clone2", None)
    assert not (tmp_path / "clone2").exists()


def test_a_branch_named_like_another_ref_is_its_own_name(tmp_path: Path) -> None:
    """`--short`/`--abbrev-ref` say `heads/X` for a branch X that a tag (or origin/HEAD, for a branch named
    `origin`) also names: the clone pushed to refs/heads/heads/origin, a local bump fetched heads/X."""
    remote = make_bare_remote(tmp_path / "a", {"a.yaml": "image: x:1\n"}, branch="origin")
    r = deployrepo.open_remote(remote.url, environ={})
    assert deployrepo.clone(r, tmp_path / "clone", None, checkout=False) == "origin"
    checkout = remote.clone(tmp_path / "co")
    git("checkout", "--quiet", "-b", "release-1", cwd=checkout)
    git("tag", "release-1", cwd=checkout)
    assert deployrepo.current_branch(checkout) == "release-1"
    git("checkout", "--quiet", "--detach", cwd=checkout)
    assert deployrepo.current_branch(checkout) is None


def test_push_rejected_when_remote_moved_then_fetch_reset(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path, {"a.yaml": "image: x:1\n", "b.yaml": "image: y:1\n"})
    r = deployrepo.open_remote(remote.url, environ={})
    work = tmp_path / "clone"
    deployrepo.clone(r, work, "main")
    moved = remote.commit_change("b.yaml", "image: y:2\n")
    (work / "a.yaml").write_text("image: x:2\n")
    deployrepo.commit(work, ["a.yaml"], "bump", BOT)
    outcome = deployrepo.push(work, r, "main")
    assert not outcome.ok and outcome.rejected and "[rejected]" in outcome.reason
    assert remote.head() == moved  # nothing was forced
    assert deployrepo.fetch_reset(work, r, "main") == moved
    assert (work / "a.yaml").read_text() == "image: x:1\n" and (work / "b.yaml").read_text() == "image: y:2\n"


WEIRD = ["a b/x.yaml", "st*r/[set].yaml", "#hash/!bang.yml", "back\\slash.yaml", "trailing .yaml ",
         "q?.yaml", "deep/er/ünï.yaml", "latin1-caf\udce9.yaml"]  # the last: byte 0xe9, not UTF-8


def _files(work: Path) -> set[str]:
    return {p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file() and ".git" not in p.parts}


def test_check_out_matching_selects_exactly_the_files_naming_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files: dict[str, str | bytes] = {name: "image: reg.io/team/web:1\n" for name in WEIRD}
    files |= {
        "apps/web/deployment.yaml": "spec:\n  image: reg.io/team/web:1\n",
        "apps/api/deployment.yaml": "spec:\n  image: reg.io/team/api:1\n",
        "README.md": "web is deployed from here\n",  # not YAML: never selected
        "apps/web/kustomization.yml": "images:\n  - name: web\n",
    }
    remote = make_bare_remote(tmp_path, files)
    r = deployrepo.open_remote(remote.url, environ={})
    work = tmp_path / "clone"
    deployrepo.clone(r, work, "main", checkout=False)
    assert _files(work) == set()
    trace = tmp_path / "trace"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    deployrepo.check_out_matching(work, ["web"], (".yaml", ".yml"))
    monkeypatch.delenv("GIT_TRACE")
    wanted = {*(n for n in WEIRD if n.endswith((".yaml", ".yml"))), "apps/web/deployment.yaml",
              "apps/web/kustomization.yml"}
    assert _files(work) == wanted
    # blobless: the YAML blobs came in ONE fetch; the README's blob was never fetched
    assert sum("built-in: git fetch" in line for line in trace.read_text().splitlines()) == 1
    missing = [ln[1:] for ln in git("rev-list", "--objects", "--missing=print", "HEAD", cwd=work).splitlines()
               if ln.startswith("?")]
    assert missing == [git("rev-parse", "HEAD:README.md", cwd=work).strip()]
    assert git("status", "--porcelain", cwd=work) == ""  # the rest is in the index, just not on disk
    # a commit of a selected file changes only that file
    (work / "apps/web/deployment.yaml").write_text("spec:\n  image: reg.io/team/web:2\n")
    deployrepo.commit(work, ["apps/web/deployment.yaml"], "bump", BOT)
    assert deployrepo.push(work, r, "main").ok
    assert git("diff", "--name-only", "HEAD~1", "HEAD", cwd=remote.path).split() == ["apps/web/deployment.yaml"]
    assert len(git("ls-tree", "-r", "--name-only", "HEAD", cwd=remote.path).splitlines()) == len(files)


def test_check_out_matching_after_the_remote_moved_and_with_no_match(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path, {"a.yaml": "image: web:1\n", "b.yaml": "image: api:1\n"})
    r = deployrepo.open_remote(remote.url, environ={})
    work = tmp_path / "clone"
    deployrepo.clone(r, work, "main", checkout=False)
    deployrepo.check_out_matching(work, ["nothing-names-this"], (".yaml",))
    assert _files(work) == set()
    deployrepo.check_out_matching(work, ["web"], (".yaml",))
    assert _files(work) == {"a.yaml"}
    remote.commit_change("c.yaml", "image: web:1\n")  # a new file naming the image
    deployrepo.fetch_reset(work, r, "main")
    deployrepo.check_out_matching(work, ["web"], (".yaml",))
    assert _files(work) == {"a.yaml", "c.yaml"}
    deployrepo.check_out_matching(work, None, (".yaml",))  # everything
    assert _files(work) == {"a.yaml", "b.yaml", "c.yaml"}
    assert git("status", "--porcelain", cwd=work) == ""


def test_check_out_matching_ignores_a_cone_mode_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[core]\n\tsparseCheckoutCone = true\n[index]\n\tsparse = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    remote = make_bare_remote(tmp_path, {"apps/a/x.yaml": "image: web:1\n", "apps/a/y.yaml": "image: api:1\n"})
    r = deployrepo.open_remote(remote.url, environ={})
    work = tmp_path / "clone"
    deployrepo.clone(r, work, "main", checkout=False)
    deployrepo.check_out_matching(work, ["web"], (".yaml",))
    assert _files(work) == {"apps/a/x.yaml"}  # cone mode would have taken the whole directory


def test_check_out_matching_in_a_full_clone_when_the_server_refuses_filters(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path, {"a.yaml": "image: web:1\n", "b.yaml": "image: api:1\n"})
    git("config", "uploadpack.allowFilter", "false", cwd=remote.path)
    r = deployrepo.open_remote(remote.url, environ={})
    work = tmp_path / "clone"
    deployrepo.clone(r, work, "main", checkout=False)
    objects = git("rev-list", "--objects", "--missing=print", "HEAD", cwd=work).splitlines()
    assert not [ln for ln in objects if ln.startswith("?")]  # every blob came with the clone
    deployrepo.check_out_matching(work, ["web"], (".yaml",))
    assert _files(work) == {"a.yaml"}


def test_fetch_reset_of_a_clone_with_nothing_checked_out_moves_head_only(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path, {"a.yaml": "image: web:1\n"})
    r = deployrepo.open_remote(remote.url, environ={})
    work = tmp_path / "clone"
    deployrepo.clone(r, work, "main", checkout=False)
    moved = remote.commit_change("b.yaml", "image: web:1\n")
    assert deployrepo.fetch_reset(work, r, "main") == moved
    assert _files(work) == set()


def test_push_to_new_branch(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path, {"a.yaml": "image: x:1\n"})
    r = deployrepo.open_remote(remote.url, environ={})
    work = tmp_path / "clone"
    deployrepo.clone(r, work, "main")
    (work / "a.yaml").write_text("image: x:2\n")
    sha = deployrepo.commit(work, ["a.yaml"], "bump", BOT)
    assert deployrepo.push(work, r, "bump/x-2").ok
    assert remote.head("bump/x-2") == sha and remote.head("main") != sha


def test_push_refused_by_hook_is_an_error_not_a_retry(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path, {"a.yaml": "image: x:1\n"})
    hook = remote.path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    r = deployrepo.open_remote(remote.url, environ={})
    work = tmp_path / "clone"
    deployrepo.clone(r, work, "main")
    (work / "a.yaml").write_text("image: x:2\n")
    deployrepo.commit(work, ["a.yaml"], "bump", BOT)
    with pytest.raises(GitError, match="refused.*pre-receive hook declined"):
        deployrepo.push(work, r, "main")


def test_unreachable_remote_is_git_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-repo.git").mkdir()
    r = deployrepo.open_remote((tmp_path / "not-a-repo.git").as_uri(), environ={})
    with pytest.raises(GitError) as exc:
        deployrepo.default_branch(r)
    assert exc.value.exit_code == 10


def test_missing_file_url_is_refused_up_front(tmp_path: Path) -> None:
    """file:// naming no directory: exit 2 at classification (before build-and-bump builds anything)."""
    with pytest.raises(UsageError, match="no such directory") as exc:
        deployrepo.open_remote((tmp_path / "missing.git").as_uri(), environ={})
    assert exc.value.exit_code == 2


def test_resolve_identity_without_any_git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    remote = make_bare_remote(tmp_path, {"a.yaml": "image: x:1\n"})
    work = remote.clone(tmp_path / "clone")
    assert deployrepo.resolve_identity(None, work) == DEFAULT
    assert deployrepo.resolve_identity("Ops <ops@x.org>", work) == deployrepo.Identity("Ops", "ops@x.org")
    git("config", "user.name", "Local Person", cwd=work)
    git("config", "user.email", "local@x.org", cwd=work)
    assert deployrepo.resolve_identity(None, work) == deployrepo.Identity("Local Person", "local@x.org")
    (work / "a.yaml").write_text("image: x:2\n")
    sha = deployrepo.commit(work, ["a.yaml"], "bump", DEFAULT)
    assert len(sha) == 40


def test_ensure_clean(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path, {"a.yaml": "image: x:1\n"})
    work = remote.clone(tmp_path / "clone")
    deployrepo.ensure_clean(work)
    write_tree(work, {"a.yaml": "image: x:9\n"})
    with pytest.raises(DirtyTreeError, match="a.yaml"):
        deployrepo.ensure_clean(work)


# --- smart HTTP with basic auth ------------------------------------------------------------------------


def test_http_token_auth_clone_push_and_nothing_left_behind(tmp_path: Path, http_git_server) -> None:
    token = "tok-5e5e5e-secret"
    remote = make_bare_remote(tmp_path / "srv", {"a.yaml": "image: x:1\n"})
    server = http_git_server(tmp_path / "srv", user="x-access-token", token=token)
    r = deployrepo.open_remote(server.url(), environ={"GITOPS_GIT_TOKEN": token})
    assert token not in repr(r) and r.auth == "token from GITOPS_GIT_TOKEN"
    assert deployrepo.default_branch(r) == "main"
    work = tmp_path / "clone"
    deployrepo.clone(r, work, "main")
    (work / "a.yaml").write_text("image: x:2\n")
    sha = deployrepo.commit(work, ["a.yaml"], "bump", BOT)
    assert deployrepo.push(work, r, "main").ok
    assert remote.head() == sha
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    for f in (work / ".git").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert token.encode() not in data and basic.encode() not in data, f


def test_http_bad_token_is_auth_error(tmp_path: Path, http_git_server) -> None:
    make_bare_remote(tmp_path / "srv", {"a.yaml": "image: x:1\n"})
    server = http_git_server(tmp_path / "srv", user="x-access-token", token="right-token")
    r = deployrepo.open_remote(server.url(), environ={"GITOPS_GIT_TOKEN": "wrong-token"})
    with pytest.raises(GitAuthError) as exc:
        deployrepo.default_branch(r)
    assert exc.value.exit_code == 11 and "wrong-token" not in exc.value.message
    no_token = deployrepo.open_remote(server.url(), environ={})
    with pytest.raises(GitAuthError):
        deployrepo.default_branch(no_token)


def test_file_url_with_localhost_or_another_host(tmp_path: Path) -> None:
    """file://localhost/path was exit 2 (`localhost/path` taken as a relative path): RFC 8089 allows an
    empty authority or localhost; another host is refused, naming it."""
    remote = make_bare_remote(tmp_path, {"a.yaml": "image: x:1\n"})
    for authority in ("localhost", "LOCALHOST"):
        r = deployrepo.open_remote(f"file://{authority}{remote.path}", environ={})
        assert r.url == remote.path.as_uri()
        assert deployrepo.default_branch(r) == "main"
    with pytest.raises(UsageError, match="host 'build-host' is not this machine") as exc:
        deployrepo.open_remote(f"file://build-host{remote.path}", environ={})
    assert exc.value.exit_code == 2
    with pytest.raises(UsageError, match="host 'build-host' is not this machine") as exc:
        deployrepo.open_remote(f"file://ci:s3cretPassw0rd@build-host{remote.path}", environ={})
    assert "s3cretPassw0rd" not in exc.value.message + str(exc.value.hint)
    with pytest.raises(UsageError, match="--deploy-repo 'file://localhost': no path"):
        deployrepo.open_remote("file://localhost", environ={})


def test_remote_says_keeps_the_servers_lines_on_one_line_without_credentials() -> None:
    stderr = ("remote: error: GH006: Protected branch update failed for refs/heads/main.\n"
              "remote: \n"
              "remote: error: see https://bot:s3cret-token-1@git.example.com/org/deploy/settings\n"
              "To https://git.example.com/org/deploy.git\n"
              " ! [remote rejected] HEAD -> main (protected branch hook declined)\n")
    said = deployrepo.remote_says(stderr)
    assert said == ("error: GH006: Protected branch update failed for refs/heads/main. "
                    "error: see https://git.example.com/org/deploy/settings")
    assert deployrepo.remote_says("error: failed to push some refs\n") == ""
    assert len(deployrepo.remote_says("remote: " + "x" * 1000)) == 400


# --- git.run stops git: a timeout, a cancel (after its settle time) ---------------------------------------


def _hanging_transport(tmp_path: Path, seconds: float) -> tuple[dict[str, str], Path]:
    """GIT_SSH_COMMAND for an ssh transport that answers nothing for `seconds`, then fails; its pid file."""
    pidfile = tmp_path / "transport.pid"
    script = tmp_path / "fake-ssh"
    script.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep {seconds}\n")
    script.chmod(0o755)
    return {"GIT_SSH_COMMAND": str(script)}, pidfile


def _ended(pidfile: Path, within: float = 3.0) -> bool:
    """The transport is gone (or a zombie) within `within` seconds: its group was signalled when the call
    returned, and a loaded machine may take a moment to deliver it."""
    import os
    import time

    pid = int(pidfile.read_text())
    deadline = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        if time.monotonic() > deadline:
            os.kill(pid, 9)  # leave nothing running
            return False
        time.sleep(0.02)


@pytest.mark.timeout(120)  # a call that waits for the transport's own end hangs
def test_a_timeout_stops_git_and_its_transport(tmp_path: Path) -> None:
    from gitops_cli import git as gitrun

    env, pidfile = _hanging_transport(tmp_path, 300)
    with pytest.raises(GitError) as err:
        gitrun.run(["ls-remote", "ssh://git@127.0.0.1/deploy.git"], env=env, what="reading the deploy repo",
                   timeout=0.5)
    assert err.value.message == "reading the deploy repo timed out after 0.5 s"
    assert _ended(pidfile)  # stopped, not left running


def test_a_cancel_lets_git_finish_within_its_settle_time_else_stops_it(tmp_path: Path) -> None:
    import threading

    from gitops_cli import git as gitrun

    cancel = threading.Event()
    cancel.set()
    env, pidfile = _hanging_transport(tmp_path, 1)
    settled = gitrun.run(["ls-remote", "ssh://git@127.0.0.1/deploy.git"], env=env, check=False, cancel=cancel,
                         settle=10)
    assert settled.status != 0 and "Could not read from remote repository" in settled.stderr  # its own end
    env, pidfile = _hanging_transport(tmp_path, 60)
    with pytest.raises(gitrun.Cancelled, match="git ls-remote cancelled"):
        gitrun.run(["ls-remote", "ssh://git@127.0.0.1/deploy.git"], env=env, cancel=cancel, settle=0.3)
    assert _ended(pidfile)


def test_a_remote_head_naming_no_branch_lists_some_and_says_how_many_more(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "a", {"a.yaml": "image: x:1\n"}, branch="main")
    for n in range(1, 13):
        remote.git("branch", f"feature/b{n}", "main")
    remote.git("symbolic-ref", "HEAD", "refs/heads/gone")
    r = deployrepo.open_remote(remote.url, environ={})
    with pytest.raises(GitError) as exc:
        deployrepo.default_branch(r)
    assert exc.value.message == (f"{remote.url}: the remote's HEAD names no branch, and it has 13 branches: main, "
                                 "feature/b1, feature/b10, feature/b11, feature/b12 and 8 more")
    assert exc.value.hint == "pass --branch (main?)"
    remote.git("branch", "-m", "main", "trunk")
    with pytest.raises(GitError, match=r"b2 and 8 more \(neither main nor master\)$") as exc:
        deployrepo.default_branch(r)
    assert exc.value.hint == "pass --branch"


def test_check_out_matching_below_paths_lays_them_out_as_a_full_checkout_does(tmp_path: Path) -> None:
    """`paths`: only the files below them are fetched, searched and checked out; a directory given exists on
    disk though none of its files is selected, and a file given (or a symlink a path goes through) is checked
    out, so that what reads the paths on disk (discover) sees them as in a full checkout."""
    files: dict[str, str | bytes] = {
        "team[0]/a/x.yaml": "image: web:1  # a\n",  # a wildcard in the path's name: taken literally
        "team[0]/a/y.yaml": "image: api:1  # b\n",
        "team0/a/z.yaml": "image: web:1  # c\n",  # what `team[0]` would match as a glob
        "team1/x.yaml": "image: web:1  # d\n",
        "team1/empty/y.yaml": "image: api:1  # e\n",
        "team1/notes.txt": "web\n",
        "other.yaml": "image: api:1  # f\n",
    }
    remote = make_bare_remote(tmp_path, files)
    seed = tmp_path / "seed"
    git("clone", "--quiet", str(remote.path), str(seed))
    os.symlink("team1", seed / "link")
    git("add", "link", cwd=seed)
    git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "--quiet", "-m", "link", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
    r = deployrepo.open_remote(remote.url, environ={})
    work = tmp_path / "clone"
    deployrepo.clone(r, work, "main", checkout=False)
    deployrepo.check_out_matching(work, ["web"], (".yaml",), paths=["team[0]", "team1/empty", "other.yaml",
                                                                    "link/x.yaml", "missing"])
    assert _files(work) == {"team[0]/a/x.yaml", "other.yaml"}
    assert (work / "team1" / "empty").is_dir() and (work / "link").is_symlink() and not (work / "missing").exists()
    missing = {ln[1:] for ln in git("rev-list", "--objects", "--missing=print", "HEAD", cwd=work).splitlines()
               if ln.startswith("?")}
    outside = {git("rev-parse", f"HEAD:{p}", cwd=work).strip() for p in ("team0/a/z.yaml", "team1/x.yaml",
                                                                          "team1/notes.txt")}
    assert outside <= missing  # never fetched
    deployrepo.check_out_matching(work, ["web"], (".yaml",), paths=["."])  # all of it: no limit
    assert _files(work) == {"team[0]/a/x.yaml", "team0/a/z.yaml", "team1/x.yaml"}
