"""`gitops bump` authentication: a token over smart HTTP with basic auth, a key over ssh."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.fixtures.gitremotes import git, make_bare_remote
from tests.fixtures.gitremotes import private_git_env as _env

pytestmark = pytest.mark.integration

API = "registry.example.com/team/api"
TOKEN = "glpat-T0k3n-never-print-me"


def _files_containing(root: Path, *needles: str) -> list[Path]:
    hits = []
    for f in root.rglob("*"):
        if f.is_file() and not f.is_symlink():
            data = f.read_bytes()
            if any(n.encode() in data for n in needles):
                hits.append(f)
    return hits


def _secret_forms(token: str, user: str = "x-access-token") -> tuple[str, str]:
    return token, base64.b64encode(f"{user}:{token}".encode()).decode()


def test_token_over_smart_http(tmp_path: Path, http_git_server, gitops) -> None:
    remote = make_bare_remote(tmp_path / "srv")
    server = http_git_server(tmp_path / "srv", user="x-access-token", token=TOKEN)
    env = _env(tmp_path, GITOPS_GIT_TOKEN=TOKEN)
    res = gitops(
        ["bump", "--deploy-repo", server.url(), "--image", f"{API}:2.0.0", "--output", "json"], env=env
    )
    assert res.returncode == 0, res.stderr
    assert remote.show("apps/api/deployment.yaml").count(b":2.0.0") == 2
    for text in (res.stdout, res.stderr, remote.message()):
        for secret in _secret_forms(TOKEN):
            assert secret not in text
    assert "token from GITOPS_GIT_TOKEN" in res.stderr
    assert _files_containing(tmp_path / "tmp", *_secret_forms(TOKEN)) == []
    assert list((tmp_path / "tmp").iterdir()) == []  # the clone is gone
    assert _files_containing(remote.path, *_secret_forms(TOKEN)) == []


def test_local_checkout_over_http_keeps_token_out_of_git_config(
    tmp_path: Path, http_git_server, gitops
) -> None:
    remote = make_bare_remote(tmp_path / "srv")
    server = http_git_server(tmp_path / "srv", user="x-access-token", token=TOKEN)
    header = f"Authorization: Basic {_secret_forms(TOKEN)[1]}"
    checkout = tmp_path / "checkout"
    git("-c", f"http.extraHeader={header}", "clone", "--quiet", server.url(), str(checkout))
    res = gitops(
        ["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"],
        env=_env(tmp_path, GITOPS_GIT_TOKEN=TOKEN),
    )
    assert res.returncode == 0, res.stderr
    assert remote.head() == res.stdout.strip()
    assert _files_containing(checkout / ".git", *_secret_forms(TOKEN)) == []
    assert TOKEN not in res.stderr


def test_credentials_in_the_url_are_used_but_never_shown(tmp_path: Path, http_git_server, gitops) -> None:
    remote = make_bare_remote(tmp_path / "srv")
    server = http_git_server(tmp_path / "srv", user="deployer", token=TOKEN)
    url = server.url().replace("http://", f"http://deployer:{TOKEN}@")
    res = gitops(["bump", "--deploy-repo", url, "--image", f"{API}:2.0.0"], env=_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert remote.head() == res.stdout.strip()
    assert TOKEN not in res.stdout + res.stderr and "deployer:" not in res.stderr
    assert server.url() in res.stderr


def _refusing_hook(remote_path: Path, message: str) -> None:
    """A pre-receive hook that refuses every push with `message` (as a server-side check does)."""
    hook = remote_path / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 1\n")
    hook.chmod(0o755)


def test_a_server_that_echoes_the_authorization_header_does_not_show_it(
    tmp_path: Path, http_git_server, gitops
) -> None:
    """The hook's words are shown (`hint: the remote says: ...`); the Basic value gitops sent, which a
    server may echo back, is a secret as much as the token is."""
    remote = make_bare_remote(tmp_path / "srv")
    server = http_git_server(tmp_path / "srv", user="x-access-token", token=TOKEN)
    basic = _secret_forms(TOKEN)[1]
    _refusing_hook(remote.path, f"got Authorization: Basic {basic}; x-access-token may not push")
    res = gitops(["bump", "--deploy-repo", server.url(), "--image", f"{API}:2.0.0"],
                 env=_env(tmp_path, GITOPS_GIT_TOKEN=TOKEN))
    assert res.returncode == 10, res.stderr
    assert "hint: the remote says: got Authorization: Basic ***; x-access-token may not push\n" in res.stderr
    assert basic not in res.stdout + res.stderr and TOKEN not in res.stdout + res.stderr


def test_a_token_the_remote_says_is_masked_before_its_words_are_shortened(
    tmp_path: Path, http_git_server, gitops
) -> None:
    """The remote's words are cut to 400 characters: masked first, so that a token standing across the
    cut is not shown in part (`glpat-T0k...`, which no masking after the cut can recognise)."""
    remote = make_bare_remote(tmp_path / "srv")
    server = http_git_server(tmp_path / "srv", user="x-access-token", token=TOKEN)
    _refusing_hook(remote.path, "x" * 385 + f" {TOKEN} may not push to main")  # the token at 386..411
    res = gitops(["bump", "--deploy-repo", server.url(), "--image", f"{API}:2.0.0"],
                 env=_env(tmp_path, GITOPS_GIT_TOKEN=TOKEN))
    assert res.returncode == 10, res.stderr
    hint = next(line for line in res.stderr.splitlines() if line.startswith("hint: the remote says: "))
    assert hint == "hint: the remote says: " + "x" * 385 + " *** may not..."  # 400 characters
    assert not any(TOKEN[i:i + 6] in res.stdout + res.stderr for i in range(len(TOKEN) - 5))


def test_bad_or_missing_token_exits_11(tmp_path: Path, http_git_server, gitops) -> None:
    remote = make_bare_remote(tmp_path / "srv")
    before = remote.head()
    server = http_git_server(tmp_path / "srv", user="x-access-token", token=TOKEN)
    wrong = "wrong-token-also-secret"
    res = gitops(
        ["bump", "--deploy-repo", server.url(), "--image", f"{API}:2.0.0"],
        env=_env(tmp_path, GITOPS_GIT_TOKEN=wrong),
    )
    assert res.returncode == 11, res.stderr
    assert wrong not in res.stdout + res.stderr and "GITOPS_GIT_TOKEN" in res.stderr
    res = gitops(["bump", "--deploy-repo", server.url(), "--image", f"{API}:2.0.0"], env=_env(tmp_path))
    assert res.returncode == 11, res.stderr
    assert remote.head() == before


def test_ssh_with_a_key(tmp_path: Path, sshd_server, gitops) -> None:
    """The key's path is passed as it is: ssh would expand a `%d` in it to the home directory."""
    import shutil

    remote = make_bare_remote(tmp_path / "srv")
    env = _env(tmp_path, GITOPS_SSH_KNOWN_HOSTS=str(sshd_server.known_hosts))
    key = tmp_path / "keys%d 100%" / "deploy key"
    key.parent.mkdir()
    shutil.copy(sshd_server.client_key, key)
    res = gitops(
        [
            "bump",
            "--deploy-repo",
            sshd_server.url(remote.path),
            "--image",
            f"{API}:2.0.0",
            "--ssh-key",
            str(key),
        ],
        env=env,
    )
    assert res.returncode == 0, res.stderr + sshd_server.log.read_text()
    assert remote.head() == res.stdout.strip()
    assert remote.show("apps/api/deployment.yaml").count(b":2.0.0") == 2


