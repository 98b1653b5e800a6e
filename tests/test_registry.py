"""Registry client: credentials sources, endpoints, challenges, and the Bearer token flow against a
small real HTTP server on 127.0.0.1 (docker-registry itself only offers htpasswd without a token
server; that path is covered by tests/integration/test_publish.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gitops_cli import output, registry
from gitops_cli.errors import ConfigError, RegistryAuthError, RegistryError, UsageError, VerificationError
from gitops_cli.imageref import parse

USER, PASSWORD, TOKEN = "robot", "pa55-word-xyz", "tok-123"
REFRESH = "refresh-tok-456"  # an identity token (docker login to ACR and others): an OAuth2 refresh token
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
               "digest": "sha256:" + "c" * 64},
    "layers": [],
}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


class TokenRegistry(BaseHTTPRequestHandler):
    """/token issues TOKEN for USER:PASSWORD; /v2/team/app/manifests/1 needs `Bearer TOKEN`."""

    requests: list[tuple[str, str, str | None]] = []
    token_failures: list[int] = []  # statuses /token answers first, one each (a rate limit, a gateway)

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        TokenRegistry.requests.append((self.command, self.path, auth))
        if self.path.startswith("/token"):
            if TokenRegistry.token_failures:
                status = TokenRegistry.token_failures.pop(0)
                return self._reply(status, b"busy", {"Retry-After": "0"} if status == 429 else {})
            good = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if auth != good:
                return self._reply(401, b'{"details":"bad creds"}')
            assert "scope=repository%3Ateam%2Fapp%3Apull" in self.path and "service=test" in self.path
            return self._reply(200, json.dumps({"token": TOKEN}).encode())
        if self.path.startswith("/v2/basic/"):  # a Basic-auth registry (or proxy) whose error echoes the header
            if auth is None:
                return self._reply(401, b"", {"WWW-Authenticate": 'Basic realm="r"'})
            return self._reply(500, json.dumps({"errors": [{"message": f"bad header {auth}"}]}).encode())
        if auth != f"Bearer {TOKEN}":
            realm = f"http://127.0.0.1:{self.server.server_port}/token"
            return self._reply(401, b"", {"WWW-Authenticate": f'Bearer realm="{realm}",service="test",'
                                                               'scope="repository:team/app:pull"'})
        if self.path == "/v2/team/app/manifests/1":
            media_type = "application/vnd.docker.distribution.manifest.v2+json"
            return self._reply(200, MANIFEST, {"Docker-Content-Digest": DIGEST, "Content-Type": media_type})
        if self.path == "/v2/team/app/manifests/echo-auth":
            return self._reply(500, json.dumps({"errors": [{"message": f"bad header {auth}"}]}).encode())
        if self.path == "/v2/team/app/manifests/list":
            return self._reply(200, b"[1,2]", {"Content-Type": "application/json"})
        if self.path == "/v2/team/app/manifests/500":
            return self._reply(500, b'{"errors":[{"code":"UNKNOWN","message":"storage broke"}]}')
        if self.path == "/v2/team/app/manifests/echo":  # a proxy's error page echoing what it was sent
            return self._reply(500, b"x" * 195 + f" {PASSWORD} and more\n".encode())
        return self._reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

    do_HEAD = do_GET

    def do_POST(self) -> None:  # the OAuth2 token exchange for identity tokens
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        TokenRegistry.requests.append((self.command, self.path, body))
        form = dict(urllib.parse.parse_qsl(body))
        if (self.path == "/token" and form.get("grant_type") == "refresh_token"
                and form.get("refresh_token") == REFRESH and form.get("service") == "test"
                and form.get("scope") == "repository:team/app:pull"):
            return self._reply(200, json.dumps({"access_token": TOKEN}).encode())
        return self._reply(401, b'{"error":"invalid_grant"}')


@pytest.fixture
def token_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    TokenRegistry.requests = []
    TokenRegistry.token_failures = []
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def creds() -> registry.Credentials:
    return registry.Credentials(USER, PASSWORD, "test")


def test_bearer_flow_resolves_digest(token_registry: str) -> None:
    ref = parse(f"{token_registry}/team/app:1")
    assert registry.resolve_digest(ref, creds()) == DIGEST
    manifest = registry.get_manifest(ref, creds())
    assert manifest is not None and manifest.digest == DIGEST and not manifest.is_index
    assert manifest.config_digest == "sha256:" + "c" * 64


def test_token_is_reused_within_a_client(token_registry: str) -> None:
    ref = parse(f"{token_registry}/team/app:1")
    client = registry.Client(token_registry, creds())
    registry.head_digest(ref, client=client)
    registry.get_manifest(ref, client=client)
    assert sum(1 for _, path, _ in TokenRegistry.requests if path.startswith("/token")) == 1


def test_the_token_endpoints_transient_errors_are_retried(token_registry: str, monkeypatch) -> None:
    """A token endpoint answering 429 or 503 failed the run at once ("answered 503 without a token"), while
    the registry's own GET/HEAD were retried: its GET is now retried the same way, then reported with the
    count."""
    monkeypatch.setattr(registry, "RETRY_BACKOFF", 0.01)
    ref = parse(f"{token_registry}/team/app:1")
    TokenRegistry.token_failures = [429, 503]
    assert registry.resolve_digest(ref, creds()) == DIGEST
    assert sum(1 for _, path, _ in TokenRegistry.requests if path.startswith("/token")) == 3
    TokenRegistry.requests.clear()
    TokenRegistry.token_failures = [502] * 4
    with pytest.raises(RegistryError) as info:
        registry.resolve_digest(ref, creds())
    assert str(info.value) == (f"token endpoint http://{token_registry}/token answered 502 (sent 4 times) "
                               "without a token") and info.value.exit_code == 8
    assert sum(1 for _, path, _ in TokenRegistry.requests if path.startswith("/token")) == 4


def test_missing_tag_is_none_and_unresolvable(token_registry: str) -> None:
    ref = parse(f"{token_registry}/team/app:2")
    assert registry.head_digest(ref, creds()) is None
    with pytest.raises(VerificationError, match="has no such tag"):
        registry.resolve_digest(ref, creds())


def test_bad_password_is_auth_error_without_secret(token_registry: str) -> None:
    bad = registry.Credentials(USER, "wrong-password-123", "test")
    with pytest.raises(RegistryAuthError) as info:
        registry.resolve_digest(parse(f"{token_registry}/team/app:1"), bad)
    assert info.value.exit_code == 9
    assert "robot" in info.value.message
    assert "wrong-password-123" not in info.value.message + str(info.value.hint)


def test_anonymous_token_refused_is_auth_error(token_registry: str) -> None:
    with pytest.raises(RegistryAuthError, match="no credentials found"):
        registry.resolve_digest(parse(f"{token_registry}/team/app:1"))


def test_server_error_names_url_and_detail(token_registry: str) -> None:
    ref = parse(f"{token_registry}/team/app:500")
    with pytest.raises(RegistryError, match=r"GET http://.*/manifests/500 answered 500: storage broke"):
        registry.get_manifest(ref, creds())
    with pytest.raises(RegistryError, match=r"HEAD http://.*/manifests/500 answered 500$"):
        registry.head_digest(ref, creds())


def test_an_answers_first_line_is_cut_after_masking(token_registry: str) -> None:
    """The first line of an answer that is no JSON was cut at 200 characters before its secrets were
    masked: a password across the cut showed its first characters (`pa55`)."""
    with pytest.raises(RegistryError) as info:
        registry.get_manifest(parse(f"{token_registry}/team/app:echo"), creds())
    assert str(info.value).endswith(" answered 500: " + "x" * 195 + " *** ")  # 200 characters
    assert "pa55" not in str(info.value)


def test_an_echoed_authorization_header_is_masked(token_registry: str) -> None:
    """The Basic value (base64 of user:password, also the docker config's `auth` field) and a bearer token
    are secrets: an answer echoing the header shows neither."""
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    with pytest.raises(RegistryError) as info:
        registry.get_manifest(parse(f"{token_registry}/basic/app:1"), creds())
    assert str(info.value).endswith("answered 500: bad header Basic ***") and basic not in str(info.value)
    with pytest.raises(RegistryError) as info:
        registry.get_manifest(parse(f"{token_registry}/team/app:echo-auth"), creds())
    assert str(info.value).endswith("answered 500: bad header Bearer ***"), str(info.value)


def test_unreachable_names_url() -> None:
    from tests.fixtures.services import free_port

    port = free_port()
    with pytest.raises(RegistryError) as info:
        registry.resolve_digest(parse(f"127.0.0.1:{port}/team/app:1"))
    assert info.value.exit_code == 8
    assert f"http://127.0.0.1:{port}/v2/team/app/manifests/1" in info.value.message
    # an insecure registry is tried over HTTPS first: why that failed is said too, not only HTTP's failure
    assert "Connection refused (HTTPS, tried first: [Errno 111] Connection refused)" in info.value.message


@pytest.mark.parametrize(
    "host, insecure, expected",
    [
        ("127.0.0.1:5000", [], True),  # dockerd's default insecure registries: 127.0.0.0/8
        ("127.0.0.2", [], True),
        ("localhost:5000", [], True),
        ("[::1]:5000", [], True),
        ("reg.gitops-test.invalid", [], False),
        ("10.1.2.3:5000", [], False),
        ("10.1.2.3:5000", ["10.0.0.0/8"], True),  # a CIDR entry, as in dockerd's insecure-registries
        ("10.1.2.3:5000", ["10.1.2.3"], False),  # an entry names HOST[:PORT] as the reference does
        ("reg.internal:5000", ["reg.internal:5000"], True),
        ("VM:5000", ["vm:5000"], True),  # host names in any letter case
        ("vm:5000", [" VM:5000 "], True),
        ("docker.io", [], False),
    ],
)
def test_is_insecure(host: str, insecure: list[str], expected: bool) -> None:
    assert registry.is_insecure(host, insecure) is expected


def test_a_secure_registry_is_reached_over_https_only_its_certificate_checked() -> None:
    """As dockerd: HTTPS only, decided without asking the registry (no attempt to fall back from to plain
    HTTP), the certificate checked; Docker Hub through its API host."""
    import ssl

    assert registry.endpoint("docker.io").url == "https://registry-1.docker.io"
    found = registry.endpoint("10.1.2.3:5000")
    assert found.url == "https://10.1.2.3:5000" and found.tls_failure is None
    assert found.context.verify_mode == ssl.CERT_REQUIRED and found.context.check_hostname


def test_an_insecure_registry_is_tried_over_https_first_once_a_process(token_registry: str) -> None:
    """As dockerd: HTTPS (no verification) first, plain HTTP when that fails; the answer is remembered."""
    TokenRegistry.requests = []
    found = registry.endpoint(token_registry)
    assert found.url == f"http://{token_registry}" and found.tls_failure  # why HTTPS failed, for messages
    assert registry.endpoint(token_registry) is found
    assert registry.Client(token_registry).url == f"http://{token_registry}"
    assert registry.resolve_digest(parse(f"{token_registry}/team/app:1"), creds()) == DIGEST
    assert registry.endpoint(token_registry) is found


def test_an_insecure_tls_registry_is_used_over_https_unverified(tmp_path: Path, tls_files) -> None:
    """A TLS registry on loopback with a certificate no one trusts: dockerd pushes to it (TLS without
    verification, an insecure registry), and so does gitops' look-up."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.server_cert, tls_files.server_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenRegistry)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_port}"
        assert registry.endpoint(host).url == f"https://{host}"
        assert registry.endpoint(host).tls_failure is None
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_dockerds_certs_dir_a_key_without_a_certificate_is_refused(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "CERTS_DIR", tmp_path)
    (tmp_path / "reg.gitops-test.invalid:5001").mkdir()
    (tmp_path / "reg.gitops-test.invalid:5001" / "client.key").write_text("x")
    with pytest.raises(ConfigError, match=r"client.key: a client key without its certificate client.cert"):
        registry.endpoint("reg.gitops-test.invalid:5001")


@pytest.mark.parametrize("env, expected", [
    ({"XDG_CONFIG_HOME": "/x/conf", "HOME": "/home/u"}, "/x/conf/docker/certs.d"),
    ({"HOME": "/home/u"}, "/home/u/.config/docker/certs.d"),
    ({"XDG_CONFIG_HOME": "", "HOME": "/home/u"}, "/home/u/.config/docker/certs.d"),
    ({"XDG_CONFIG_HOME": "rel/conf", "HOME": "/home/u"}, "/home/u/.config/docker/certs.d"),  # XDG: ignored
])
def test_a_rootless_dockerds_certs_dir(env: dict[str, str], expected: str) -> None:
    """moby's CertsDir under RootlessKit: $XDG_CONFIG_HOME/docker/certs.d, else ~/.config/docker/certs.d."""
    assert registry.user_certs_dir(env) == Path(expected)


@pytest.mark.parametrize("env, rootless", [
    ({"DOCKER_HOST": "unix:///run/user/1000/docker.sock", "XDG_RUNTIME_DIR": "/run/user/1000"}, True),
    ({"DOCKER_HOST": "unix:///run/user/1000//docker.sock", "XDG_RUNTIME_DIR": "/run/user/1000/"}, True),
    ({"DOCKER_HOST": f"unix:///run/user/{os.getuid()}/docker.sock"}, True),  # XDG_RUNTIME_DIR unset
    ({"DOCKER_HOST": "unix:///var/run/docker.sock", "XDG_RUNTIME_DIR": "/run/user/1000"}, False),
    ({"DOCKER_HOST": "tcp://127.0.0.1:2375", "XDG_RUNTIME_DIR": "/run/user/1000"}, False),
    ({"XDG_RUNTIME_DIR": "/run/user/1000"}, False),
])
def test_a_rootless_engine_is_told_by_its_socket(env: dict[str, str], rootless: bool) -> None:
    assert registry.rootless_engine(env) is rootless
    user = registry.user_certs_dir({**env, "HOME": "/home/u"})
    order = registry.certs_dirs({**env, "HOME": "/home/u"})
    assert order == ((user, registry.CERTS_DIR) if rootless else (registry.CERTS_DIR, user))


def test_client_certificate_from_the_engines_certs_dir_first(tmp_path: Path, tls_files,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Both certs.d have a client certificate for the host: the one of the engine's directory is presented
    (a rootless dockerd's when DOCKER_HOST is its socket), and the CAs of both are trusted."""
    import socket
    import ssl

    from tests.fixtures.tls import make_tls_files

    stranger = make_tls_files(tmp_path / "other-ca")  # a client certificate the server does not trust
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tls_files.server_cert, tls_files.server_key)
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(tls_files.ca)
    listener = socket.create_server(("127.0.0.1", 0))
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    system, user = tmp_path / "etc-certs.d", tmp_path / "xdg" / "docker" / "certs.d"
    for base, files in ((system, {"client.cert": stranger.client_cert, "client.key": stranger.client_key}),
                        (user, {"ca.crt": tls_files.ca, "client.cert": tls_files.client_cert,
                                "client.key": tls_files.client_key})):
        (base / host).mkdir(parents=True)
        for name, source in files.items():
            (base / host / name).write_bytes(source.read_bytes())
    monkeypatch.setattr(registry, "CERTS_DIR", system)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError):
            conn.close()

    def handshake() -> bool:
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with socket.create_connection(("127.0.0.1", int(host.rsplit(":", 1)[1])), timeout=10) as sock, \
                    registry._verified_context(host).wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                return tls.recv(2) == b"ok"
        except (ssl.SSLError, OSError):
            return False
        finally:
            thread.join(10)

    try:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'run' / 'docker.sock'}")
        assert handshake()  # the rootless engine's client certificate, its CA from the user's certs.d
        monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
        assert not handshake()  # dockerd's: the stranger's client certificate, refused by the server
    finally:
        listener.close()


