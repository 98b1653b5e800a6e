"""How every verb that talks to a registry reaches it: one credential resolution (registry_username
included), the scheme and CAs chosen as dockerd chooses them, credential helpers that fail."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gitops_cli import registry as registry_module
from tests.fixtures.gitremotes import make_bare_remote
from tests.fixtures.procs import stop_process
from tests.fixtures.services import Registry, start_registry
from tests.fixtures.tls import SERVER_NAME, TlsFiles, connect_proxy
from tests.integration.test_bump_digest import push_minimal_image

pytestmark = pytest.mark.integration


def _app_dir(tmp_path: Path, config: str = "") -> Path:
    """A directory whose gitops.toml holds `config`, and an empty docker config beside it."""
    where = tmp_path / "app"
    where.mkdir()
    if config:
        (where / "gitops.toml").write_text(config)
    (tmp_path / "docker-config").mkdir()
    return where


def test_bump_and_rollback_use_the_config_files_registry_username(tmp_path: Path, auth_registry: Registry,
                                                                  gitops) -> None:
    """registry_username in gitops.toml worked for publish only: bump's digest look-up and rollback's
    check resolved credentials without it (exit 2, "set both GITOPS_REGISTRY_USERNAME and ...")."""
    creds = (auth_registry.username or "", auth_registry.password or "")
    name = f"{auth_registry.host}/team/app"
    d1 = push_minimal_image(auth_registry.url, "team/app", "v1", auth=creds)
    d2 = push_minimal_image(auth_registry.url, "team/app", "v2", auth=creds)
    remote = make_bare_remote(tmp_path / "r", {"app.yaml": f"containers:\n- name: app\n  image: {name}:v1@{d1}\n"})
    app = _app_dir(tmp_path, f'registry_username = "{creds[0]}"\n')
    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config"), "GITOPS_REGISTRY_PASSWORD": creds[1]}

    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:v2"], cwd=app, env=env)
    assert res.returncode == 0, res.stderr
    assert remote.show("app.yaml").decode() == f"containers:\n- name: app\n  image: {name}:v2@{d2}\n"
    res = gitops(["rollback", "--deploy-repo", remote.url, "--image", name], cwd=app, env=env)
    assert res.returncode == 0, res.stderr
    assert remote.show("app.yaml").decode() == f"containers:\n- name: app\n  image: {name}:v1@{d1}\n"

    # the username's source is named, and the hint names only what the verb offers (no --password-stdin)
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:v2", "--dry-run"], cwd=app,
                 env={**env, "GITOPS_REGISTRY_PASSWORD": "wrong-password"})
    assert res.returncode == 13, res.stderr
    assert (f"for user 'ci-bot' (credentials from {app / 'gitops.toml'}: registry_username and "
            "GITOPS_REGISTRY_PASSWORD)") in res.stderr
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:v2", "--dry-run"], cwd=app,
                 env={**env, "GITOPS_REGISTRY_PASSWORD": ""})
    assert res.returncode == 2, res.stderr
    assert (f"error: app.yaml:3: needs the digest of {name}:v2: {app / 'gitops.toml'}: registry_username = "
            "'ci-bot': a registry username without a password\n") in res.stderr
    assert "hint: set GITOPS_REGISTRY_PASSWORD\n" in res.stderr


@pytest.mark.parametrize("verb", ["bump", "rollback"])
def test_the_no_credentials_hint_names_only_what_the_verb_offers(tmp_path: Path, auth_registry: Registry, gitops,
                                                                 verb: str) -> None:
    """bump and rollback have no --username/--password-stdin: their hint named them."""
    creds = (auth_registry.username or "", auth_registry.password or "")
    name = f"{auth_registry.host}/team/app"
    d1 = push_minimal_image(auth_registry.url, "team/app", "v1", auth=creds)
    push_minimal_image(auth_registry.url, "team/app", "v2", auth=creds)
    files = {"app.yaml": f"containers:\n- name: app\n  image: {name}:v2@{d1}\n"}
    remote = make_bare_remote(tmp_path / "r", files)
    app = _app_dir(tmp_path)
    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    args = (["bump", "--deploy-repo", remote.url, "--image", f"{name}:v2"] if verb == "bump"
            else ["rollback", "--deploy-repo", remote.url, "--image", name, "--to", "v1"])
    res = gitops([*args, "--dry-run"], cwd=app, env=env)
    assert res.returncode == (13 if verb == "bump" else 9), res.stderr
    assert "authentication failed (no credentials found)" in res.stderr
    hint = [ln for ln in res.stderr.splitlines() if ln.startswith("hint:")]
    assert hint == ["hint: docker login, GITOPS_REGISTRY_USERNAME/_PASSWORD, or registry_username in the config "
                    "file with GITOPS_REGISTRY_PASSWORD"], res.stderr


# --- scheme and CAs, as dockerd chooses them -------------------------------------------------------------
@pytest.fixture
def tls_registry(tmp_path: Path, tls_files: TlsFiles) -> Iterator[Registry]:
    reg, proc = start_registry(tmp_path / "tls-registry", tls=tls_files)
    try:
        yield reg
    finally:
        stop_process(proc)


@pytest.fixture
def client_cert_registry(tmp_path: Path, tls_files: TlsFiles) -> Iterator[Registry]:
    reg, proc = start_registry(tmp_path / "mtls-registry", tls=tls_files, client_certs=True)
    try:
        yield reg
    finally:
        stop_process(proc)


def _unverified(tls_files: TlsFiles, client: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if client:
        context.load_cert_chain(tls_files.client_cert, tls_files.client_key)
    return context


@contextmanager
def docker_certs(host: str, files: dict[str, Path]) -> Iterator[Path]:
    """dockerd's /etc/docker/certs.d/HOST/ holding `files` (name -> source); machine-wide (dockerd reads it
    too), so it is removed afterwards, with certs.d itself when the test made it."""
    base = registry_module.CERTS_DIR
    made_base = not base.exists()
    directory = base / host
    assert not directory.exists(), f"{directory} exists: not the tests' own"
    directory.mkdir(parents=True)
    try:
        for name, source in files.items():
            shutil.copyfile(source, directory / name)
        yield directory
    finally:
        shutil.rmtree(directory)
        if made_base and not any(base.iterdir()):
            base.rmdir()


def _bump_dry_run(gitops, tmp_path: Path, name: str, digest: str, env: dict[str, str]):  # type: ignore[no-untyped-def]
    """`gitops bump --dry-run` of a reference pinned by digest: the new tag's digest is looked up."""
    where = tmp_path / f"r{len(list(tmp_path.glob('r*')))}"
    remote = make_bare_remote(where, {"app.yaml": f"containers:\n- name: app\n  image: {name}:v1@{digest}\n"})
    if not (tmp_path / "docker-config").exists():
        (tmp_path / "docker-config").mkdir()
    return gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:v2", "--dry-run"], cwd=tmp_path,
                  env={"DOCKER_CONFIG": str(tmp_path / "docker-config"), **env})