def test_pinned_known_hosts_refuse_an_unknown_host(tmp_path: Path, sshd_server, gitops) -> None:
    """GITOPS_SSH_KNOWN_HOSTS pins: a host not in the file is refused (ssh's reason is shown), the file
    is not written; a missing file is refused before any connection (exit 2) and not created."""
    remote = make_bare_remote(tmp_path / "srv")
    before = remote.head()
    known = tmp_path / "known_hosts"
    known.write_text("")
    args = ["bump", "--deploy-repo", sshd_server.url(remote.path), "--image", f"{API}:2.0.0",
            "--ssh-key", str(sshd_server.client_key)]
    res = gitops(args, env=_env(tmp_path, GITOPS_SSH_KNOWN_HOSTS=str(known)))
    assert res.returncode == 10, res.stderr
    assert "Host key verification failed" in res.stderr
    assert known.read_text() == "" and remote.head() == before
    missing = tmp_path / "pins" / "known_hosts"
    res = gitops(args, env=_env(tmp_path, GITOPS_SSH_KNOWN_HOSTS=str(missing)))
    assert res.returncode == 2, res.stderr
    assert "GITOPS_SSH_KNOWN_HOSTS" in res.stderr and "no such file" in res.stderr
    assert not missing.parent.exists()
    assert "Accepted publickey" not in sshd_server.log.read_text()  # never even authenticated


