"""A registry that misbehaves, as broken caches, proxies, load balancers and blob storages do, in front of a
real `docker-registry` (tests/fixtures/registry_proxy.py: faulty_registry): content that is not what its
digest says, redirects to a storage that refuses, redirect chains, answers cut short, malformed digest
headers, schema1 manifests, transient errors.  Retries are counted by the requests the proxy saw, never
timed."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.gitremotes import DeployRemote, make_bare_remote
from tests.fixtures.registry_proxy import FaultyRegistry, Rule, faulty_registry
from tests.fixtures.services import AUTH_PASSWORD, AUTH_USER, Registry, git, sample_app
from tests.integration.test_bump_digest import push_minimal_image
from tests.integration.test_pipeline import GITOPS_TOML, PATH, _put_index, deploy_files, run, steps

pytestmark = pytest.mark.integration

REVISION = "org.opencontainers.image.revision"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def app(tmp_path: Path, base_image: str) -> Path:
    return sample_app(tmp_path / "app", extra_files={"gitops.toml": GITOPS_TOML})


@pytest.fixture
def faulty(registry: Registry) -> Iterator[FaultyRegistry]:
    with faulty_registry(registry.host) as proxy:
        yield proxy


@pytest.fixture
def remote(tmp_path: Path, faulty: FaultyRegistry) -> DeployRemote:
    return make_bare_remote(tmp_path / "remotes", deploy_files(f"{faulty.host}/{PATH}"))


def _manifest(reg: Registry, reference: str, auth: str | None = None) -> tuple[str, dict]:
    """(digest, manifest) of PATH:reference, read from the registry itself."""
    headers = {"Accept": OCI_MANIFEST + ", application/vnd.docker.distribution.manifest.v2+json"}
    if auth:
        headers["Authorization"] = auth
    req = urllib.request.Request(f"{reg.url}/v2/{PATH}/manifests/{reference}", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return "sha256:" + hashlib.sha256(body).hexdigest(), json.loads(body)


def _config_of(labels: dict[str, str]) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                       "config": {"Labels": labels}}).encode()


# --- content read by digest is verified -------------------------------------------------------------------
def test_a_config_blob_that_is_not_its_digest_stops_the_run_before_any_work(gitops, app: Path, registry: Registry,
                                                                             faulty: FaultyRegistry,
                                                                             remote: DeployRemote) -> None:
    """A cache answering the config blob's GET with another image's config (one recording this commit) was
    trusted: the re-run check took another commit's image for this one, skipped the build and bumped it."""
    image = f"{faulty.host}/{PATH}"
    sha = git(app, "rev-parse", "HEAD")
    push_minimal_image(registry.url, PATH, "release-1", labels={REVISION: "f" * 40})
    config = _manifest(registry, "release-1")[1]["config"]["digest"]
    forged = _config_of({REVISION: sha})
    faulty.rules.append(Rule("body", method="GET", path=r"/blobs/", body=forged))
    res = run(gitops, app, image, remote, "--tag", "release-1", "-o", "json")
    assert res.returncode == 8, res.stderr
    assert (f"error: registry error: http://{faulty.host}/v2/{PATH}/blobs/{config} answered a blob whose digest is "
            f"sha256:{hashlib.sha256(forged).hexdigest()}, not {config} as asked\n") in res.stderr
    assert "hint: a broken cache, proxy or CDN in front of the registry" in res.stderr
    data = json.loads(res.stdout)
    assert steps(data)["tag"] == "failed" and steps(data)["test"] == "not run" and data["digest"] is None
    assert "running sample tests" not in res.stderr and len(remote.log()) == 1