def _pushed_v1_v2(registry: Registry, tls_files: TlsFiles, client: bool = False) -> tuple[str, str, str, str]:
    """team/app:v1 and :v2 pushed to the TLS `registry` (certificate not verified, `client`: with the client
    certificate); (its host:port under the name connect_proxy reaches it by, the image name there, v1's
    digest, v2's digest)."""
    context = _unverified(tls_files, client=client)
    d1 = push_minimal_image(registry.url, "team/app", "v1", context=context)
    d2 = push_minimal_image(registry.url, "team/app", "v2", context=context)
    host = f"{SERVER_NAME}:{registry.port}"
    return host, f"{host}/team/app", d1, d2


def _via(proxy: str) -> dict[str, str]:
    """The environment that sends gitops' HTTPS requests through the CONNECT proxy `proxy`."""
    return {"https_proxy": proxy, "HTTPS_PROXY": proxy, "no_proxy": "", "NO_PROXY": ""}


def test_a_tls_registry_on_loopback_is_used_over_https(gitops, app_repo: Path, tls_registry: Registry) -> None:
    """dockerd tries HTTPS (unverified) first for an insecure registry, 127.0.0.0/8 included, and pushes to a
    TLS registry on loopback; gitops' look-up always used plain HTTP there: `answered 400`, exit 8."""
    res = gitops(["build", "--image", f"{tls_registry.host}/team/app"], cwd=app_repo)
    assert res.returncode == 0, res.stderr
    ref = res.stdout.splitlines()[0]
    res = gitops(["publish", "--image", ref], cwd=app_repo)
    assert res.returncode == 0, res.stderr
    assert f"==> Checking {ref} in https://{tls_registry.host}\n" in res.stderr
    assert res.stdout.startswith(f"{ref}@sha256:")
    again = gitops(["publish", "--image", ref], cwd=app_repo)
    assert again.returncode == 0 and again.stdout == res.stdout and "already published" in again.stderr