def test_ssh_with_an_unknown_key_exits_11(tmp_path: Path, sshd_server, gitops) -> None:
    import subprocess

    remote = make_bare_remote(tmp_path / "srv")
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    res = gitops(
        [
            "bump",
            "--deploy-repo",
            sshd_server.url(remote.path),
            "--image",
            f"{API}:2.0.0",
            "--ssh-key",
            str(other),
        ],
        env=_env(tmp_path, GITOPS_SSH_KNOWN_HOSTS=str(sshd_server.known_hosts)),
    )
    assert res.returncode == 11, res.stderr


def test_an_ssh_key_ssh_would_not_load_is_named_not_taken_for_a_refused_one(tmp_path: Path, sshd_server,
                                                                           gitops) -> None:
    """ssh ignores a key that others can read, or a .pub, with its own words on stderr (`Load key "K": bad
    permissions`); gitops said only "Permission denied (publickey)" with a hint about tokens (exit 11).
    --ssh-key: refused before any connection (exit 2, the fix named).  A key of the user's own ssh command
    (core.sshCommand -i K): ssh's reason in the message and the hint."""
    import shutil

    remote = make_bare_remote(tmp_path / "srv")
    before = remote.head()
    env = _env(tmp_path, GITOPS_SSH_KNOWN_HOSTS=str(sshd_server.known_hosts))
    key = tmp_path / "deploy"
    shutil.copy(sshd_server.client_key, key)
    key.chmod(0o644)
    args = ["bump", "--deploy-repo", sshd_server.url(remote.path), "--image", f"{API}:2.0.0"]
    res = gitops([*args, "--ssh-key", str(key)], env=env)
    assert res.returncode == 2, res.stderr
    assert f"error: --ssh-key '{key}': permissions 0644 are too open" in res.stderr
    assert f"hint: chmod 600 {key}" in res.stderr
    res = gitops([*args, "--ssh-key", str(sshd_server.client_key) + ".pub"], env=env)
    assert res.returncode == 2, res.stderr
    assert "a public key; ssh needs the private key" in res.stderr
    assert f"hint: --ssh-key '{sshd_server.client_key}'" in res.stderr
    assert "Accepted publickey" not in sshd_server.log.read_text() and remote.head() == before
    command = f"ssh -i {key} -o IdentitiesOnly=yes -o UserKnownHostsFile={sshd_server.known_hosts}"
    res = gitops(args, env=_env(tmp_path, GIT_SSH_COMMAND=command))
    assert res.returncode == 11, res.stderr
    assert f'ssh: Load key "{key}": bad permissions; root@127.0.0.1: Permission denied (publickey).' in res.stderr
    assert "hint: ssh ignores a private key that others can read: chmod 600" in res.stderr
    key.chmod(0o600)
    res = gitops([*args, "--ssh-key", str(key)], env=env)
    assert res.returncode == 0, res.stderr + sshd_server.log.read_text()
    assert remote.head() == res.stdout.strip() != before


def test_pinned_known_hosts_keep_the_users_ssh_command(tmp_path: Path, sshd_server, gitops) -> None:
    """GITOPS_SSH_KNOWN_HOSTS without --ssh-key replaced the user's GIT_SSH_COMMAND (a CI's `-i key` was
    lost: exit 11); a pinned path with a blank and a `%` was split and expanded by ssh (exit 10)."""
    import shutil

    remote = make_bare_remote(tmp_path / "srv")
    pins = tmp_path / "pins dir%h"
    pins.mkdir()
    shutil.copy(sshd_server.known_hosts, pins / "known hosts")
    user_command = f"ssh -i {sshd_server.client_key} -o IdentitiesOnly=yes"
    res = gitops(["bump", "--deploy-repo", sshd_server.url(remote.path), "--image", f"{API}:2.0.0"],
                 env=_env(tmp_path, GITOPS_SSH_KNOWN_HOSTS=str(pins / "known hosts"), GIT_SSH_COMMAND=user_command))
    assert res.returncode == 0, res.stderr + sshd_server.log.read_text()
    assert remote.head() == res.stdout.strip()


def _ssh_command(sshd_server, known_hosts: Path) -> str:
    """What CI writes into core.sshCommand (actions/checkout with ssh-key): a key and a known_hosts file."""
    return (f"ssh -i {sshd_server.client_key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes "
            f"-o UserKnownHostsFile={known_hosts}")