def test_parse_challenge() -> None:
    scheme, params = registry.parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                      "scope": "repository:samalba/my-app:pull,push"}
    assert registry.parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


def test_registry_host_normalises_hub() -> None:
    assert registry.registry_host(parse("nginx:1")) == "docker.io"
    assert registry.registry_host(parse("index.docker.io/team/app:1")) == "docker.io"
    assert registry.registry_host(parse("localhost:5000/app:1")) == "localhost:5000"


# --- credentials -------------------------------------------------------------------------------------
def write_config(tmp_path: Path, data: dict) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(data))
    return {"DOCKER_CONFIG": str(tmp_path), "PATH": os.environ["PATH"]}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_precedence_username_setting_then_docker_config(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"auths": {"reg.example.com": {"auth": b64("cfg:cfgpass")}}})
    assert registry.resolve_credentials("reg.example.com", environ=env).username == "cfg"
    got = registry.resolve_credentials("reg.example.com", "envuser",
                                       environ={**env, "GITOPS_REGISTRY_PASSWORD": "envpass"})
    assert (got.username, got.password) == ("envuser", "envpass")
    got = registry.resolve_credentials("reg.example.com", "flaguser", "flagpass", environ=env)
    assert (got.username, got.password, got.source) == ("flaguser", "flagpass", "--username and --password-stdin")


