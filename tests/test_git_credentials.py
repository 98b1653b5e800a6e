"""Secrets and malformed --deploy-repo specs (git.strip_credentials, git.error_for, deployrepo.open_remote)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from gitops_cli import deployrepo, git
from gitops_cli.errors import GitError, UsageError
from tests.test_deployrepo import fake_key

SECRET = "ghp_SECRET0123456789"


@pytest.mark.parametrize(("text", "expected"), [
    ("https://u:tok@h/x.git", "https://h/x.git"),
    # a password holding "@": the user-info runs to the LAST "@" before the first "/"
    ("http://bob:hun@ter2pass@127.0.0.1:8080/x.git", "http://127.0.0.1:8080/x.git"),
    # query-string tokens and fragments are dropped (they end up in labels, messages)
    ("https://host/x.git?private_token=SECRET", "https://host/x.git"),
    ("https://host/x.git#SECRET", "https://host/x.git"),
    ("fatal: unable to access 'https://a:b@h/x.git?t=SECRET/': 403", "fatal: unable to access 'https://h/x.git': 403"),
    # one slash missing: still scrubbed
    (f"http:/x-access-token:{SECRET}@127.0.0.1/o/d.git", "http:/127.0.0.1/o/d.git"),
    # a password holding an unencoded "/", "?" or "#": git reads part of it as the host; all of it goes
    ("http://bot:ab/cdSECRET@127.0.0.1:37625/x.git", "http://127.0.0.1:37625/x.git"),
    ("http://t:p@ss:w/rd%23#x-Secret@127.0.0.1:37625/x.git", "http://127.0.0.1:37625/x.git"),
    ("ssh://git:ab?cdSECRET@127.0.0.1:2222/x.git", "ssh://127.0.0.1:2222/x.git"),
    ("https://us/er:pass@127.0.0.1:1/x", "https://127.0.0.1:1/x"),  # a "/" in the user
    ("https://user:2024/Secret@127.0.0.1:1/x", "https://127.0.0.1:1/x"),  # "user:2024" looks like host:port
    ("https://user:/ss@host.example/x", "https://host.example/x"),
    ("https://host:8443/org/x@y.git", "https://host:8443/org/x@y.git"),  # an "@" in the path is a path's
    ("git@host:org/x.git", "git@host:org/x.git"),  # scp-like: the user is no secret
    ("file:///srv/git/deploy.git", "file:///srv/git/deploy.git"),
    ("file:///srv/h#x/q?y/deploy.git", "file:///srv/h#x/q?y/deploy.git"),  # path characters in file://
])
def test_strip_credentials(text: str, expected: str) -> None:
    assert git.strip_credentials(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("https://u:tok@h/x.git", ["tok"]),
    ("http://bob:hun@ter2pass@127.0.0.1:8080/x.git", ["hun@ter2pass"]),  # to the last "@" before the first "/"
    ("https://u:p%40ss%2Fw@h/x.git", ["p%40ss%2Fw", "p@ss/w"]),  # as written, and as git sends it
    ("http://t:p@ss:w/rd%23#x-Secret@127.0.0.1:37625/x.git", ["p@ss:w/rd%23#x-Secret", "p@ss:w/rd##x-Secret"]),
    ("https://user:2024/Secret@127.0.0.1:1/x", ["2024/Secret"]),  # an unencoded "/": all of it
    ("make e2e URL=https://a:one@h/x OTHER=ssh://b:two@h:22/y", ["one", "two"]),  # every URL of a text
    ("https://TOKEN@h/x.git", []),  # a user name, no password
    ("https://host:8443/org/x@y.git", []),  # an "@" in the path is a path's
    ("git@host:org/x.git", []),
    ("https://h/x.git?private_token=SECRET", []),  # a query is no user-info (strip_credentials drops it)
    # one URL whose user-info holds a blank (a flag's value): that password too, not the word before the blank
    ("http://bot:S3cret Pw123@127.0.0.1:1/x.git", ["S3cret Pw123"]),
    ("http://bot:S3cret%20Pw%09x@h/x.git", ["S3cret%20Pw%09x", "S3cret Pw\tx"]),
    ("https://bot:a b/c@git.example.com/x", ["a b/c"]),
])
def test_url_passwords(text: str, expected: list[str]) -> None:
    assert git.url_passwords(text) == expected


def test_error_for_keeps_ssh_reason_over_gits_generic_line() -> None:
    stderr = ("No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\n"
              "Host key verification failed.\n"
              "fatal: Could not read from remote repository.\n\n"
              "Please make sure you have the correct access rights\nand the repository exists.\n")
    err = git.error_for(["clone"], 128, stderr, what="cloning x")
    assert err.message == "cloning x failed (exit 128): Host key verification failed."
    assert isinstance(err, GitError) and err.exit_code == 10


_REFUSED = ("root@127.0.0.1: Permission denied (publickey).\nfatal: Could not read from remote repository.\n\n"
            "Please make sure you have the correct access rights\nand the repository exists.\n")


def test_error_for_names_the_key_ssh_would_not_load() -> None:
    """ssh's `Load key` line was dropped: the message said only "Permission denied (publickey)" and the hint
    was about tokens, for a key ssh never offered (a core.sshCommand `-i` key with mode 644, or a .pub)."""
    too_open = ("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
                "@         WARNING: UNPROTECTED PRIVATE KEY FILE!          @\n"
                "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
                "Permissions 0644 for '/keys/deploy' are too open.\n"
                "It is required that your private key files are NOT accessible by others.\n"
                "This private key will be ignored.\n"
                'Load key "/keys/deploy": bad permissions\n')
    err = git.error_for(["clone"], 128, too_open + _REFUSED, what="cloning x")
    assert err.exit_code == 11
    assert err.message == ('cloning x failed (exit 128): ssh: Load key "/keys/deploy": bad permissions; '
                           "root@127.0.0.1: Permission denied (publickey).")
    assert "chmod 600" in (err.hint or "") and "GITOPS_GIT_TOKEN" not in (err.hint or "")
    for said in ("invalid format", "error in libcrypto"):
        err = git.error_for(["clone"], 128, f'Load key "/keys/deploy.pub": {said}\n' + _REFUSED, what="cloning x")
        assert err.exit_code == 11 and f'Load key "/keys/deploy.pub": {said}; ' in err.message
        assert "not the .pub" in (err.hint or "")
    err = git.error_for(["clone"], 128, _REFUSED, what="cloning x")  # a key the server refused: as before
    assert err.message.endswith(": root@127.0.0.1: Permission denied (publickey).") and "Load" not in err.message
    assert "GITOPS_GIT_TOKEN" in (err.hint or "")


def test_an_authentication_failure_is_exit_11_naming_every_source_of_credentials() -> None:
    """The credentials may come from GITOPS_GIT_TOKEN, the URL or a credential helper: the hint names all."""
    err = git.error_for(["push"], 128, f"remote: HTTP Basic: Access denied\nfatal: Authentication failed for "
                        f"'https://u:{SECRET}@git.example.com/o/d.git/'\n")
    assert err.exit_code == 11 and SECRET not in err.message + (err.hint or "")
    assert "GITOPS_GIT_TOKEN" in (err.hint or "") and "the URL's user-info" in (err.hint or "")
    assert "GITHUB_TOKEN" in (err.hint or "") and "CI_JOB_TOKEN" in (err.hint or "")


def test_a_refused_token_is_not_reported_as_a_prompt_git_could_not_show() -> None:
    """A server answering 401 to the token gitops sent makes git ask for a username, which it may not: its
    words ("could not read Username ... terminal prompts disabled") read as if no credential was sent."""
    err = git.error_for(["clone"], 128, "Cloning into '/tmp/x'...\nfatal: could not read Username for "
                        "'http://127.0.0.1:8080': terminal prompts disabled\n", what="cloning x")
    assert err.exit_code == 11
    assert err.message == ("cloning x failed (exit 128): http://127.0.0.1:8080 asked for credentials: none were "
                           "sent, or it refused those sent (gitops never prompts for them)")


@pytest.mark.parametrize("spec", [
    f"htps://x-access-token:{SECRET}@127.0.0.1/o/d.git",  # unknown scheme
    f"http:/x-access-token:{SECRET}@127.0.0.1/o/d.git",  # one slash: git would ssh to host "http"
    f"htps:/x-access-token:{SECRET}@127.0.0.1/o/d.git",
    "ssh:/127.0.0.1/o/d.git",
    f"http://x-access-token:ab/{SECRET}@127.0.0.1/o/d.git",  # user-info holding "/": git reads a host "x-access-token"
    f"https://x-access-token:p@ss:w/{SECRET}#x@127.0.0.1/o/d.git",
    f"ssh://git:ab?{SECRET}@127.0.0.1/o/d.git",
    f"https://x-access-token:2024/{SECRET}@127.0.0.1/o/d.git",  # "x-access-token:2024" looks like host:port
])
def test_malformed_specs_are_refused_without_their_credentials(spec: str) -> None:
    with pytest.raises(UsageError) as exc:
        deployrepo.open_remote(spec, environ={})
    assert exc.value.exit_code == 2
    assert SECRET not in exc.value.message and "x-access-token" not in exc.value.message
    assert "127.0.0.1/o/d.git" in exc.value.message


@pytest.mark.parametrize("spec", [
    f"http://bot:S3cret {SECRET}@127.0.0.1:1/o/d.git",
    f"https://bot:S3cret\t{SECRET}@127.0.0.1:1/o/d.git",
    f"https://bot:{SECRET}\n@127.0.0.1:1/o/d.git",
    f"https://bot S3cret:{SECRET}@127.0.0.1:1/o/d.git",  # in the user
    f"https://bot:a b/{SECRET}@127.0.0.1:1/o/d.git",  # and an unencoded "/"
    f"ssh://git:a b{SECRET}@127.0.0.1:1/o/d.git",
])
def test_a_blank_in_the_user_info_is_refused_without_the_password(spec: str) -> None:
    """A password with an unencoded space or tab went on git's command line (strip_credentials ends a URL at
    a blank: `http://bot:S3cret` was "stripped", the rest kept), and was shown where it was not registered.
    Refused before any work (exit 2), naming the URL without it."""
    from gitops_cli import output

    with pytest.raises(UsageError) as exc:
        deployrepo.open_remote(spec, environ={})
    assert exc.value.exit_code == 2
    assert "holds a blank or a control character" in exc.value.message
    assert "127.0.0.1:1/o/d.git" in exc.value.message and "S3cret" not in exc.value.message
    assert SECRET not in exc.value.message and SECRET not in output.redact(spec)
    assert "%20" in (exc.value.hint or "")


def test_split_userinfo_takes_one_url_whole() -> None:
    assert git.split_userinfo("http://bot:S3cret Pw@h:1/x") == ("bot:S3cret Pw", "http://h:1/x")
    assert git.split_userinfo("https://u:a b/c@host.example/x") == ("u:a b/c", "https://host.example/x")
    assert git.split_userinfo("https://h/x@y.git") == (None, "https://h/x@y.git")
    assert git.split_userinfo("file:///srv/u:p@x") == (None, "file:///srv/u:p@x")
    assert git.blank_in_userinfo("https://u:p@h/a b") is False  # a blank in the path is the path's


def test_scp_like_with_an_absolute_path_is_still_ssh() -> None:
    remote = deployrepo.open_remote("deployhost:/srv/git/deploy.git", environ={})
    assert remote.url == "deployhost:/srv/git/deploy.git" and remote.local is None


def test_uppercase_scheme_is_normalised() -> None:
    remote = deployrepo.open_remote("HTTPS://git.example.com/org/deploy.git", environ={})
    assert remote.url == "https://git.example.com/org/deploy.git"
    local = deployrepo.open_remote("FILE:///", environ={})
    assert local.url == "file:///"


def test_password_with_at_sign_is_used_but_never_shown() -> None:
    remote = deployrepo.open_remote("http://bob:hun@ter2pass@127.0.0.1:8080/x.git", environ={})
    assert remote.url == remote.display == "http://127.0.0.1:8080/x.git"
    assert any("Authorization: Basic" in v for v in remote.env.values())


def test_known_hosts_pins_host_keys(tmp_path: Path) -> None:
    key = fake_key(tmp_path / "id")
    known = tmp_path / "known_hosts"
    known.write_text("[127.0.0.1]:22 ssh-ed25519 AAAA\n")
    env = {"GITOPS_SSH_KNOWN_HOSTS": str(known)}
    cmd = deployrepo.open_remote("git@127.0.0.1:o/d.git", ssh_key=key, environ=env).env["GIT_SSH_COMMAND"]
    assert "StrictHostKeyChecking=yes" in cmd and "accept-new" not in cmd
    assert f"UserKnownHostsFile=\"{known}\"" in shlex.split(cmd) and "GlobalKnownHostsFile=/dev/null" in cmd
    # pinned without --ssh-key too (the default key)
    cmd = deployrepo.open_remote("ssh://git@127.0.0.1/o/d.git", environ=env).env["GIT_SSH_COMMAND"]
    assert "StrictHostKeyChecking=yes" in cmd
    # without the variable: accept-new (trust on first use), as before
    cmd = deployrepo.open_remote("git@127.0.0.1:o/d.git", ssh_key=key, environ={}).env["GIT_SSH_COMMAND"]
    assert "StrictHostKeyChecking=accept-new" in cmd


def test_missing_known_hosts_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "known_hosts"
    with pytest.raises(UsageError, match="GITOPS_SSH_KNOWN_HOSTS") as exc:
        deployrepo.open_remote("git@127.0.0.1:o/d.git", environ={"GITOPS_SSH_KNOWN_HOSTS": str(missing)})
    assert exc.value.exit_code == 2
    assert not missing.exists() and not missing.parent.exists()


def test_remote_spec_resolves_a_relative_path_against_the_checkout(tmp_path: Path) -> None:
    from tests.fixtures.gitremotes import git as fixture_git

    checkout = tmp_path / "a" / "co"
    fixture_git("init", "--quiet", str(checkout))
    fixture_git("remote", "add", "origin", "../deploy.git", cwd=checkout)
    assert deployrepo.remote_spec(checkout, "origin") == str((tmp_path / "a" / "deploy.git").resolve())
    fixture_git("remote", "set-url", "origin", "git@host:org/deploy.git", cwd=checkout)
    assert deployrepo.remote_spec(checkout, "origin") == "git@host:org/deploy.git"
    fixture_git("remote", "remove", "origin", cwd=checkout)
    assert deployrepo.remote_spec(checkout, "origin") is None


@pytest.mark.parametrize("folder", ["h#x", "q?y", "p%20q"])
def test_file_url_with_hash_or_question_mark_names_its_directory(tmp_path: Path, folder: str) -> None:
    """urlsplit dropped the "fragment" and the "query" of a file:// URL: the repo was "no such directory"."""
    bare = tmp_path / folder / "d.git"
    git.run(["init", "--quiet", "--bare", str(bare)])
    url = f"file://{tmp_path}/{folder}/d.git" if "%" not in folder else f"file://{tmp_path}/p%2520q/d.git"
    remote = deployrepo.open_remote(url)
    assert remote.url == url and remote.display == url
    assert git.run(["ls-remote", remote.url]).status == 0  # git reads the same path