def test_core_ssh_command_is_used(tmp_path: Path, sshd_server, gitops) -> None:
    """git.base_env forced GIT_SSH_COMMAND="ssh -o BatchMode=yes" on every git call, overriding
    core.sshCommand: without GITOPS_SSH_KNOWN_HOSTS a checkout's (or the global) core.sshCommand was never
    used -- no key, exit 11.  BatchMode now goes into that command."""
    assert "GIT_SSH_COMMAND" not in _env(tmp_path) and "GIT_SSH" not in _env(tmp_path)
    remote = make_bare_remote(tmp_path / "srv")
    command = _ssh_command(sshd_server, sshd_server.known_hosts)
    # a local checkout whose own config names the key (actions/checkout's ssh-key writes exactly this)
    checkout = tmp_path / "checkout"
    git("-c", f"core.sshCommand={command}", "clone", "--quiet", sshd_server.url(remote.path), str(checkout))
    git("config", "core.sshCommand", command, cwd=checkout)
    env = _env(tmp_path)
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=env)
    assert res.returncode == 0, res.stderr + sshd_server.log.read_text()
    assert remote.head() == res.stdout.strip() == git("rev-parse", "HEAD", cwd=checkout).strip()
    # a URL, with core.sshCommand in the global config (~/.gitconfig)
    git("config", "--global", "core.sshCommand", command, env=env)
    res = gitops(["bump", "--deploy-repo", sshd_server.url(remote.path), "--image", f"{API}:3.0.0"], env=env)
    assert res.returncode == 0, res.stderr + sshd_server.log.read_text()
    assert remote.head() == res.stdout.strip()
    assert remote.show("apps/api/deployment.yaml").count(b":3.0.0") == 2


def test_the_pin_wins_over_the_trust_options_of_a_checkouts_ssh_command(tmp_path: Path, sshd_server,
                                                                        gitops) -> None:
    """actions/checkout's core.sshCommand sets StrictHostKeyChecking and UserKnownHostsFile itself: with
    GITOPS_SSH_KNOWN_HOSTS it was refused (exit 2).  For ssh itself the pin goes first, and ssh takes an
    option's first value: the pin decides (the pinned key: pushed; an empty pin file: refused)."""
    remote = make_bare_remote(tmp_path / "srv")
    command = _ssh_command(sshd_server, sshd_server.known_hosts)
    checkout = tmp_path / "checkout"
    git("-c", f"core.sshCommand={command}", "clone", "--quiet", sshd_server.url(remote.path), str(checkout))
    git("config", "core.sshCommand", command, cwd=checkout)
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"],
                 env=_env(tmp_path, GITOPS_SSH_KNOWN_HOSTS=str(sshd_server.known_hosts)))
    assert res.returncode == 0, res.stderr + sshd_server.log.read_text()
    assert remote.head() == res.stdout.strip()
    empty_pins = tmp_path / "empty-pins"
    empty_pins.write_text("")
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:3.0.0"],
                 env=_env(tmp_path, GITOPS_SSH_KNOWN_HOSTS=str(empty_pins)))
    assert res.returncode == 10 and "Host key verification failed" in res.stderr, res.stderr


def test_a_wrapper_that_overrides_the_pin_is_refused(tmp_path: Path, sshd_server, gitops) -> None:
    """`env ssh -o StrictHostKeyChecking=no ...` with GITOPS_SSH_KNOWN_HOSTS: the pin went to the end, the
    wrapper's own option came first and won -- an unknown host was accepted.  Now exit 2, nothing sent."""
    remote = make_bare_remote(tmp_path / "srv")
    before = remote.head()
    empty_pins = tmp_path / "pins"
    empty_pins.write_text("")
    wrapper = f"env ssh -i {sshd_server.client_key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    res = gitops(["bump", "--deploy-repo", sshd_server.url(remote.path), "--image", f"{API}:2.0.0"],
                 env=_env(tmp_path, GITOPS_SSH_KNOWN_HOSTS=str(empty_pins), GIT_SSH_COMMAND=wrapper))
    assert res.returncode == 2, res.stderr
    assert "sets StrictHostKeyChecking, UserKnownHostsFile itself" in res.stderr
    assert remote.head() == before
    assert "Accepted publickey" not in sshd_server.log.read_text()