def test_the_username_is_named_by_its_source(tmp_path: Path) -> None:
    """registry_username from the config file, GITOPS_REGISTRY_USERNAME or --username: messages and the
    credentials' source name where it came from."""
    from gitops_cli.settings import load_settings

    (tmp_path / "gitops.toml").write_text('registry_username = "ci-bot"\n')
    settings = load_settings(tmp_path, environ={})
    env = {"GITOPS_REGISTRY_PASSWORD": "pw-from-env", "DOCKER_CONFIG": str(tmp_path / "none")}
    got = registry.resolve_credentials("r", settings.registry_username, environ=env, names=settings.names)
    assert got.source == f"{tmp_path / 'gitops.toml'}: registry_username and GITOPS_REGISTRY_PASSWORD"
    with pytest.raises(UsageError) as info:
        registry.resolve_credentials("r", settings.registry_username, environ={}, names=settings.names, flags=False)
    assert info.value.message == (f"{tmp_path / 'gitops.toml'}: registry_username = 'ci-bot': a registry username "
                                  "without a password")
    assert info.value.hint == "set GITOPS_REGISTRY_PASSWORD"
    settings = load_settings(tmp_path, environ={"GITOPS_REGISTRY_USERNAME": "robot"})
    got = registry.resolve_credentials("r", settings.registry_username, environ=env, names=settings.names)
    assert (got.username, got.source) == ("robot", "GITOPS_REGISTRY_USERNAME and GITOPS_REGISTRY_PASSWORD")


