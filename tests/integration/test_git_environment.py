"""The git environment gitops gives git: the user's git config (a private HOME's ~/.gitconfig here), the
repository of the current directory and the user's credential programs never change what gitops' own
git commands do, and the user's credential store is never touched by a credential of gitops'."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.fixtures.cli import GITOPS, gitops_env
from tests.fixtures.gitremotes import git, make_bare_remote
from tests.fixtures.gitremotes import private_git_env as _env
from tests.fixtures.procs import stop_process

pytestmark = pytest.mark.integration

APP = "registry.example.com/team/a1"
TOKEN = "S3cretTok3nValue-gitenv"
FILES = {
    f"apps/a{i}/deploy.yaml": f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: a{i}
spec:
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/team/a{i}:v0
"""
    for i in (1, 2, 3)
}


def _global(tmp_path: Path, *pairs: tuple[str, str]) -> None:
    """Set entries of the private HOME's global git config (`--add`: a key may repeat)."""
    for key, value in pairs:
        git("config", "--global", "--add", key, value, env=_env(tmp_path))


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(GITOPS), *args], cwd=cwd, env=gitops_env(env), text=True, capture_output=True,
                          timeout=120)


# --- 1, 6: credentials ------------------------------------------------------------------------------


def test_a_wrong_token_never_reaches_the_users_credential_helpers(tmp_path: Path, http_git_server) -> None:
    """A wrong GITOPS_GIT_TOKEN: exit 11, and the user's helpers (a global one and one for that URL) are
    neither asked nor told to erase the valid credential they store (git used to: ~/.git-credentials was
    emptied).  Without a token of gitops', the same helpers give the credential and the bump works."""
    remote = make_bare_remote(tmp_path / "srv", FILES)
    server = http_git_server(tmp_path / "srv", user="*", token=TOKEN)
    log = tmp_path / "helper.log"
    helper = _script(tmp_path / "bin" / "helper", f'echo "$1" >> {log}\n')
    store = tmp_path / "home" / ".git-credentials"
    env = _env(tmp_path)
    stored = f"http://bob:{TOKEN}@127.0.0.1:{server.port}\n"
    store.write_text(stored)
    _global(tmp_path, ("credential.helper", "store"),
            (f"credential.http://127.0.0.1:{server.port}.helper", str(helper)))

    res = _run(["bump", "--deploy-repo", server.url(), "--image", f"{APP}:v1"],
               {**env, "GITOPS_GIT_TOKEN": "Wr0ngTokenValue99"})
    assert res.returncode == 11, res.stderr
    assert store.read_text() == stored
    assert not log.exists()

    res = _run(["bump", "--deploy-repo", server.url(), "--image", f"{APP}:v1"], env)
    assert res.returncode == 0, res.stderr
    assert remote.head() == res.stdout.strip()
    assert "store" in log.read_text().split()  # the user's helpers are in use when gitops has no credential


def test_a_parent_gits_config_never_undoes_gitops_own(tmp_path: Path, http_git_server) -> None:
    """gitops run from a git alias (or hook) under `git -c credential.helper=store`, or with
    GIT_CONFIG_PARAMETERS set: git reads those after the GIT_CONFIG_COUNT entries, and they undid gitops'
    reset of the helpers, which then erased the stored credential after the wrong token's 401 (exit 11)."""
    make_bare_remote(tmp_path / "srv", FILES)
    server = http_git_server(tmp_path / "srv", user="*", token=TOKEN)
    store = tmp_path / "home" / ".git-credentials"
    env = _env(tmp_path, GITOPS_GIT_TOKEN="Wr0ngTokenValue99", PATH=f"{GITOPS.parent}:{os.environ['PATH']}")
    stored = f"http://bob:{TOKEN}@127.0.0.1:{server.port}\n"
    store.write_text(stored)
    _global(tmp_path, ("alias.deploybump", "!gitops bump"))
    bump = ["--deploy-repo", server.url(), "--image", f"{APP}:v1"]
    res = subprocess.run(["git", "-c", "credential.helper=store", "deploybump", *bump], env=gitops_env(env),
                         text=True, capture_output=True, timeout=120)
    assert res.returncode == 11, res.stderr
    assert store.read_text() == stored
    res = _run(["bump", *bump], {**env, "GIT_CONFIG_PARAMETERS": "'credential.helper'='store'"})
    assert res.returncode == 11, res.stderr
    assert store.read_text() == stored


def test_askpass_programs(tmp_path: Path, http_git_server) -> None:
    """GIT_ASKPASS is a credential source (CI's: Jenkins' git credentials binding) when gitops has none of
    its own; SSH_ASKPASS is never run; with a token of gitops' no askpass program is asked."""
    remote = make_bare_remote(tmp_path / "srv", FILES)
    server = http_git_server(tmp_path / "srv", user="*", token=TOKEN)
    log = tmp_path / "askpass.log"
    askpass = _script(tmp_path / "bin" / "askpass",
                      f'echo "$1" >> {log}\ncase "$1" in Username*) echo bob;; *) echo {TOKEN};; esac\n')
    env = _env(tmp_path)
    bump = ["bump", "--deploy-repo", server.url(), "--image"]

    res = _run([*bump, f"{APP}:v1"], {**env, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
                                      "DISPLAY": ":0"})
    assert res.returncode == 11, res.stderr
    assert not log.exists()

    res = _run([*bump, f"{APP}:v1"], {**env, "GIT_ASKPASS": str(askpass), "GITOPS_GIT_TOKEN": "Wr0ngToken99"})
    assert res.returncode == 11, res.stderr
    assert not log.exists()

    res = _run([*bump, f"{APP}:v1"], {**env, "GIT_ASKPASS": str(askpass)})
    assert res.returncode == 0, res.stderr
    assert remote.head() == res.stdout.strip()
    assert "Username" in log.read_text()