def test_a_manifest_read_by_digest_that_is_not_its_digest_is_a_registry_error(gitops, app: Path,
                                                                               registry: Registry,
                                                                               faulty: FaultyRegistry,
                                                                               remote: DeployRemote) -> None:
    """The platform image of an index under the tag is read by digest (to name its revision): another
    manifest in its place was taken as it is, and its image's revision named."""
    image = f"{faulty.host}/{PATH}"
    plain = push_minimal_image(registry.url, PATH, "amd64", labels={REVISION: "f" * 40})
    other = push_minimal_image(registry.url, PATH, "other", labels={REVISION: "e" * 40})
    _put_index(registry, "release-1", [plain])
    faulty.rules.append(Rule("body", method="GET", path=f"/manifests/{plain}",
                             body=json.dumps(_manifest(registry, other)[1]).encode(),
                             headers={"Content-Type": OCI_MANIFEST}))
    res = run(gitops, app, image, remote, "--tag", "release-1")
    assert res.returncode == 8, res.stderr
    assert f"error: registry error: http://{faulty.host}/v2/{PATH}/manifests/{plain} answered a manifest whose " \
           f"digest is sha256:" in res.stderr and f", not {plain} as asked\n" in res.stderr
    assert "e" * 40 not in res.stderr and "running sample tests" not in res.stderr


# --- what the tag holds, named -------------------------------------------------------------------------------
@pytest.mark.parametrize("body, content_type, named", [
    ({"schemaVersion": 1, "name": PATH, "tag": "release-1", "architecture": "amd64",
      "fsLayers": [{"blobSum": "sha256:" + "a" * 64}], "history": [{"v1Compatibility": "{}"}], "signatures": []},
     "application/vnd.docker.distribution.manifest.v1+prettyjws", "a schema1 manifest"),
    ({"schemaVersion": 2, "mediaType": "application/vnd.example.thing.v1+json", "layers": []},
     "application/vnd.example.thing.v1+json",
     "a manifest of unknown media type 'application/vnd.example.thing.v1+json'"),
])
def test_a_tag_that_holds_no_image_is_refused_before_any_work_and_named(gitops, app: Path, registry: Registry,
                                                                        faulty: FaultyRegistry, remote: DeployRemote,
                                                                        body: dict, content_type: str,
                                                                        named: str) -> None:
    """A schema1 manifest (or any without a config) under the tag let the tests and the build run; publish
    then refused it, calling it a "multi-platform index"."""
    image = f"{faulty.host}/{PATH}"
    push_minimal_image(registry.url, PATH, "release-1")
    raw = json.dumps(body).encode()
    faulty.rules.append(Rule("body", method="GET", path=r"/manifests/release-1", body=raw,
                             headers={"Content-Type": content_type}))
    res = run(gitops, app, image, remote, "--tag", "release-1")
    assert res.returncode == 6, res.stderr
    assert (f"error: refusing to build {image}:release-1: the registry already has this tag as {named} "
            f"(sha256:{hashlib.sha256(raw).hexdigest()}), not an image gitops builds (it has no image config)\n"
            in res.stderr)
    assert "multi-platform" not in res.stderr
    assert "running sample tests" not in res.stderr and "test     not run" in res.stderr


# --- redirects --------------------------------------------------------------------------------------------
S3_EXPIRED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Request has '
              b'expired</Message><Expires>2020-01-01T00:00:00Z</Expires></Error>')


def test_a_storage_that_refuses_the_registrys_redirect_is_named_not_the_login(gitops, app: Path,
                                                                              registry: Registry,
                                                                              faulty: FaultyRegistry,
                                                                              remote: DeployRemote) -> None:
    """A blob download redirected to S3 whose presigned link expired (403 from S3) was "access denied for
    user ...: check the username and password" (exit 9): the registry's credentials were fine."""
    image = f"{faulty.host}/{PATH}"
    push_minimal_image(registry.url, PATH, "release-1", labels={REVISION: git(app, "rev-parse", "HEAD")})
    config = _manifest(registry, "release-1")[1]["config"]["digest"]
    faulty.rules += [Rule("redirect", method="GET", path=r"/blobs/", to="{storage}/bucket{path}?X-Amz-Signature=s1gn"),
                     Rule("status", on="storage", path=r"^/bucket/", status=403, body=S3_EXPIRED)]
    res = run(gitops, app, image, remote, "--tag", "release-1")
    assert res.returncode == 8, res.stderr
    assert (f"error: registry error: GET http://{faulty.host}/v2/{PATH}/blobs/{config} was redirected to "
            f"http://{faulty.storage}/bucket/v2/{PATH}/blobs/{config}?..., which answered 403: AccessDenied: "
            "Request has expired\n") in res.stderr
    assert f"hint: {faulty.storage} is where the registry sends this download" in res.stderr
    assert "username" not in res.stderr and "s1gn" not in res.stderr