def test_blank_password_variable_is_unset(tmp_path: Path) -> None:
    """CI exports an unset secret as an empty variable (a fork's pull request): the docker config (or
    nothing) is used, as for every setting (a blank GITOPS_REGISTRY_USERNAME is the settings' business)."""
    env = write_config(tmp_path, {"auths": {"reg.example.com": {"auth": b64("cfg:cfgpass")}}})
    for blank in ("", "  "):
        got = registry.resolve_credentials("reg.example.com", environ={**env, "GITOPS_REGISTRY_PASSWORD": blank})
        assert got is not None and got.username == "cfg"
    assert registry.resolve_credentials("r", environ={"DOCKER_CONFIG": str(tmp_path / "none"),
                                                      "GITOPS_REGISTRY_PASSWORD": ""}) is None
    with pytest.raises(UsageError, match="without a password"):  # a user whose password is blank
        registry.resolve_credentials("r", "u", None, environ={"GITOPS_REGISTRY_PASSWORD": ""})


def test_username_flag_takes_env_password() -> None:
    got = registry.resolve_credentials("r", "u", None, environ={"GITOPS_REGISTRY_PASSWORD": "p-from-env"})
    assert got.password == "p-from-env"


@pytest.mark.parametrize(
    "username, password, env, message",
    [
        (None, "pw-only", {}, "needs --username"),
        ("u", None, {}, "without a password"),
        (None, None, {"GITOPS_REGISTRY_PASSWORD": "p"}, "GITOPS_REGISTRY_PASSWORD is set without a registry username"),
    ],
)
def test_incomplete_credentials(username, password, env, message) -> None:
    with pytest.raises(UsageError, match=message):
        registry.resolve_credentials("r", username, password, environ=env)


@pytest.mark.parametrize("key", ["https://reg.example.com:5000/v1/", "reg.example.com:5000",
                                 "http://reg.example.com:5000"])
def test_docker_config_key_spellings(tmp_path: Path, key: str) -> None:
    env = write_config(tmp_path, {"auths": {key: {"auth": b64("u:p:with:colons")}}})
    got = registry.docker_config_credentials("reg.example.com:5000", env)
    assert got is not None and (got.username, got.password) == ("u", "p:with:colons")


def test_docker_hub_key(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")}}})
    assert registry.docker_config_credentials("docker.io", env).username == "hubuser"
    assert registry.docker_config_credentials("ghcr.io", env) is None


def test_identity_token(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"auths": {"reg.example.com": {"identitytoken": "refresh-tok"}}})
    got = registry.docker_config_credentials("reg.example.com", env)
    assert got.is_identity_token
    assert got.auth_config("reg.example.com") == {"identitytoken": "refresh-tok",
                                                  "serveraddress": "reg.example.com"}


def test_missing_config_is_none(tmp_path: Path) -> None:
    assert registry.docker_config_credentials("r", {"DOCKER_CONFIG": str(tmp_path / "absent")}) is None