@pytest.mark.parametrize("spec", [f"user:{SECRET}@host:org/x.git", f"git:{SECRET}@127.0.0.1:/srv/d.git",
                                  f"user:p@{SECRET}@host:org/x.git"])  # an "@" in the password
def test_scp_like_with_a_password_is_refused_without_it(spec: str) -> None:
    """Not a URL, so strip_credentials left it whole: it was printed verbatim in "Cloning ..."."""
    with pytest.raises(UsageError) as exc:
        deployrepo.open_remote(spec, environ={})
    assert exc.value.exit_code == 2 and "has no password part" in exc.value.message
    assert SECRET not in exc.value.message and SECRET not in (exc.value.hint or "")
    assert "@host:org/x.git" in exc.value.message or "@127.0.0.1:/srv/d.git" in exc.value.message


def test_pinning_without_a_key_keeps_the_users_ssh_command(tmp_path: Path) -> None:
    """The pin goes into the user's own command (GIT_SSH_COMMAND, else core.sshCommand), first (ssh takes the
    first value of an option); it replaced it, losing -i and ProxyJump."""
    known = tmp_path / "known_hosts"
    known.write_text("")
    env = {"GITOPS_SSH_KNOWN_HOSTS": str(known), "GIT_SSH_COMMAND": "ssh -i /ci/key -o ProxyJump=bastion"}
    args = shlex.split(deployrepo.open_remote("git@127.0.0.1:o/d.git", environ=env).env["GIT_SSH_COMMAND"])
    assert args[0] == "ssh" and args[-4:] == ["-i", "/ci/key", "-o", "ProxyJump=bastion"]
    assert args.index("StrictHostKeyChecking=yes") < args.index("ProxyJump=bastion")
    repo = tmp_path / "checkout"
    git.run(["init", "--quiet", str(repo)])
    git.run(["config", "core.sshCommand", "/opt/ssh-wrapper --jump"], cwd=repo)
    cmd = deployrepo.open_remote("git@127.0.0.1:o/d.git", environ={"GITOPS_SSH_KNOWN_HOSTS": str(known)},
                                 repo=repo).env["GIT_SSH_COMMAND"]
    assert cmd.startswith("/opt/ssh-wrapper --jump ") and "StrictHostKeyChecking=yes" in cmd  # a wrapper: at the end