def test_a_redirect_chain_is_followed_without_the_credentials_leaving_the_registry(gitops, app: Path, tmp_path: Path,
                                                                                    auth_registry: Registry) -> None:
    """Only one redirect was followed: the second 307 went through as the blob ("is not JSON").  Now up to
    10 are (as Go's client), the Authorization sent to the registry's own host only; an 11th is an error."""
    basic = "Basic " + base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()
    sha = git(app, "rev-parse", "HEAD")
    push_minimal_image(auth_registry.url, PATH, "release-1", auth=(AUTH_USER, AUTH_PASSWORD), labels={REVISION: sha})
    with faulty_registry(auth_registry.host) as faulty:
        faulty.storage_auth = basic
        image = f"{faulty.host}/{PATH}"
        remote = make_bare_remote(tmp_path / "remotes", deploy_files(image))
        faulty.rules += [Rule("redirect", method="GET", path=r"/blobs/", times=1, to="{registry}{path}"),
                         Rule("redirect", method="GET", path=r"/blobs/", to="{storage}{path}")]
        args = ["--tag", "release-1", "--username", AUTH_USER, "--password-stdin", "-o", "json"]
        res = gitops(["build-and-bump", "--image", image, "--deploy-repo", remote.url, *args], cwd=app,
                     input=AUTH_PASSWORD)
        assert res.returncode == 0, res.stderr
        data = json.loads(res.stdout)
        assert steps(data)["build"] == "skipped" and data["digest"] == _manifest(auth_registry, "release-1", basic)[0]
        assert remote.show("apps/app/kustomization.yaml").decode().count("release-1") == 1
        hops = [(s.face, s.authorization) for s in faulty.seen if "/blobs/" in s.path]
        assert hops == [("registry", True), ("registry", True), ("storage", False)], faulty.seen

        faulty.rules = [Rule("redirect", method="GET", path=r"/blobs/", to="{registry}{path}")]  # never ends
        faulty.seen.clear()
        res = gitops(["build-and-bump", "--image", image, "--deploy-repo", remote.url, *args], cwd=app,
                     input=AUTH_PASSWORD)
        assert res.returncode == 8, res.stderr
        assert f"/v2/{PATH}/blobs/sha256:" in res.stderr and " answered 307 after 10 redirects\n" in res.stderr
        assert faulty.requests("GET", "/blobs/") == 11
        assert AUTH_PASSWORD not in res.stdout + res.stderr


# --- answers cut short, malformed headers -----------------------------------------------------------------
def test_an_answer_cut_short_is_a_broken_connection_not_an_unreachable_registry(gitops, app: Path,
                                                                                registry: Registry,
                                                                                faulty: FaultyRegistry,
                                                                                remote: DeployRemote) -> None:
    """A truncated answer was "registry unreachable" with "is the registry running and the host:port right?"
    and the TLS failure of the HTTPS attempt of a plain-HTTP registry that had answered."""
    image = f"{faulty.host}/{PATH}"
    push_minimal_image(registry.url, PATH, "release-1")
    faulty.rules.append(Rule("truncate", method="GET", path=r"/manifests/release-1"))
    res = run(gitops, app, image, remote, "--tag", "release-1")
    assert res.returncode == 8, res.stderr
    assert (f"error: registry error: GET http://{faulty.host}/v2/{PATH}/manifests/release-1: the connection broke "
            "while reading the answer (IncompleteRead(") in res.stderr
    assert "hint: the registry (or a proxy or load balancer in front of it) closed the connection" in res.stderr
    assert "unreachable" not in res.stderr and "tried first" not in res.stderr and "host:port" not in res.stderr