def test_a_config_that_is_not_json_is_ignored_with_a_warning(tmp_path: Path, capsys) -> None:
    """As docker does (`WARNING: Error parsing config file`); the docker SDK ignores it too."""
    (tmp_path / "config.json").write_text("{not json")
    assert registry.docker_config_credentials("r", {"DOCKER_CONFIG": str(tmp_path)}) is None
    assert "cannot read the docker config" in capsys.readouterr().err


@pytest.mark.parametrize(("config", "message"), [
    ([1], "not a JSON object"),
    ({"credHelpers": ["x"]}, "'credHelpers' in the docker config is not a JSON object"),
    ({"credHelpers": {"r": 1}}, r"credHelpers\['r'\] .* not a string"),
    ({"auths": ["x"]}, "'auths' in the docker config is not a JSON object"),
    ({"auths": {"r": "x"}}, r"auths\['r'\] .* not a JSON object"),
    # an unrelated registry's entry: the docker SDK refuses the whole file when it connects
    ({"auths": {"other.example:5000": {"auth": "YWxpY2U="}}}, r"auths\['other.example:5000'\]: malformed"),
    ({"auths": {"other.example.com": {"auth": ""}}}, r"auths\['other.example.com'\]: malformed"),  # SDK: ValueError
])
def test_structurally_bad_config_is_a_config_error_naming_the_file(tmp_path: Path, config, message) -> None:
    env = write_config(tmp_path, config)
    with pytest.raises(ConfigError, match=message) as info:
        registry.docker_config_credentials("r", env)
    assert info.value.exit_code == 2
    assert str(tmp_path / "config.json") in info.value.message


def test_identity_token_is_exchanged_at_the_realm(token_registry: str) -> None:
    token = registry.Credentials("<token>", REFRESH, "docker config")
    assert registry.resolve_digest(parse(f"{token_registry}/team/app:1"), token) == DIGEST
    posts = [body for method, _, body in TokenRegistry.requests if method == "POST"]
    assert len(posts) == 1 and "grant_type=refresh_token" in posts[0]


def test_bad_identity_token_is_auth_error(token_registry: str) -> None:
    token = registry.Credentials("<token>", "stale-refresh-token", "docker config")
    with pytest.raises(RegistryAuthError):
        registry.resolve_digest(parse(f"{token_registry}/team/app:1"), token)


def test_manifest_that_is_not_an_object_is_a_registry_error(token_registry: str) -> None:
    with pytest.raises(RegistryError, match="not a JSON object") as info:
        registry.get_manifest(parse(f"{token_registry}/team/app:list"), creds())
    assert info.value.exit_code == 8


def install_helper(bindir: Path, name: str, script: str) -> None:
    bindir.mkdir(exist_ok=True)
    path = bindir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_cred_helper_wins_over_auths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    install_helper(bindir, "fake", 'read server\n[ "$1" = get ] || exit 3\n'
                   'echo "{\\"ServerURL\\": \\"$server\\", \\"Username\\": \\"helper-$server\\", '
                   '\\"Secret\\": \\"helper-secret\\"}"\n')
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    env = write_config(tmp_path, {"credHelpers": {"reg.example.com": "fake"},
                                  "auths": {"reg.example.com": {"auth": b64("stale:stale")}}})
    got = registry.docker_config_credentials("reg.example.com", env)
    assert (got.username, got.password) == ("helper-reg.example.com", "helper-secret")
    assert "docker-credential-fake" in got.source
    assert output.redact("x helper-secret y") == "x *** y"


def test_a_cred_helper_gets_no_secret_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper reads its own store: the secret variables gitops masks are not passed on to it."""
    bindir = tmp_path / "bin"
    seen = tmp_path / "env.txt"
    install_helper(bindir, "envdump", f'env > {seen}\necho \'{{"Username": "u", "Secret": "helper-secret"}}\'\n')
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    for name in ("GITOPS_REGISTRY_PASSWORD", "GITOPS_GIT_TOKEN", "GITHUB_TOKEN", "CI_JOB_TOKEN"):
        monkeypatch.setenv(name, f"value-of-{name}")
    env = write_config(tmp_path, {"credsStore": "envdump"})
    assert registry.docker_config_credentials("reg.example.com", env).username == "u"
    dumped = seen.read_text()
    assert "PATH=" in dumped and "value-of-" not in dumped


def test_creds_store_for_hub_and_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    install_helper(bindir, "store", 'read server\nif [ "$server" = "https://index.docker.io/v1/" ]; then\n'
                   '  echo \'{"Username": "hub", "Secret": "hub-secret"}\'\nelse\n'
                   '  echo "credentials not found in native keychain"; exit 1\nfi\n')
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    env = write_config(tmp_path, {"credsStore": "store"})
    assert registry.docker_config_credentials("docker.io", env).username == "hub"
    assert registry.docker_config_credentials("other.example.com", env) is None


def test_missing_helper_warns_and_falls_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = write_config(tmp_path, {"credsStore": "not-installed-xyz",
                                  "auths": {"r.example.com": {"auth": b64("a:b-pass")}}})
    assert registry.docker_config_credentials("r.example.com", env).username == "a"
    assert "credential helper docker-credential-not-installed-xyz failed (not installed)" in capsys.readouterr().err


def test_a_failing_helper_is_one_warning_with_its_first_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A helper that fails was skipped without a word; "credentials not found" is no failure."""
    bindir = tmp_path / "bin"
    install_helper(bindir, "locked", "cat >/dev/null; echo 'keychain locked' >&2; echo more >&2; exit 1\n")
    install_helper(bindir, "protocol", "cat >/dev/null; echo 'error from the helper'; exit 1\n")
    install_helper(bindir, "silent", "cat >/dev/null; exit 3\n")
    install_helper(bindir, "none", "cat >/dev/null; echo 'credentials not found in native keychain'; exit 1\n")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(registry, "_helper_warned", set())
    for helper, reason in [("locked", "keychain locked"), ("protocol", "error from the helper"),
                           ("silent", "exit status 3"), ("none", None)]:
        env = write_config(tmp_path, {"credsStore": helper})
        assert registry.docker_config_credentials("r.example.com", env) is None
        assert registry.docker_config_credentials("other.example.com", env) is None  # warned once
        err = capsys.readouterr().err
        if reason is None:
            assert err == ""
        else:
            assert err == (f"warning: {tmp_path / 'config.json'}: credential helper docker-credential-{helper} "
                           f"failed ({reason}); going on without the docker config's credentials, as docker does\n")