def test_a_verified_registry_takes_dockerds_certs_dir_or_ssl_cert_file(gitops, tmp_path: Path,
                                                                       tls_registry: Registry,
                                                                       tls_files: TlsFiles) -> None:
    """A registry under a name that is no loopback address (reached through a proxy) is verified: its CA in
    /etc/docker/certs.d/HOST:PORT/ca.crt, where dockerd reads it, was not used, and the hint sent the user to
    insecure_registries, where gitops then used plain HTTP."""
    host, name, d1, d2 = _pushed_v1_v2(tls_registry, tls_files)
    with connect_proxy(tls_registry.port) as proxy:
        env = _via(proxy)
        res = _bump_dry_run(gitops, tmp_path, name, d1, {**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
        assert res.returncode == 13, res.stderr
        assert "CERTIFICATE_VERIFY_FAILED" in res.stderr
        assert (f"hint: give gitops the registry's CA: ca.crt in /etc/docker/certs.d/{host}/ (dockerd's) or "
                f"{tmp_path}/xdg/docker/certs.d/{host}/ (a rootless dockerd's), the system's CAs, or a bundle named "
                "by SSL_CERT_FILE; or list it in insecure_registries\n") in res.stderr
        with docker_certs(host, {"ca.crt": tls_files.ca}):
            res = _bump_dry_run(gitops, tmp_path, name, d1, env)
        assert res.returncode == 0, res.stderr
        assert f"+  image: {name}:v2@{d2}" in res.stdout
        res = _bump_dry_run(gitops, tmp_path, name, d1, {**env, "SSL_CERT_FILE": str(tls_files.ca)})
        assert res.returncode == 0, res.stderr
        # an insecure registry: TLS without verification (matched in any letter case)
        res = _bump_dry_run(gitops, tmp_path, name, d1, {**env, "GITOPS_INSECURE_REGISTRIES": host.upper()})
        assert res.returncode == 0, res.stderr
        assert f"+  image: {name}:v2@{d2}" in res.stdout


def test_a_certificate_for_another_name_gets_a_hint_that_fits(gitops, tmp_path: Path, tls_registry: Registry,
                                                              tls_files: TlsFiles) -> None:
    """A certificate issued by a trusted CA for another name (hostname mismatch) got the hint to give gitops
    the registry's CA, which it had."""
    _, _, d1, _ = _pushed_v1_v2(tls_registry, tls_files)
    host = f"other.gitops-test.invalid:{tls_registry.port}"  # not a name the certificate names
    with connect_proxy(tls_registry.port) as proxy:
        res = _bump_dry_run(gitops, tmp_path, f"{host}/team/app", d1,
                            {**_via(proxy), "SSL_CERT_FILE": str(tls_files.ca)})
    assert res.returncode == 13, res.stderr
    assert "Hostname mismatch" in res.stderr and "give gitops the registry's CA" not in res.stderr
    assert ("hint: the registry's certificate is not issued for other.gitops-test.invalid: reach the registry by a "
            "name its certificate names (its subjectAltName), or reissue the certificate for "
            "other.gitops-test.invalid\n") in res.stderr


def test_the_connect_proxy_leaves_no_thread_or_listener_behind() -> None:
    """The proxy's accept loop outlived it (its listener was closed under a blocked accept(), and its
    tunnels' sockets under blocked reads): when a signal came to such a thread (a subprocess's SIGCHLD),
    the kernel restarted its call on the same descriptor number, by then a later test's socket.  A later
    proxy's connections went to a stale one, which tunnelled them to its own registry, long stopped: the
    HTTPS attempt of test_a_verified_registry_... failed now and then (`502`, or no answer)."""
    before = set(threading.enumerate())
    with socket.create_server(("127.0.0.1", 0)) as target:  # a connection waits in its backlog: enough
        with socket.socket() as client:
            with connect_proxy(target.getsockname()[1]) as proxy:
                port = int(proxy.rsplit(":", 1)[1])
                client.connect(("127.0.0.1", port))
                client.sendall(b"CONNECT reg.gitops-test.invalid:443 HTTP/1.1\r\n\r\n")
                assert client.recv(100).startswith(b"HTTP/1.1 200 ")
            # the block ended with this tunnel open: it is cut, its threads gone, the port closed
            assert client.recv(100) == b""
    assert set(threading.enumerate()) <= before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()


def _user_certs(config_home: Path, host: str, files: dict[str, Path]) -> Path:
    """A rootless dockerd's certs.d/HOST/ under `config_home` (its XDG_CONFIG_HOME) holding `files`."""
    directory = config_home / "docker" / "certs.d" / host
    directory.mkdir(parents=True)
    for name, source in files.items():
        shutil.copyfile(source, directory / name)
    return directory


def test_a_rootless_dockerds_certs_dir_is_read_too(gitops, tmp_path: Path, tls_registry: Registry,
                                                    client_cert_registry: Registry, tls_files: TlsFiles) -> None:
    """A rootless dockerd reads a registry's CA and client certificate from $XDG_CONFIG_HOME/docker/certs.d
    (~/.config/docker/certs.d): `docker push` worked there, and gitops, which read /etc/docker/certs.d only,
    failed with CERTIFICATE_VERIFY_FAILED."""
    host, name, d1, d2 = _pushed_v1_v2(tls_registry, tls_files)
    with connect_proxy(tls_registry.port) as proxy:
        env = _via(proxy)
        _user_certs(tmp_path / "xdg", host, {"ca.crt": tls_files.ca})
        res = _bump_dry_run(gitops, tmp_path, name, d1, {**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
        assert res.returncode == 0, res.stderr
        assert f"+  image: {name}:v2@{d2}" in res.stdout
        # without XDG_CONFIG_HOME: ~/.config/docker/certs.d
        _user_certs(tmp_path / "home" / ".config", host, {"ca.crt": tls_files.ca})
        res = _bump_dry_run(gitops, tmp_path, name, d1, {**env, "HOME": str(tmp_path / "home")})
        assert res.returncode == 0, res.stderr
        assert f"+  image: {name}:v2@{d2}" in res.stdout

    # a client certificate there, the engine rootless as DOCKER_HOST tells
    host, name, d1, d2 = _pushed_v1_v2(client_cert_registry, tls_files, client=True)
    _user_certs(tmp_path / "mtls", host, {"ca.crt": tls_files.ca, "client.cert": tls_files.client_cert,
                                          "client.key": tls_files.client_key})
    with connect_proxy(client_cert_registry.port) as proxy:
        env = {**_via(proxy), "XDG_CONFIG_HOME": str(tmp_path / "mtls"), "XDG_RUNTIME_DIR": str(tmp_path / "run"),
               "DOCKER_HOST": f"unix://{tmp_path / 'run' / 'docker.sock'}"}
        res = _bump_dry_run(gitops, tmp_path, name, d1, env)
    assert res.returncode == 0, res.stderr
    assert f"+  image: {name}:v2@{d2}" in res.stdout


def test_client_certificates_from_dockerds_certs_dir(gitops, tmp_path: Path, client_cert_registry: Registry,
                                                     tls_files: TlsFiles) -> None:
    """A registry that wants a client certificate: dockerd's certs.d/HOST:PORT/client.cert + client.key."""
    host, name, d1, d2 = _pushed_v1_v2(client_cert_registry, tls_files, client=True)
    with connect_proxy(client_cert_registry.port) as proxy:
        env = _via(proxy)
        with docker_certs(host, {"ca.crt": tls_files.ca}):
            res = _bump_dry_run(gitops, tmp_path, name, d1, env)
        assert res.returncode == 13, res.stderr  # the handshake fails without a client certificate
        with docker_certs(host, {"ca.crt": tls_files.ca, "client.cert": tls_files.client_cert,
                                 "client.key": tls_files.client_key}):
            res = _bump_dry_run(gitops, tmp_path, name, d1, env)
        assert res.returncode == 0, res.stderr
        assert f"+  image: {name}:v2@{d2}" in res.stdout
        with docker_certs(host, {"ca.crt": tls_files.ca, "client.cert": tls_files.client_cert}) as where:
            res = _bump_dry_run(gitops, tmp_path, name, d1, env)
        assert res.returncode == 2, res.stderr
        assert f"{where}/client.cert: a client certificate without its key client.key" in res.stderr


def test_plain_http_to_a_tls_registry_says_it_speaks_tls(gitops, tmp_path: Path, client_cert_registry: Registry,
                                                         tls_files: TlsFiles) -> None:
    """On loopback (an insecure registry) HTTPS is tried without a client certificate, as dockerd does; the
    registry refuses the handshake, and plain HTTP gets `400 Client sent an HTTP request to an HTTPS server`:
    that was `answered 400`, the registry's words dropped, no hint."""
    d1 = push_minimal_image(client_cert_registry.url, "team/app", "v1", context=_unverified(tls_files, client=True))
    res = _bump_dry_run(gitops, tmp_path, f"{client_cert_registry.host}/team/app", d1, {})
    assert res.returncode == 13, res.stderr
    assert "answered 400: Client sent an HTTP request to an HTTPS server." in res.stderr
    assert f"hint: {client_cert_registry.host} speaks TLS, but gitops could not use it (HTTPS failed: " in res.stderr