@pytest.mark.timeout(180)  # git never running the askpass program
def test_an_askpass_program_that_never_answers_is_stopped_by_an_interrupt(tmp_path: Path, http_git_server) -> None:
    """No timeout applies to a credential program, but an interrupt (SIGTERM, a CI job's cancel or timeout)
    stops it with git: exit 130 at once, nothing of it left running."""
    make_bare_remote(tmp_path / "srv", FILES)
    server = http_git_server(tmp_path / "srv", user="*", token=TOKEN)
    mark = f"gitenv-askpass-{os.getpid()}-{time.monotonic_ns()}"
    started = tmp_path / "asked"
    askpass = _script(tmp_path / "bin" / "askpass", f"touch {started}\nexec sleep 600 # {mark}\n")
    proc = subprocess.Popen([str(GITOPS), "bump", "--deploy-repo", server.url(), "--image", f"{APP}:v1"],
                            env=gitops_env(_env(tmp_path, GIT_ASKPASS=str(askpass))), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while not started.exists():
            if proc.poll() is not None:
                pytest.fail(f"gitops ended without running the askpass program: {proc.communicate()[1]}")
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        stop_process(proc)
    assert proc.returncode == 130, err
    assert "error: interrupted" in err
    time.sleep(0.2)
    left = subprocess.run(["pgrep", "-f", mark], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def _basic(user: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def _headers(request: dict, name: str) -> list[str]:
    """The values of one header (any case) of a request the test server received."""
    return [value for key, value in request["headers"] if key.lower() == name.lower()]


def _git_argv_logger(tmp_path: Path) -> tuple[Path, Path]:
    """(a directory holding a `git` that logs its command line and runs the real git, the log)."""
    log = tmp_path / "git-argv.log"
    wrapper = _script(tmp_path / "argv-bin" / "git", f'printf "%s\\n" "$*" >> {log}\nexec {shutil.which("git")} "$@"\n')
    return wrapper.parent, log


@pytest.mark.parametrize("route", ["git -c", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "global",
                                   "local checkout"])
def test_gitops_token_is_the_only_authorization_header_the_server_gets(tmp_path: Path, http_git_server,
                                                                        route: str) -> None:
    """An Authorization header of the user's (`git -c http.extraHeader=...` from a wrapper, the environment's
    config entries, the global config, a local checkout's config as actions/checkout writes it), plain or for
    that URL, was sent with gitops' token: two Authorization headers, which the server refuses (GitHub:
    400).  Now gitops' is the only one; the user's other extra headers still go there, once; the token is
    on no git command line and in no file of the checkout."""
    remote = make_bare_remote(tmp_path / "srv", FILES)
    server = http_git_server(tmp_path / "srv", user="*", token=TOKEN)
    url, host = server.url(), f"http://127.0.0.1:{server.port}/"
    theirs = f"AUTHORIZATION: basic {base64.b64encode(b'x-access-token:Th3irT0ken').decode()}"
    argv_dir, argv_log = _git_argv_logger(tmp_path)
    env = _env(tmp_path, GITOPS_GIT_TOKEN=TOKEN, PATH=f"{argv_dir}:{os.environ['PATH']}")
    deploy_repo = url
    if route == "git -c":  # gitops run from a git alias of a wrapper that adds its own header
        env["PATH"] = f"{GITOPS.parent}:{env['PATH']}"
        _global(tmp_path, ("alias.deploybump", "!gitops bump"))
        command = [shutil.which("git") or "git", "-c", f"http.extraHeader={theirs}",
                   "-c", "http.extraHeader=X-Extra: 1", "deploybump"]
    else:
        command = [str(GITOPS), "bump"]
    if route == "GIT_CONFIG_PARAMETERS":
        env["GIT_CONFIG_PARAMETERS"] = f"'http.{url}.extraHeader'='{theirs}' 'http.{url}.extraheader'='X-Extra: 1'"
    elif route == "GIT_CONFIG_COUNT":
        env.update(GIT_CONFIG_COUNT="2", GIT_CONFIG_KEY_0="http.extraHeader", GIT_CONFIG_VALUE_0="X-Extra: 1",
                   GIT_CONFIG_KEY_1=f"http.{host}.extraHeader", GIT_CONFIG_VALUE_1=theirs)
    elif route == "global":
        _global(tmp_path, ("http.extraHeader", "X-Extra: 1"), (f"http.{url}.extraHeader", theirs))
    elif route == "local checkout":
        checkout = tmp_path / "deploy"
        git("clone", "--quiet", remote.url, str(checkout), env=env)
        git("remote", "set-url", "origin", url, cwd=checkout)
        git("config", f"http.{host}.extraheader", theirs, cwd=checkout)
        git("config", "--add", f"http.{host}.extraheader", "X-Extra: 1", cwd=checkout)
        deploy_repo = str(checkout)
    res = subprocess.run([*command, "--deploy-repo", deploy_repo, "--image", f"{APP}:v1"], env=gitops_env(env),
                         text=True, capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert remote.head() == res.stdout.strip()
    requests = server.requests()
    assert requests
    for request in requests:
        assert _headers(request, "Authorization") == [_basic("x-access-token", TOKEN)], request
        assert _headers(request, "X-Extra") == ["1"], request
    # git's command lines, as gitops ran them (git runs an alias with its own directory first on PATH)
    argv = argv_log.read_text() if route != "git -c" else ""
    assert route == "git -c" or (" ls-remote " in argv and " push " in argv)
    for secret in (TOKEN, _basic("x-access-token", TOKEN).split()[1]):
        assert secret not in argv and secret not in res.stderr
        if route == "local checkout":
            assert secret not in (tmp_path / "deploy" / ".git" / "config").read_text()


@pytest.mark.parametrize("verb", ["bump", "history", "sync", "local checkout"])
def test_a_password_with_a_blank_is_refused_and_never_on_a_git_command_line(tmp_path: Path, verb: str) -> None:
    """`http://bot:S3cret Pw123@127.0.0.1:1/x.git`: git.strip_credentials ended the URL at the blank, so the
    "stripped" URL git was given -- on its command line, seen by every user (ps) -- held the password
    (`Cloning http://bot:***@...`).  Now exit 2 before any work, as for a `/` in the user-info, for
    --deploy-repo, sync --repo and a local checkout's origin; the password is in no output."""
    password = "S3cret Pw123-blank"
    url = f"http://bot:{password}@127.0.0.1:1/x.git"
    argv_dir, argv_log = _git_argv_logger(tmp_path)
    env = _env(tmp_path, PATH=f"{argv_dir}:{os.environ['PATH']}")
    if verb == "local checkout":
        remote = make_bare_remote(tmp_path / "srv", FILES)
        checkout = tmp_path / "deploy"
        git("clone", "--quiet", remote.url, str(checkout), env=env)
        git("remote", "set-url", "origin", url, cwd=checkout)
        args = ["bump", "--deploy-repo", str(checkout), "--image", f"{APP}:v1"]
    elif verb == "sync":
        args = ["sync", "--repo", url, "--cache-dir", str(tmp_path / "cache")]
    else:
        args = [verb, "--deploy-repo", url, "--image", f"{APP}:v1" if verb == "bump" else APP]
    res = _run(args, env)
    assert res.returncode == 2, res.stderr
    assert "holds a blank or a control character" in res.stderr
    argv = argv_log.read_text() if argv_log.exists() else ""
    for part in (password, "S3cret", "Pw123"):
        assert part not in argv and part not in res.stdout + res.stderr


def test_the_secret_variables_reach_no_hook_of_a_local_checkout(tmp_path: Path, http_git_server) -> None:
    """git got gitops' whole environment, so a local deploy checkout's hooks (`.git/hooks/post-commit` = `env
    >> log`) saw GITOPS_GIT_TOKEN, GITOPS_REGISTRY_PASSWORD, GITHUB_TOKEN and CI_JOB_TOKEN.  git needs none of
    them (its credential is in GIT_CONFIG_PARAMETERS): they are empty in git's environment now."""
    remote = make_bare_remote(tmp_path / "srv", FILES)
    server = http_git_server(tmp_path / "srv", user="*", token=TOKEN)
    secrets = {"GITOPS_GIT_TOKEN": TOKEN, "GITOPS_REGISTRY_PASSWORD": "RegistryPassw0rd-hook",
               "GITHUB_TOKEN": "ghs_GithubTokenForHook1", "CI_JOB_TOKEN": "glcbt-CiJobTokenForHook1"}
    env = _env(tmp_path, GITOPS_REGISTRY_USERNAME="ci", MY_OWN_VARIABLE="kept", **secrets)
    checkout = tmp_path / "deploy"
    git("clone", "--quiet", remote.url, str(checkout), env=env)
    git("remote", "set-url", "origin", server.url(), cwd=checkout)
    logs = {hook: tmp_path / f"{hook}.env" for hook in ("post-commit", "reference-transaction")}
    for hook, log in logs.items():
        _script(checkout / ".git" / "hooks" / hook, f"env >> {log}\ncat > /dev/null\n")
    res = _run(["bump", "--deploy-repo", str(checkout), "--image", f"{APP}:v1"], env)
    assert res.returncode == 0, res.stderr
    assert remote.head() == res.stdout.strip()
    for hook, log in logs.items():
        seen = log.read_text()
        assert "MY_OWN_VARIABLE=kept" in seen, hook
        for name, value in secrets.items():
            assert value not in seen, (hook, name)
            assert f"{name}=\n" in seen, (hook, name)


# --- 2: the current directory's repository --------------------------------------------------------------


def test_remote_commands_never_read_the_repository_of_the_current_directory(tmp_path: Path,
                                                                              http_git_server) -> None:
    """actions/checkout writes an http.<url>.extraHeader into the app's checkout, where CI runs gitops: the
    ls-remote of --push-branch (and of build-and-bump's refresh) read it and sent that header first."""
    remote = make_bare_remote(tmp_path / "srv", FILES)
    server = http_git_server(tmp_path / "srv", user="*", token=TOKEN)
    app = tmp_path / "app"
    git("init", "--quiet", str(app))
    git("config", f"http.http://127.0.0.1:{server.port}/.extraheader",
        "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46b3RoZXI=", cwd=app)  # x-access-token:other
    res = _run(["bump", "--deploy-repo", server.url(), "--image", f"{APP}:v1", "--push-branch", "review"],
               _env(tmp_path, GITOPS_GIT_TOKEN=TOKEN), cwd=app)
    assert res.returncode == 0, res.stderr
    assert remote.head("review") == res.stdout.strip()


# --- 3: colours ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["color.ui", "color.grep"])
def test_coloured_git_output_is_never_parsed(tmp_path: Path, key: str) -> None:
    """`git grep -l` printed file names in colour codes: no file was checked out, "no reference found"."""
    remote = make_bare_remote(tmp_path / "srv", FILES)
    _global(tmp_path, (key, "always"), ("color.diff", "always"))
    env = _env(tmp_path)
    res = _run(["bump", "--deploy-repo", remote.url, "--image", f"{APP}:v1"], env)
    assert res.returncode == 0, res.stderr
    res = _run(["rollback", "--deploy-repo", remote.url, "--image", APP, "--no-verify"], env)
    assert res.returncode == 0, res.stderr
    assert b"image: registry.example.com/team/a1:v0\n" in remote.show("apps/a1/deploy.yaml")


# --- what gitops parses of git's log output -----------------------------------------------------------------


def _signing(tmp_path: Path) -> tuple[Path, Path]:
    """An ssh signing key and an allowed-signers file naming it (gpg.format=ssh)."""
    key = tmp_path / "signing-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed-signers"
    allowed.write_text("fixture@example.com " + key.with_suffix(".pub").read_text())
    return key, allowed


def test_history_reads_dates_and_trailers_whatever_the_log_config_says(tmp_path: Path) -> None:
    """log.showSignature and a signed commit: the date column held git's "Good signature" lines; with
    trailer.separators `=`, gitops' own `Image:` trailers were not read (by_gitops false)."""
    remote = make_bare_remote(tmp_path / "srv", FILES)
    env = _env(tmp_path)
    res = _run(["bump", "--deploy-repo", remote.url, "--image", f"{APP}:v1"], env)
    assert res.returncode == 0, res.stderr
    key, allowed = _signing(tmp_path)
    work = remote.clone(tmp_path / "work")
    (work / "apps/a1/deploy.yaml").write_text(FILES["apps/a1/deploy.yaml"].replace(":v0", ":v2"))
    git("-c", "gpg.format=ssh", "-c", f"user.signingKey={key}", "commit", "--quiet", "-S", "-am", "signed", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    _global(tmp_path, ("log.showSignature", "true"), ("gpg.format", "ssh"),
            ("gpg.ssh.allowedSignersFile", str(allowed)), ("trailer.separators", "="))
    assert "Good" in git("log", "-1", "--format=%cI", "main", cwd=tmp_path / "srv" / "deploy.git", env=env)
    res = _run(["history", "--deploy-repo", remote.url, "--image", APP, "--output", "json"], env)
    assert res.returncode == 0, res.stderr
    entries = json.loads(res.stdout)["entries"]
    for entry in entries:
        datetime.fromisoformat(entry["date"])
    assert [(e["tag"], e["by_gitops"]) for e in entries] == [("v2", False), ("v1", True), ("v0", False)]


def test_names_and_messages_are_read_and_written_as_utf8_whatever_the_encoding_config(tmp_path: Path) -> None:
    """i18n.logOutputEncoding ISO-8859-1: history printed `J\\xf6rg`, its JSON held lone surrogates; an
    i18n.commitEncoding of ISO-8859-1 labelled gitops' (UTF-8) commit as ISO-8859-1."""
    remote = make_bare_remote(tmp_path / "srv", FILES)
    work = remote.clone(tmp_path / "work")
    (work / "apps/a1/deploy.yaml").write_text(FILES["apps/a1/deploy.yaml"].replace(":v0", ":v1"))
    git("commit", "--quiet", "-am", "Größer", "--author", "Jörg Müller <fixture@example.com>", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    _global(tmp_path, ("i18n.logOutputEncoding", "ISO-8859-1"), ("i18n.commitEncoding", "ISO-8859-1"))
    env = _env(tmp_path)
    res = _run(["bump", "--deploy-repo", remote.url, "--image", f"{APP}:v2", "--author", "Zoë Bøe <z@example.com>",
                "--message", "Déploie {image}"], env)
    assert res.returncode == 0, res.stderr
    assert remote.git("log", "-1", "--format=%an|%s", "main").strip() == f"Zoë Bøe|Déploie {APP}:v2"
    res = _run(["history", "--deploy-repo", remote.url, "--image", APP, "--output", "json"], env)
    assert res.returncode == 0, res.stderr
    entries = json.loads(res.stdout)["entries"]
    assert [(e["author"], e["subject"]) for e in entries[:2]] == [
        ("Zoë Bøe <z@example.com>", f"Déploie {APP}:v2"), ("Jörg Müller <fixture@example.com>", "Größer")]
    res = _run(["history", "--deploy-repo", remote.url, "--image", APP], env)
    assert "Jörg Müller" in res.stdout and "Zoë Bøe" in res.stdout


# --- 8: url.<base>.insteadOf ----------------------------------------------------------------------------


def test_the_token_goes_to_the_url_insteadof_rewrites_to_and_a_ci_token_only_to_its_host(
        tmp_path: Path, http_git_server) -> None:
    remote = make_bare_remote(tmp_path / "srv", FILES)
    server = http_git_server(tmp_path / "srv", user="*", token=TOKEN)
    _global(tmp_path, (f"url.http://127.0.0.1:{server.port}/.insteadOf", "https://git.example.com/"))
    env = _env(tmp_path)
    named = "https://git.example.com/deploy.git"
    res = _run(["bump", "--deploy-repo", named, "--image", f"{APP}:v1"], {**env, "GITOPS_GIT_TOKEN": TOKEN})
    assert res.returncode == 0, res.stderr
    assert remote.head() == res.stdout.strip()
    assert f"sent to {server.url()}, where url.<base>.insteadOf rewrites the URL" in res.stderr
    # GITHUB_TOKEN goes to GitHub's host only: git.example.com -> 127.0.0.1 is neither
    res = _run(["bump", "--deploy-repo", named, "--image", f"{APP}:v2"],
               {**env, "GITHUB_TOKEN": TOKEN, "GITHUB_SERVER_URL": "https://git.example.com"})
    assert res.returncode == 11, res.stderr
    assert TOKEN not in res.stderr


@pytest.mark.parametrize("server_url", ["http://127.0.0.1", "https://127.0.0.1:{port}", "https://127.0.0.1"])
def test_the_github_token_never_goes_to_another_port_or_scheme_of_its_servers_host(
        tmp_path: Path, http_git_server, server_url: str) -> None:
    """GITHUB_TOKEN went to any port of GITHUB_SERVER_URL's host, over plain http too: a listener on
    127.0.0.1:PORT got `x-access-token:TOKEN` with GITHUB_SERVER_URL=https://127.0.0.1.  Now only the
    server's own scheme, host and port get it: none was sent (exit 11)."""
    make_bare_remote(tmp_path / "srv", FILES)
    server = http_git_server(tmp_path / "srv", user="*", token=TOKEN)
    env = _env(tmp_path, GITHUB_TOKEN=TOKEN, GITHUB_SERVER_URL=server_url.format(port=server.port))
    res = _run(["bump", "--deploy-repo", server.url(), "--image", f"{APP}:v1"], env)
    assert res.returncode == 11, res.stderr
    assert TOKEN not in res.stdout + res.stderr
    got = [_headers(request, "Authorization") for request in server.requests()]
    assert got and all(values == [] for values in got)


@pytest.mark.parametrize("token", ["GITOPS_GIT_TOKEN", "GITHUB_TOKEN"])
def test_the_token_follows_push_insteadof_to_the_host_it_may_go_to(tmp_path: Path, http_git_server,
                                                                    token: str) -> None:
    """url.<base>.pushInsteadOf sends the push to another URL (another server here): it got no credential (exit
    11).  Now it gets the one the same rule as for url.<base>.insteadOf gives it: GITOPS_GIT_TOKEN goes to any
    host, GITHUB_TOKEN only to GitHub's (GITHUB_SERVER_URL's 127.0.0.1 here; `localhost` is another host,
    which never gets it: exit 11, nothing pushed)."""
    remote = make_bare_remote(tmp_path / "fetched", FILES)
    fetched = http_git_server(tmp_path / "fetched", user="*", token=TOKEN)
    (tmp_path / "pushed").mkdir()
    shutil.copytree(remote.path, tmp_path / "pushed" / "push.git")  # the same history: a mirror to push to
    pushed = http_git_server(tmp_path / "pushed", user="*", token=TOKEN)
    push_host = "127.0.0.1" if token == "GITOPS_GIT_TOKEN" else "localhost"
    push_url = f"http://{push_host}:{pushed.port}/push.git"
    _global(tmp_path, (f"url.{push_url}.pushInsteadOf", fetched.url()))
    env = _env(tmp_path, **{token: TOKEN, "GITHUB_SERVER_URL": f"http://127.0.0.1:{fetched.port}"})
    before = remote.head()
    res = _run(["bump", "--deploy-repo", fetched.url(), "--image", f"{APP}:v1"], env)
    assert TOKEN not in res.stdout + res.stderr
    assert remote.head() == before  # never pushed to the fetch URL
    got = [_headers(request, "Authorization") for request in pushed.requests()]
    if token == "GITOPS_GIT_TOKEN":
        assert res.returncode == 0, res.stderr
        assert git("rev-parse", "main", cwd=tmp_path / "pushed" / "push.git").strip() == res.stdout.strip()
        assert f"also sent to {push_url}, where url.<base>.pushInsteadOf sends the push" in res.stderr
        assert any("git-receive-pack" in request["path"] for request in pushed.requests())
        assert got and all(values == [_basic("x-access-token", TOKEN)] for values in got)
    else:
        assert res.returncode == 11, res.stderr
        assert f"no token sent to {push_url}" in res.stderr
        assert got and all(values == [] for values in got)  # asked, never given a credential


# --- paths from git under a file system encoding that is not UTF-8 ----------------------------------------


# Python's file system encoding is ASCII here (surrogateescape for the other bytes): no locale coercion
# under LC_ALL, no UTF-8 mode under PYTHONUTF8=0
ASCII_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
NAMED = "apps/a1/é/déploiement.yaml"


def test_paths_from_git_name_the_files_on_disk_whatever_the_file_system_encoding(tmp_path: Path) -> None:
    """Under LC_ALL=C PYTHONUTF8=0 paths from git's output were read as UTF-8, file names from disk as
    ASCII (surrogate-escaped): `history` failed with exit 70 on a tracked `é` file naming the image, a bump
    of a local checkout skipped it as "not tracked by git".  Both name it, by its bytes, as git does."""
    probe = subprocess.run([sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"],
                           env={**os.environ, **ASCII_LOCALE}, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "ascii"
    remote = make_bare_remote(tmp_path / "srv", {**FILES, NAMED: FILES["apps/a1/deploy.yaml"]})
    env = _env(tmp_path, **ASCII_LOCALE)

    res = _run(["history", "--deploy-repo", remote.url, "--image", APP, "--output", "json"], env)
    assert res.returncode == 0, res.stderr
    files = [os.fsencode(f).decode() for entry in json.loads(res.stdout)["entries"] for f in entry["files"]]
    assert NAMED in files

    res = _run(["bump", "--deploy-repo", remote.url, "--image", f"{APP}:v1"], env)
    assert res.returncode == 0, res.stderr
    assert remote.show(NAMED) == remote.show("apps/a1/deploy.yaml") == FILES["apps/a1/deploy.yaml"].replace(
        ":v0", ":v1").encode()

    checkout = tmp_path / "deploy"
    git("clone", "--quiet", remote.url, str(checkout), env=env)
    res = _run(["bump", "--deploy-repo", str(checkout), "--image", f"{APP}:v2"], env)
    assert res.returncode == 0, res.stderr
    assert "not tracked" not in res.stderr
    assert remote.head() == res.stdout.strip()
    changed = remote.git("diff-tree", "-z", "--no-commit-id", "--name-only", "-r", "main~1", "main").split("\0")
    assert sorted(filter(None, changed)) == sorted(["apps/a1/deploy.yaml", NAMED])
    res = _run(["history", "--deploy-repo", str(checkout), "--image", APP, "--output", "json"], env)
    assert res.returncode == 0, res.stderr
    assert [(e["tag"], NAMED in [os.fsencode(f).decode() for f in e["files"]])
            for e in json.loads(res.stdout)["entries"]] == [("v2", True), ("v1", True), ("v0", True)]


def test_a_dirty_tag_is_the_same_under_any_file_system_encoding(tmp_path: Path) -> None:
    """Untracked `é` files under LC_ALL=C PYTHONUTF8=0: `gitops tag --allow-dirty` gave another dirty hash
    than under a UTF-8 locale, one that left their content out (git's name, read as UTF-8, named no file
    Python could open there: a change of it gave the same tag).  Now the same under any locale."""
    app = tmp_path / "app"
    git("init", "--quiet", str(app))
    (app / "Dockerfile").write_text("FROM scratch\n")
    git("add", "-A", cwd=app)
    git("commit", "--quiet", "-m", "app", cwd=app)
    (app / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
    (app / "dé").mkdir()
    (app / "dé" / "é.txt").write_text("untracked\n")
    (app / "à.txt").write_text("untracked too\n")
    tags = []
    for locale in ({}, {"LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"}, ASCII_LOCALE):
        res = _run(["tag", "--repo", str(app), "--allow-dirty"], _env(tmp_path, **locale))
        assert res.returncode == 0, res.stderr
        tags.append(res.stdout.strip())
    assert "-dirty-" in tags[0] and tags == [tags[0]] * 3


# --- 4, 5: gitops' own clones -------------------------------------------------------------------------


def test_the_remote_is_origin_whatever_clone_default_remote_name_says(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "srv", FILES)  # blobless clones: the YAML blobs are fetched from it
    _global(tmp_path, ("clone.defaultRemoteName", "upstream"))
    env = _env(tmp_path)
    res = _run(["bump", "--deploy-repo", remote.url, "--image", f"{APP}:v1"], env)
    assert res.returncode == 0, res.stderr
    res = _run(["rollback", "--deploy-repo", remote.url, "--image", APP, "--no-verify"], env)
    assert res.returncode == 0, res.stderr
    assert remote.head() == res.stdout.strip()


HOOKS = ("prepare-commit-msg", "commit-msg", "post-commit", "post-checkout", "reference-transaction", "pre-push",
         "post-rewrite")


def _hooks(where: Path, log: Path) -> Path:
    """Hooks that log their name and fail (prepare-commit-msg also writes into the message)."""
    for name in HOOKS:
        edit = 'echo "[JIRA-123] Signed-off-by: Hook <hook@example.com>" >> "$1"\n'
        extra = edit if name == "prepare-commit-msg" else ""
        _script(where / name, f'echo "{name}" >> {log}\n{extra}exit 1\n')
    return where


def test_the_users_hooks_and_templates_never_run_in_gitops_clones(tmp_path: Path, http_git_server) -> None:
    """A global core.hooksPath, init.templateDir or GIT_TEMPLATE_DIR: none of their hooks runs in a
    bump's clone (a failing one used to fail the bump, a prepare-commit-msg changed the pushed message);
    a global push.gpgSign does not make the push fail."""
    remote = make_bare_remote(tmp_path / "srv", FILES)
    server = http_git_server(tmp_path / "srv")
    log = tmp_path / "hooks.log"
    hooks = _hooks(tmp_path / "hooks", log)
    template = tmp_path / "template"
    _hooks(template / "hooks", log)
    _global(tmp_path, ("core.hooksPath", str(hooks)), ("push.gpgSign", "true"))
    env = _env(tmp_path)
    bump = ["bump", "--deploy-repo", server.url(), "--image"]
    res = _run([*bump, f"{APP}:v1"], env)
    assert res.returncode == 0, res.stderr
    git("config", "--global", "--unset", "core.hooksPath", env=env)
    _global(tmp_path, ("init.templateDir", str(template)))
    res = _run([*bump, f"{APP}:v2"], env)
    assert res.returncode == 0, res.stderr
    git("config", "--global", "--unset", "init.templateDir", env=env)
    res = _run([*bump, f"{APP}:v3"], {**env, "GIT_TEMPLATE_DIR": str(template)})
    assert res.returncode == 0, res.stderr
    assert not log.exists()
    assert remote.message().startswith(f"Update {APP} image to {APP}:v3\n\nImage: {APP}:v3\n")
    assert "JIRA" not in remote.git("log", "--format=%B", "main")


@pytest.mark.parametrize("route", ["GIT_CONFIG_COUNT", "GIT_CONFIG_PARAMETERS"])
def test_hooks_given_through_the_environment_never_run_in_gitops_clones(tmp_path: Path, route: str) -> None:
    """core.hooksPath in the environment outranked the clone's own core.hooksPath=/dev/null: its
    prepare-commit-msg changed the pushed message."""
    remote = make_bare_remote(tmp_path / "srv", FILES)
    log = tmp_path / "hooks.log"
    hooks = _hooks(tmp_path / "hooks", log)
    given = ({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": str(hooks)}
             if route == "GIT_CONFIG_COUNT" else {"GIT_CONFIG_PARAMETERS": f"'core.hooksPath'='{hooks}'"})
    res = _run(["bump", "--deploy-repo", remote.url, "--image", f"{APP}:v1"], _env(tmp_path, **given))
    assert res.returncode == 0, res.stderr
    assert not log.exists()
    assert remote.message().startswith(f"Update {APP} image to {APP}:v1\n")


def test_the_users_push_options_are_not_sent(tmp_path: Path, http_git_server) -> None:
    """A global push.pushOption made every push fail: "the receiving end does not support push options"."""
    remote = make_bare_remote(tmp_path / "srv", FILES)
    server = http_git_server(tmp_path / "srv")
    _global(tmp_path, ("push.pushOption", "ci.skip"))
    env = _env(tmp_path)
    res = _run(["bump", "--deploy-repo", server.url(), "--image", f"{APP}:v1"], env)
    assert res.returncode == 0, res.stderr
    checkout = tmp_path / "deploy"
    git("clone", "--quiet", remote.url, str(checkout), env=env)
    res = _run(["bump", "--deploy-repo", str(checkout), "--image", f"{APP}:v2"], env)
    assert res.returncode == 0, res.stderr
    assert remote.head() == res.stdout.strip()


def test_the_users_hooks_never_run_in_syncs_cache(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "srv", FILES)
    log = tmp_path / "hooks.log"
    _global(tmp_path, ("core.hooksPath", str(_hooks(tmp_path / "hooks", log))),
            ("init.templateDir", str(_hooks(tmp_path / "template" / "hooks", log).parent)))
    fake = Path(__file__).resolve().parents[1] / "fixtures" / "fake_kubectl.py"
    env = _env(tmp_path, FAKE_KUBECTL_LOG=str(tmp_path / "kubectl.log"),
               FAKE_KUBECTL_STORE=str(tmp_path / "cluster.json"))
    res = _run(["sync", "--once", "--repo", remote.url, "--kubectl", str(fake), "--cache-dir", "cache"], env,
               cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == remote.head()
    assert not log.exists()


def test_syncs_cache_holds_every_file_as_stored(tmp_path: Path) -> None:
    """The user's filters and line-end conversion ran in sync's cache (a bump's clone runs none): a smudge
    filter's output was applied (`image: ...:SMUDGED`), files were CRLF.  Now as stored, what Argo CD and
    Flux read; a cache made before, whose files were converted, has them written again."""
    remote = make_bare_remote(tmp_path / "srv", {**FILES, ".gitattributes": "apps/** filter=demo\n"})
    _global(tmp_path, ("filter.demo.smudge", "sed s/:v0/:SMUDGED/"), ("filter.demo.clean", "cat"),
            ("core.autocrlf", "true"))
    fake = Path(__file__).resolve().parents[1] / "fixtures" / "fake_kubectl.py"
    log = tmp_path / "kubectl.log"
    env = _env(tmp_path, FAKE_KUBECTL_LOG=str(log), FAKE_KUBECTL_STORE=str(tmp_path / "cluster.json"))
    args = ["sync", "--once", "--repo", remote.url, "--path", "apps", "--kubectl", str(fake), "--cache-dir", "cache"]

    def applied_images() -> set[str]:
        stdin = json.loads(log.read_text().splitlines()[-1])["stdin"]
        docs = [json.loads(chunk) for chunk in stdin.split("---\n") if chunk.strip()]
        return {c["image"] for d in docs for c in d["spec"]["template"]["spec"]["containers"]}

    cached = FILES["apps/a1/deploy.yaml"].encode()  # LF, as stored
    res = _run(args, env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert applied_images() == {f"registry.example.com/team/a{i}:v0" for i in (1, 2, 3)}
    [checkout] = (tmp_path / "cache").glob("*/checkout")
    assert (checkout / "apps/a1/deploy.yaml").read_bytes() == cached
    # a cache made before: its files checked out through the user's filter and autocrlf
    (checkout / ".git" / "info" / "attributes").unlink()
    (checkout / ".git" / "index").unlink()
    git("checkout", "--quiet", "--force", "HEAD", cwd=checkout, env=_env(tmp_path))
    assert b"SMUDGED" in (checkout / "apps/a1/deploy.yaml").read_bytes()
    res = _run([*args, "--force"], env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert applied_images() == {f"registry.example.com/team/a{i}:v0" for i in (1, 2, 3)}
    assert (checkout / "apps/a1/deploy.yaml").read_bytes() == cached


# --- 10: Git LFS ----------------------------------------------------------------------------------------


LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")


def test_gitops_clones_run_no_filter_and_need_no_git_lfs(tmp_path: Path) -> None:
    """filter.lfs configured (required) but git-lfs not installed: a clone runs no filter (AS_STORED), so
    the file a .gitattributes sends to LFS, stored as plain YAML, is bumped as stored (it was exit 10,
    "git-lfs: not found", the filter being required)."""
    remote = make_bare_remote(tmp_path / "srv", {**FILES, ".gitattributes": "apps/a3/*.yaml filter=lfs -text\n"})
    _global(tmp_path, ("filter.lfs.required", "true"), ("filter.lfs.process", "git-lfs-is-not-here filter-process"))
    res = _run(["bump", "--deploy-repo", remote.url, "--image", "registry.example.com/team/a3:v1"], _env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert remote.show("apps/a3/deploy.yaml") == FILES["apps/a3/deploy.yaml"].replace(":v0", ":v1").encode()


POINTER_FOR = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:9c1d4f1f9d7c1c5ee0bb32c37d1e1ddf9fa2e2d4e1c7a3a4a3c5f52b3c8a6f11\nsize 321\n")


def _lfs_filters(tmp_path: Path, content: str = "") -> None:
    """git-lfs' filters as `git lfs install` sets them up, played by scripts: clean stores a pointer (the
    content would go to .git/lfs/objects, for a pre-push hook to upload), smudge gives `content` for it
    (passes content through when there is none)."""
    clean = _script(tmp_path / "bin" / "fake-lfs-clean", f"cat >/dev/null\nprintf '%s' '{POINTER_FOR}'\n")
    smudge = _script(tmp_path / "bin" / "fake-lfs-smudge",
                     f"cat >/dev/null\nprintf '%s' '{content}'\n" if content else "cat\n")
    _global(tmp_path, ("filter.lfs.clean", f"{clean} %f"), ("filter.lfs.smudge", f"{smudge} %f"),
            ("filter.lfs.required", "true"))


def test_a_clone_bumps_each_file_as_it_is_stored(tmp_path: Path) -> None:
    """A .gitattributes that sends a file to LFS after it was committed as plain YAML: the bump committed
    the LFS pointer git-lfs' clean filter made, whose object was never uploaded (a fresh checkout failed,
    sync exit 10).  A CRLF file marked `text`: every line of it was changed to LF.  Both are bumped as
    stored: only the tag changes."""
    crlf = FILES["apps/a1/deploy.yaml"].replace("\n", "\r\n")
    remote = make_bare_remote(tmp_path / "srv", {**FILES, "apps/a1/deploy.yaml": crlf})
    remote.commit_change(".gitattributes", "apps/a3/*.yaml filter=lfs diff=lfs merge=lfs -text\n"
                                           "apps/a1/*.yaml text eol=lf\n")  # after the files: stored as they were
    assert remote.show("apps/a1/deploy.yaml") == crlf.encode()
    _lfs_filters(tmp_path)
    _global(tmp_path, ("core.autocrlf", "true"))
    res = _run(["bump", "--deploy-repo", remote.url, "--image", "registry.example.com/team/a3:v1",
                "--image", f"{APP}:v1"], _env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert remote.show("apps/a3/deploy.yaml") == FILES["apps/a3/deploy.yaml"].replace(":v0", ":v1").encode()
    assert remote.show("apps/a1/deploy.yaml") == crlf.replace(":v0", ":v1").encode()


def test_a_file_git_commits_through_a_filter_is_never_bumped_in_a_local_checkout(tmp_path: Path) -> None:
    """In your checkout, `git add` runs your filters: git-lfs' clean filter keeps the content in
    .git/lfs/objects, to be uploaded by its pre-push hook, which gitops' push (--no-verify) does not run.
    Such a file is skipped, naming the filter; --no-commit edits it (you commit and push it)."""
    real = FILES["apps/a3/deploy.yaml"]
    remote = make_bare_remote(tmp_path / "srv", {**FILES, "apps/a3/deploy.yaml": POINTER_FOR,
                                                 ".gitattributes": "apps/a3/*.yaml filter=lfs -text\n"})
    env = _env(tmp_path)
    _lfs_filters(tmp_path, real)
    checkout = tmp_path / "deploy"
    git("clone", "--quiet", remote.url, str(checkout), env=env)
    assert (checkout / "apps/a3/deploy.yaml").read_text() == real
    image = ["--image", "registry.example.com/team/a3:v1"]
    res = _run(["bump", "--deploy-repo", str(checkout), *image], env)
    assert res.returncode == 3, res.stderr
    assert "warning: apps/a3/deploy.yaml: skipped (git commits it through the filter 'lfs'" in res.stderr
    assert remote.show("apps/a3/deploy.yaml") == POINTER_FOR.encode()
    res = _run(["bump", "--deploy-repo", str(checkout), "--no-commit", *image], env)
    assert res.returncode == 0, res.stderr
    assert (checkout / "apps/a3/deploy.yaml").read_text() == real.replace(":v0", ":v1")


def test_a_yaml_file_stored_in_git_lfs_is_named_and_never_bumped(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "srv", {**FILES, "apps/a2/deploy.yaml": LFS_POINTER})
    env = _env(tmp_path)
    warning = "apps/a2/deploy.yaml: skipped (a Git LFS pointer"
    for extra in ([], ["--path", "apps/a2"]):
        res = _run(["bump", "--deploy-repo", remote.url, "--image", "registry.example.com/team/a2:v1", *extra], env)
        assert res.returncode == 3, res.stderr
        assert warning in res.stderr
    # a bump that finds its image: no word of a file it could not read (it was named on every bump)
    res = _run(["bump", "--deploy-repo", remote.url, "--image", f"{APP}:v1"], env)
    assert res.returncode == 0, res.stderr
    assert "LFS" not in res.stderr
    assert remote.show("apps/a2/deploy.yaml") == LFS_POINTER.encode()
    checkout = remote.clone(tmp_path / "deploy")
    res = _run(["bump", "--deploy-repo", str(checkout), "--image", f"{APP}:v2"], env)
    assert res.returncode == 0, res.stderr
    assert "LFS" not in res.stderr
    res = _run(["bump", "--deploy-repo", str(checkout), "--image", "registry.example.com/team/a2:v1"], env)
    assert res.returncode == 3, res.stderr
    assert warning in res.stderr

def test_a_file_stored_in_git_lfs_is_checked_out_as_its_pointer_never_smudged(tmp_path: Path) -> None:
    """With git-lfs set up (a stand-in smudge filter here, which honours GIT_LFS_SKIP_SMUDGE as git-lfs
    does), the clone still holds the pointer: the file is named and never bumped -- its new content would
    go to LFS, whose objects the push does not upload."""
    real = FILES["apps/a2/deploy.yaml"]
    smudge = _script(tmp_path / "bin" / "fake-lfs-smudge",
                     f'if [ "$GIT_LFS_SKIP_SMUDGE" = 1 ]; then cat; else cat >/dev/null; printf %s "{real}"; fi\n')
    remote = make_bare_remote(tmp_path / "srv", {**FILES, "apps/a2/deploy.yaml": LFS_POINTER,
                                                 ".gitattributes": "apps/a2/*.yaml filter=lfs -text\n"})
    _global(tmp_path, ("filter.lfs.smudge", f"{smudge} %f"), ("filter.lfs.clean", "cat"))
    res = _run(["bump", "--deploy-repo", remote.url, "--image", "registry.example.com/team/a2:v1", "--path",
                "apps/a2"], _env(tmp_path))
    assert res.returncode == 3, res.stderr
    assert "apps/a2/deploy.yaml: skipped (a Git LFS pointer" in res.stderr
    assert remote.show("apps/a2/deploy.yaml") == LFS_POINTER.encode()


# --- 11: submodules ---------------------------------------------------------------------------------------


def test_a_path_into_a_submodule_of_a_remote_is_exit_2(tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "srv", FILES)
    seed = tmp_path / "seed"
    remote.clone(seed)
    git("update-index", "--add", "--cacheinfo", f"160000,{remote.head()},apps/sub", cwd=seed)
    git("commit", "--quiet", "-m", "a submodule", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
    env = _env(tmp_path)
    for path, said in (("apps/sub", "a submodule"), ("apps/sub/apps/a1", "inside the submodule apps/sub")):
        res = _run(["bump", "--deploy-repo", remote.url, "--image", f"{APP}:v1", "--path", path], env)
        assert res.returncode == 2, res.stderr
        assert f"--path '{path}': {said}" in res.stderr
    res = _run(["history", "--deploy-repo", remote.url, "--path", "apps/sub"], env)
    assert res.returncode == 2, res.stderr
    assert "a submodule" in res.stderr
    # history and rollback, of the remote and of a local checkout with the submodule checked out: a path
    # below it was "no change found" (exit 3) or "does not exist in the repository"
    checkout = remote.clone(tmp_path / "deploy")
    git("clone", "--quiet", "--no-checkout", remote.url, str(checkout / "apps/sub"), env=env)
    git("checkout", "--quiet", "--detach", git("rev-parse", "HEAD:apps/sub", cwd=checkout).strip(),
        cwd=checkout / "apps/sub", env=env)
    for repo in (remote.url, str(checkout)):
        for path in ("apps/sub/apps", "apps/sub/apps/a1"):
            for verb in (["history", "--image", APP], ["rollback", "--image", APP, "--to", "v0", "--no-verify"]):
                res = _run([verb[0], "--deploy-repo", repo, *verb[1:], "--path", path], env)
                assert res.returncode == 2, (repo, path, verb, res.stderr)
                assert f"--path '{path}': inside the submodule apps/sub" in res.stderr