def test_build_credentials_gather_every_registry_as_docker_build_sends_them(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The legacy builder's credentials: auths, then every server the credsStore lists, then credHelpers (a
    later one wins); Docker Hub under https://index.docker.io/v1/ whatever the spelling; helpers gitops runs."""
    bindir = tmp_path / "bin"
    install_helper(bindir, "store", 'read server\ncase "$1" in\n'
                   '  list) echo \'{"https://index.docker.io/v1/": "hub", "r.example.com": "store-user"}\' ;;\n'
                   '  get) echo "{\\"Username\\": \\"store-$server\\", \\"Secret\\": \\"store-secret\\"}" ;;\n'
                   'esac\n')
    install_helper(bindir, "ecr",
                   'read server\necho "{\\"Username\\": \\"ecr-$server\\", \\"Secret\\": \\"ecr-secret\\"}"\n')
    install_helper(bindir, "pass", 'cat >/dev/null\necho \'{"Username": "", "Secret": ""}\'\n')  # pass: unknown server
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    env = write_config(tmp_path, {
        "auths": {"r.example.com": {"auth": b64("file:file-pw")}, "plain.example.com": {"auth": b64("p:plain-pw")},
                  "empty.example.com": {}},
        "credsStore": "store",
        "credHelpers": {"ecr.example.com": "ecr", "docker.io": "ecr", "unknown.example.com": "pass"}})
    got = {key: (c.username, c.password) for key, c in registry.build_credentials(env).items()}
    assert got == {"plain.example.com": ("p", "plain-pw"),
                   "r.example.com": ("store-r.example.com", "store-secret"),
                   "https://index.docker.io/v1/": ("ecr-https://index.docker.io/v1/", "ecr-secret"),
                   "ecr.example.com": ("ecr-ecr.example.com", "ecr-secret")}
    assert registry.build_credentials({"DOCKER_CONFIG": str(tmp_path / "none")}) == {}


def test_a_credential_store_whose_list_fails_is_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    bindir = tmp_path / "bin"
    install_helper(bindir, "broken-list", "cat >/dev/null\nprintf 'no \\033[1mD-Bus\\nmore\\n' >&2\nexit 1\n")
    install_helper(bindir, "garbled-list", "cat >/dev/null\necho '[1, 2]'\n")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(registry, "_helper_warned", set())
    for helper, reason in (("broken-list", "no \\x1b[1mD-Bus"), ("garbled-list", "its list is not a JSON object")):
        env = write_config(tmp_path, {"credsStore": helper, "auths": {"r.example.com": {"auth": b64("a:b-pass")}}})
        assert {k: c.username for k, c in registry.build_credentials(env).items()} == {"r.example.com": "a"}
        assert capsys.readouterr().err == (
            f"warning: {tmp_path / 'config.json'}: credential helper docker-credential-{helper} failed ({reason}); "
            "going on without the docker config's credentials, as docker does\n")


def test_a_helper_that_hangs_floods_or_garbles_is_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str],
                                                               secrets_restored) -> None:
    """A helper that never answered was waited for 60 s, then stopped the run (exit 9), for a build as
    well as a look-up; one that wrote without end was read into memory without a limit.  Each is now one
    warning, as a failing helper: no answer within HELPER_TIMEOUT, more than HELPER_OUTPUT_LIMIT (stdout
    or stderr), an answer that is no credentials; and one that hung or flooded is not run again."""
    bindir = tmp_path / "bin"
    runs = tmp_path / "runs"
    install_helper(bindir, "hangs", f"echo run >> {runs}\nexec sleep 30\n")
    install_helper(bindir, "floods", "exec yes credentials\n")
    install_helper(bindir, "floods-stderr", "cat >/dev/null\nyes 'no keychain' | head -c 2000000 >&2\nexit 1\n")
    install_helper(bindir, "long-line", "cat >/dev/null\nprintf '%0500d\\n' 7 >&2\nexit 1\n")
    install_helper(bindir, "long-secret", "cat >/dev/null\nprintf '%0195d sekrit-Pa55-word-xyz\\n' 0 >&2\nexit 1\n")
    output.register_secret("sekrit-Pa55-word-xyz")  # cut at 200 characters after masking, not before
    install_helper(bindir, "garbled", "cat >/dev/null\necho 'Username: me'\n")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(registry, "_helper_warned", set())
    monkeypatch.setattr(registry, "_helpers_given_up", set())
    monkeypatch.setattr(registry, "HELPER_TIMEOUT", 1)
    for helper, reason in [("hangs", "no answer within 1 s"), ("floods", "it wrote more than 1 MiB"),
                           ("floods-stderr", "it wrote more than 1 MiB"), ("long-line", "0" * 200),
                           ("long-secret", "0" * 195 + " ***"),
                           ("garbled", "its answer is not the credential helpers' JSON")]:
        env = write_config(tmp_path, {"credsStore": helper, "auths": {"r.example.com": {"auth": b64("a:b-pass")}}})
        assert registry.docker_config_credentials("r.example.com", env).username == "a"
        assert registry.docker_config_credentials("other.example.com", env) is None
        assert {k: c.username for k, c in registry.build_credentials(env).items()} == {"r.example.com": "a"}
        assert capsys.readouterr().err == (
            f"warning: {tmp_path / 'config.json'}: credential helper docker-credential-{helper} failed ({reason}); "
            "going on without the docker config's credentials, as docker does\n")
    assert runs.read_text() == "run\n"  # given up after its first run: not waited for again