def test_pinned_path_that_ssh_cannot_take_is_refused(tmp_path: Path) -> None:
    odd = tmp_path / 'a"b'
    odd.write_text("")
    with pytest.raises(UsageError, match="GITOPS_SSH_KNOWN_HOSTS") as exc:
        deployrepo.open_remote("git@127.0.0.1:o/d.git", environ={"GITOPS_SSH_KNOWN_HOSTS": str(odd)})
    assert exc.value.exit_code == 2


def test_pin_goes_after_a_quoted_ssh_path_with_a_blank(tmp_path: Path) -> None:
    """`'/x/my bin/ssh' ...` was not recognised as ssh (its first blank-separated word is `'/x/my`): the pin
    went to the end, where the user's own options came first and won."""
    known = tmp_path / "known_hosts"
    known.write_text("")
    env = {"GITOPS_SSH_KNOWN_HOSTS": str(known), "GIT_SSH_COMMAND": "'/x/my bin/ssh' -i /ci/key"}
    args = shlex.split(deployrepo.open_remote("git@127.0.0.1:o/d.git", environ=env).env["GIT_SSH_COMMAND"])
    assert args[0] == "/x/my bin/ssh" and args[-2:] == ["-i", "/ci/key"]
    assert args.index("StrictHostKeyChecking=yes") < args.index("-i") and "BatchMode=yes" in args