def _published(gitops, app: Path, image: str) -> str:
    res = gitops(["build", "--image", image], cwd=app)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()[0]


def test_a_malformed_digest_header_is_a_registry_error(gitops, app: Path, faulty: FaultyRegistry) -> None:
    """A Docker-Content-Digest that is no digest was taken as the tag's digest: exit 2, "invalid digest"."""
    ref = _published(gitops, app, f"{faulty.host}/{PATH}")
    faulty.rules.append(Rule("digest", method="HEAD", path=r"/manifests/", headers={"digest": "sha256:not\x1bhex"}))
    res = gitops(["publish", "--image", ref], cwd=app)
    assert res.returncode == 8, res.stderr
    assert (f"but could not check that the tag names it: registry error: HEAD http://{faulty.host}/v2/{PATH}/"
            f"manifests/{ref.rsplit(':', 1)[1]} answered a Docker-Content-Digest that is no valid digest: "
            "'sha256:not\\x1bhex'\n") in res.stderr
    assert "invalid digest" not in res.stderr


# --- transient errors -------------------------------------------------------------------------------------
def test_transient_errors_are_retried_then_reported_with_the_count(gitops, tmp_path: Path, registry: Registry,
                                                                   faulty: FaultyRegistry) -> None:
    """429 and 502/503/504 failed the look-up at once.  A GET or HEAD is now sent again (Retry-After
    honoured), up to 3 times."""
    name = f"{faulty.host}/{PATH}"
    d1 = push_minimal_image(registry.url, PATH, "v1")
    d2 = push_minimal_image(registry.url, PATH, "v2")
    remote = make_bare_remote(tmp_path / "r", {"app.yaml": f"image: {name}:v1@{d1}\n"})
    faulty.rules += [Rule("status", method="HEAD", path=r"/manifests/v2", times=1, status=429,
                          headers={"Retry-After": "1"}, body=b'{"errors":[{"code":"TOOMANYREQUESTS"}]}'),
                     Rule("status", method="HEAD", path=r"/manifests/v2", times=1, status=503)]
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:v2", "--dry-run"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"+image: {name}:v2@{d2}" in res.stdout
    assert faulty.requests("HEAD", r"/manifests/v2") == 3

    faulty.rules = [Rule("status", method="HEAD", path=r"/manifests/v2", status=502, body=b"Bad Gateway\n")]
    faulty.seen.clear()
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:v2", "--dry-run"], cwd=tmp_path)
    assert res.returncode == 13, res.stderr
    assert f"HEAD http://{faulty.host}/v2/{PATH}/manifests/v2 answered 502 (sent 4 times)" in res.stderr
    assert faulty.requests("HEAD", r"/manifests/v2") == 4


def test_a_push_whose_read_back_fails_is_reported_as_pushed_and_nothing_is_bumped(gitops, app: Path,
                                                                                   registry: Registry,
                                                                                   faulty: FaultyRegistry,
                                                                                   remote: DeployRemote) -> None:
    """The push went through but the read-back failed: the JSON said "pushed": false, "digest": null."""
    image = f"{faulty.host}/{PATH}"
    faulty.rules.append(Rule("status", method="HEAD", path=r"/manifests/", status=500,
                             body=b'{"errors":[{"code":"UNKNOWN","message":"storage broke"}]}'))
    res = run(gitops, app, image, remote, "-o", "json")
    assert res.returncode == 8, res.stderr
    assert "but could not check that the tag names it: registry error: HEAD " in res.stderr
    data = json.loads(res.stdout)
    assert data["pushed"] is True and data["failed_step"] == "publish" and steps(data)["bump"] == "not run"
    assert data["digest"] == _manifest(registry, data["tag"])[0]
    assert len(remote.log()) == 1