def test_password_never_in_repr_and_registered() -> None:
    c = registry.Credentials("user", "very-secret-pw", "test")
    assert "very-secret-pw" not in repr(c)
    assert output.redact("very-secret-pw") == "***"


def test_read_password_strips_newline() -> None:
    import io

    assert registry.read_password(io.StringIO("pw-from-stdin\r\n")) == "pw-from-stdin"
    with pytest.raises(UsageError, match="nothing was read"):
        registry.read_password(io.StringIO("\n"))
    with pytest.raises(UsageError, match="standard input is closed"):
        registry.read_password(None)  # sys.stdin after `<&-`


@pytest.mark.parametrize("config, host, expected", [
    ({}, "r.example.com", False),
    ({"auths": {"https://r.example.com/v1/": {"auth": base64.b64encode(b"u:p").decode()}}}, "r.example.com", True),
    ({"auths": {"r.example.com": {}}}, "r.example.com", False),  # an entry without credentials
    ({"auths": {"other.example.com": {"auth": base64.b64encode(b"u:p").decode()}}}, "r.example.com", False),
    ({"auths": {"other.example.com": {"auth": base64.b64encode(b"u:p").decode()}}}, None, True),
    ({"credHelpers": {"r.example.com": "ecr-login"}}, "r.example.com", True),
    ({"credHelpers": {"r.example.com": "ecr-login"}}, "docker.io", False),
    ({"credsStore": "desktop"}, "docker.io", True),
    ({"auths": {"index.docker.io": {"identitytoken": "t"}}}, "docker.io", True),
])
def test_has_docker_credentials(tmp_path: Path, config, host, expected) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert registry.has_docker_credentials(host, {"DOCKER_CONFIG": str(tmp_path)}) is expected
    assert registry.has_docker_credentials(host, {"DOCKER_CONFIG": str(tmp_path / "none")}) is False


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_timeout_covers_the_whole_answer(monkeypatch: pytest.MonkeyPatch, tls_files, scheme: str) -> None:
    """A registry answering 200 with a Content-Length, then one byte at a time, held a look-up for as long
    as it liked: the timeout was per read.  Now the whole answer must come within TIMEOUT, over HTTPS too
    (the deadline shut down the request's TCP socket object, which had handed its descriptor over to the
    TLS socket: nothing was cut, and the trickle went on to its end)."""
    import socket
    import ssl

    from tests.fixtures.procs import serving

    body = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + "c" * 64}}).encode()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.server_cert, tls_files.server_key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()
    sent: list[int] = []  # the body's bytes sent

    def head(stream: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = stream.recv(65536)
            if not chunk:
                return b""
            data += chunk
        return data

    def serve(conn: socket.socket) -> None:
        with conn:
            handshake = conn.recv(1, socket.MSG_PEEK) == b"\x16"
            if handshake and scheme == "http":  # the HTTPS attempt: a plain-HTTP server's answer
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                return
            try:
                stream = context.wrap_socket(conn, server_side=True) if handshake else conn
            except (ssl.SSLError, OSError):
                return
            with stream:
                request = head(stream)
                if request.startswith(b"GET /v2/ "):  # the HTTPS attempt (of a TLS registry): any answer
                    stream.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                    return
                if not request:
                    return
                stream.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                               b"Content-Length: %d\r\n\r\n" % len(body))
                for byte in body:
                    if stop.wait(0.2):
                        return
                    stream.sendall(bytes([byte]))
                    sent.append(byte)

    monkeypatch.setattr(registry, "TIMEOUT", 1)
    with serving(listener, serve):
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        try:
            with pytest.raises(RegistryError) as info:
                registry.get_manifest(parse(f"{host}/team/app:1"))
        finally:
            stop.set()
    assert registry.endpoint(host).url == f"{scheme}://{host}"
    assert len(sent) < len(body)  # given up while the answer trickled in, not once it was complete
    assert "no complete answer within 1 s" in info.value.message
    assert "answered in full within 1 s" in (info.value.hint or "")