@pytest.mark.parametrize("command", [
    "sshpass -p pw ssh -o StrictHostKeyChecking=no",
    "env FOO=1 ssh -oUserKnownHostsFile=/dev/null",
    "env ssh -o KnownHostsCommand=/bin/true",
])
def test_pinning_refuses_a_wrapper_that_sets_its_own_trust_options(tmp_path: Path, command: str) -> None:
    """A wrapper's own -o StrictHostKeyChecking=no came before the pin appended at its end, and won: the pin
    was silently defeated.  Pinning and an explicit override contradict each other: exit 2."""
    known = tmp_path / "known_hosts"
    known.write_text("")
    env = {"GITOPS_SSH_KNOWN_HOSTS": str(known), "GIT_SSH_COMMAND": command}
    with pytest.raises(UsageError, match="ssh command of GIT_SSH_COMMAND sets") as exc:
        deployrepo.open_remote("git@127.0.0.1:o/d.git", environ=env)
    assert exc.value.exit_code == 2 and "contradict" in exc.value.message
    # without the pin the user's command is theirs to make
    deployrepo.open_remote("git@127.0.0.1:o/d.git", environ={"GIT_SSH_COMMAND": command})


def test_batch_mode_goes_into_the_users_own_ssh_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git.base_env forced GIT_SSH_COMMAND="ssh -o BatchMode=yes" on every git call: core.sshCommand (which
    actions/checkout's ssh-key writes) was never used.  BatchMode now goes into the user's command."""
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    monkeypatch.delenv("GIT_SSH", raising=False)
    assert "GIT_SSH_COMMAND" not in git.base_env({})  # core.sshCommand of any repo stays in force
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i /ci/key")
    assert git.base_env({})["GIT_SSH_COMMAND"] == "ssh -o BatchMode=yes -i /ci/key"
    repo = tmp_path / "checkout"
    git.run(["init", "--quiet", str(repo)])
    git.run(["config", "core.sshCommand", "ssh -i /ci/key -o IdentitiesOnly=yes"], cwd=repo)
    monkeypatch.delenv("GIT_SSH_COMMAND")
    cmd = deployrepo.open_remote("ssh://git@127.0.0.1/o/d.git", environ={}, repo=repo).env["GIT_SSH_COMMAND"]
    assert shlex.split(cmd) == ["ssh", "-o", "BatchMode=yes", "-i", "/ci/key", "-o", "IdentitiesOnly=yes"]
    assert git.ssh_command_with("ssh -p 2222", []) == "ssh -o BatchMode=yes -p 2222"
    assert git.ssh_command_with("ssh -o BatchMode=no", []) == "ssh -o BatchMode=no"  # the user's choice
    assert git.ssh_command_with("sshpass -p pw ssh", []) == "sshpass -p pw ssh"  # may need to prompt


@pytest.mark.parametrize("command", [
    "'/x/my bin/ssh' -o StrictHostKeyChecking=no",
    "ssh -o 'stricthostkeychecking no' -o UserKnownHostsFile=/ci/kh",
])
def test_the_pin_goes_before_the_trust_options_of_an_ssh_command(tmp_path: Path, command: str) -> None:
    """ssh itself takes an option's first value: the pin, right after the program, wins; not refused."""
    known = tmp_path / "known_hosts"
    known.write_text("")
    env = {"GITOPS_SSH_KNOWN_HOSTS": str(known), "GIT_SSH_COMMAND": command}
    args = shlex.split(deployrepo.open_remote("git@127.0.0.1:o/d.git", environ=env).env["GIT_SSH_COMMAND"])
    first = next(i for i, a in enumerate(args) if a.lower().startswith("stricthostkeychecking"))
    assert args[first] == "StrictHostKeyChecking=yes"


def test_a_global_ssh_command_from_the_environments_config_is_kept() -> None:
    """core.sshCommand given through GIT_CONFIG_COUNT (or an [include] of ~/.gitconfig) was not seen by
    `git config --global --get`, and `ssh -o BatchMode=yes` replaced it."""
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.sshCommand", "GIT_CONFIG_VALUE_0": "ssh -i /ci/key"}
    command = deployrepo.open_remote("git@127.0.0.1:o/d.git", environ=env).env["GIT_SSH_COMMAND"]
    assert shlex.split(command) == ["ssh", "-o", "BatchMode=yes", "-i", "/ci/key"]


def test_a_write_the_system_refused_is_exit_74() -> None:
    """A full TMPDIR under the deploy repo's clone was exit 10, "git remote unreachable or git operation
    failed"; the table puts a disk full under 74, as for gitops' own writes."""
    err = git.error_for(["clone"], 128, "Cloning into '/tmp/x'...\nerror: copy-fd: write returned: No space left on "
                        "device\nfatal: cannot copy '/srv/d.git/objects/pack/p.pack'\n", what="cloning d")
    assert isinstance(err, GitError) and err.exit_code == 74 and "TMPDIR" in (err.hint or "")
    assert git.error_for(["clone"], 128, "fatal: repository 'x' does not exist\n").exit_code == 10
    assert git.error_for(["commit"], 128, "error: sha1 file '/d/.git/index.lock' write error. Out of diskspace\n"
                         "fatal: unable to write new index file\n").exit_code == 74


def test_gits_output_is_never_coloured_whatever_the_users_config_entries_say(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """PLAIN_OUTPUT goes on git's command line, read after the user's own GIT_CONFIG_* entries and
    GIT_CONFIG_PARAMETERS (a parent git's `-c`), which stay in the environment: the last one wins."""
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "color.ui")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "always")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'color.ui'='always' 'color.grep'='always'")
    env = git.base_env(git.env_config([("http.https://h/.extraHeader", "Authorization: Basic x")]))
    assert (env["GIT_CONFIG_COUNT"], env["GIT_CONFIG_KEY_0"]) == ("1", "color.ui")  # the user's, as they are
    assert env["GIT_CONFIG_PARAMETERS"] == ("'color.ui'='always' 'color.grep'='always' "
                                            "'http.https://h/.extraHeader'='Authorization: Basic x'")
    assert git.run(["config", "--get", "color.ui"], cwd="/").stdout == "never"
    assert git.run(["config", "--get", "color.grep"], cwd="/").stdout == "never"
    monkeypatch.setenv("GIT_CONFIG_COUNT", "two")
    with pytest.raises(UsageError, match="GIT_CONFIG_COUNT='two': not a number"):
        git.base_env()


def test_ssh_askpass_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """git's own prompt falls back to SSH_ASKPASS (after GIT_ASKPASS and core.askPass): an empty one is none."""
    monkeypatch.setenv("SSH_ASKPASS", "/usr/bin/ssh-askpass")
    monkeypatch.setenv("GIT_ASKPASS", "/ci/askpass")
    env = git.base_env()
    assert env["SSH_ASKPASS"] == "" and env["SSH_ASKPASS_REQUIRE"] == "never"
    assert env["GIT_ASKPASS"] == "/ci/askpass"  # a credential source (CI's), kept


def test_a_token_of_gitops_turns_the_users_credential_helpers_and_askpass_off() -> None:
    env = deployrepo.open_remote("https://git.example.com/d.git", environ={"GITOPS_GIT_TOKEN": SECRET}).env
    # an empty helper resets the list, after the user's (GIT_CONFIG_PARAMETERS: a parent git's `-c`)
    user = {"GIT_CONFIG_PARAMETERS": "'credential.helper'='store'", "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "credential.helper", "GIT_CONFIG_VALUE_0": "cache"}
    helpers = git.run_outside(["config", "--get-all", "credential.helper"], env={**env, **user}, strip=False)
    assert helpers.stdout.splitlines()[-1] == ""
    assert env["GIT_ASKPASS"] == ""
    assert deployrepo.open_remote("https://git.example.com/d.git", environ={}).env == {}  # the user's helpers


def test_a_missing_program_is_the_reason_given() -> None:
    stderr = ("git-lfs filter-process: 1: git-lfs: not found\nerror: packet write with format failed\n"
              "error: Could not write client identification\nfatal: the remote end hung up unexpectedly\n")
    err = git.error_for(["read-tree"], 128, stderr)
    assert err.message == "git read-tree failed (exit 128): git-lfs filter-process: 1: git-lfs: not found"