def test_a_helper_that_prints_its_credentials_and_fails_never_shows_them(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str],
                                                                        secrets_restored) -> None:
    """A helper that printed its JSON answer and exited non-zero had that stdout, its Secret included, in the
    warning.  Its stderr is preferred; a stdout that is credentials is never shown; a credential-looking
    value in the line shown is masked; a Secret seen is masked everywhere from then on."""
    bindir = tmp_path / "bin"
    answer = '{"ServerURL": "r.example.com", "Username": "bot", "Secret": "helper-Secret-123"}'
    install_helper(bindir, "answers-fails", f"cat >/dev/null\necho '{answer}'\nexit 1\n")
    install_helper(bindir, "answers-says", f"cat >/dev/null\necho '{answer}'\necho 'keychain locked' >&2\nexit 1\n")
    install_helper(bindir, "words", "cat >/dev/null\necho 'cannot store Username=bot Secret: tok-Xy9-sekrit' >&2\n"
                                    "exit 1\n")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(registry, "_helper_warned", set())
    for helper, reason in [("answers-fails", "exit status 1; it printed credentials, not shown"),
                           ("answers-says", "keychain locked"),
                           ("words", "cannot store Username=*** Secret: ***")]:
        env = write_config(tmp_path, {"credsStore": helper})
        assert registry.docker_config_credentials("r.example.com", env) is None
        err = capsys.readouterr().err
        assert err == (f"warning: {tmp_path / 'config.json'}: credential helper docker-credential-{helper} failed "
                       f"({reason}); going on without the docker config's credentials, as docker does\n")
    assert output.redact("x helper-Secret-123 y") == "x *** y"  # registered: masked wherever it shows up


def test_a_helper_given_up_is_killed_with_what_it_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A helper killed after its timeout left its children running (a `sleep` reparented to PID 1)."""
    import time

    from tests.fixtures.procs import running

    bindir = tmp_path / "bin"
    child = tmp_path / "child.pid"
    install_helper(bindir, "spawns", f"sleep 3600 >/dev/null 2>&1 &\necho $! > {child}\nexec sleep 60\n")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(registry, "_helper_warned", set())
    monkeypatch.setattr(registry, "_helpers_given_up", set())
    monkeypatch.setattr(registry, "HELPER_TIMEOUT", 1)
    env = write_config(tmp_path, {"credsStore": "spawns"})
    assert registry.docker_config_credentials("r.example.com", env) is None
    assert "no answer within 1 s" in capsys.readouterr().err
    pid = int(child.read_text())
    deadline = time.monotonic() + 30  # SIGKILL was sent: wait for it to take effect, not for a duration
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if running(pid):
        os.kill(pid, 9)
        pytest.fail(f"the helper's child {pid} still ran after the helper was given up")


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
def test_content_is_verified_by_its_digests_algorithm(algorithm: str) -> None:
    body = b'{"config": {}}'
    digest = f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"
    registry.verify_content(body, digest, "http://r/v2/a/blobs/" + digest, "blob")
    registry.verify_content(body, digest.upper().replace(algorithm.upper(), algorithm), "http://r/x", "blob")
    with pytest.raises(registry.DigestMismatchError) as info:
        registry.verify_content(body + b" ", digest, "http://r/v2/a/blobs/" + digest, "blob")
    assert info.value.exit_code == 8
    assert info.value.message == (f"registry error: http://r/v2/a/blobs/{digest} answered a blob whose digest is "
                                  f"{algorithm}:{hashlib.new(algorithm, body + b' ').hexdigest()}, not {digest} "
                                  "as asked")


def test_content_of_an_unknown_digest_algorithm_cannot_be_verified() -> None:
    with pytest.raises(RegistryError, match="unsupported digest algorithm 'blake3'") as info:
        registry.verify_content(b"x", "blake3:" + "a" * 64, "http://r/v2/a/blobs/x", "blob")
    assert info.value.exit_code == 8


def test_retry_pause_honours_retry_after() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    assert registry._retry_pause("3", 0) == 3.0
    assert registry._retry_pause(None, 0) == registry.RETRY_BACKOFF
    assert registry._retry_pause("soon", 2) == registry.RETRY_BACKOFF * 4
    later = registry._retry_pause(format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True), 0)
    assert 20 < later <= 30
    assert registry._retry_pause("Wed, 21 Oct 2015 07:28:00 GMT", 0) == 0.0  # in the past


@pytest.mark.parametrize("body, said", [
    (b'{"errors":[{"code":"DENIED","message":"no way"}]}', "no way"),
    (b'<?xml version="1.0"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>',
     "AccessDenied: Request has expired"),
    (b"<html>\n<body>502 Bad Gateway</body>", "<html>"),
    (b"\x1b[1mplain\nsecond", "\\x1b[1mplain"),
])
def test_what_an_error_answer_says(body: bytes, said: str) -> None:
    assert registry._detail(body) == said


@pytest.mark.parametrize("media_type, data, kind", [
    ("application/vnd.oci.image.index.v1+json", {"manifests": []}, "multi-platform index"),
    ("application/vnd.docker.distribution.manifest.v1+prettyjws", {"schemaVersion": 1}, "schema1 manifest"),
    ("application/json", {"schemaVersion": 1, "fsLayers": []}, "schema1 manifest"),
    ("application/vnd.oci.image.manifest.v1+json", {"config": {"digest": "sha256:" + "c" * 64}}, "image manifest"),
    ("application/vnd.oci.image.manifest.v1+json", {"layers": []}, "image manifest without a config"),
    ("application/vnd.example+json", {}, "manifest of unknown media type 'application/vnd.example+json'"),
])
def test_a_manifest_says_what_it_is(media_type: str, data: dict, kind: str) -> None:
    assert registry.Manifest("sha256:" + "a" * 64, media_type, data).kind == kind
