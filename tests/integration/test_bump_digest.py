"""References pinned by digest: `gitops bump --image NAME:TAG` resolves the new digest from the registry."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gitremotes import make_bare_remote

pytestmark = pytest.mark.integration

OLD = "sha256:" + "0" * 64


def _put_blob(registry_url: str, name: str, data: bytes, headers: dict[str, str], context: Any) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    post = urllib.request.Request(f"{registry_url}/v2/{name}/blobs/uploads/", method="POST", data=b"",
                                  headers=headers)
    with urllib.request.urlopen(post, context=context) as resp:
        location = resp.headers["Location"]
    if location.startswith("/"):
        location = registry_url + location
    sep = "&" if "?" in location else "?"
    put = urllib.request.Request(f"{location}{sep}digest={digest}", method="PUT", data=data,
                                 headers={**headers, "Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(put, context=context) as resp:
        assert resp.status == 201
    return digest


def push_minimal_image(registry_url: str, name: str, tag: str, auth: tuple[str, str] | None = None,
                       context: Any = None, labels: dict[str, str] | None = None) -> str:
    """Upload a tiny OCI image straight through the registry API (as `auth`'s user and password, when
    given: an htpasswd registry; with `context`, an ssl.SSLContext, for https; its config's labels
    `labels`, by default {"tag": tag}); return its manifest digest."""
    import base64

    headers = {"Authorization": "Basic " + base64.b64encode(":".join(auth).encode()).decode()} if auth else {}
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Labels": {"tag": tag} if labels is None else labels}}).encode()
    layer = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00"  # empty gzip
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _put_blob(registry_url, name, config, headers, context), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _put_blob(registry_url, name, layer, headers, context), "size": len(layer)}],
    }).encode()
    req = urllib.request.Request(f"{registry_url}/v2/{name}/manifests/{tag}", method="PUT", data=manifest,
                                 headers={**headers, "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, context=context) as resp:
        assert resp.status == 201
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def test_digest_pinned_references_get_the_registry_digest(tmp_path: Path, registry, gitops) -> None:
    name = f"{registry.host}/team/app"
    digest = push_minimal_image(registry.url, "team/app", "2.0.0")
    files = {
        "deploy.yaml": f"containers:\n  - name: app\n    image: {name}:1.0.0@{OLD}  # pinned\n",
        "by-digest.yaml": f"image: '{name}@{OLD}'\n",
        "tag-only.yaml": f"image: {name}:1.0.0\n",
        "kustomization.yaml": f"images:\n  - name: {name}\n    newTag: 1.0.0\n    digest: {OLD}\n",
    }
    remote = make_bare_remote(tmp_path / "r", files)
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:2.0.0"])
    assert res.returncode == 0, res.stderr
    assert remote.show("deploy.yaml").decode() == (
        f"containers:\n  - name: app\n    image: {name}:2.0.0@{digest}  # pinned\n")
    assert remote.show("by-digest.yaml").decode() == f"image: '{name}@{digest}'\n"
    assert remote.show("tag-only.yaml").decode() == f"image: {name}:2.0.0\n"
    assert remote.show("kustomization.yaml").decode() == (
        f"images:\n  - name: {name}\n    newTag: 2.0.0\n    digest: {digest}\n")


def test_unresolvable_digest_fails_naming_file_and_line_and_changes_nothing(
    tmp_path: Path, registry, gitops
) -> None:
    name = f"{registry.host}/team/app"
    files = {
        "a.yaml": f"image: {name}:1.0.0\n",  # would be fine on its own
        "b.yaml": f"kind: Pod\nspec:\n  containers:\n    - image: {name}:1.0.0@{OLD}\n",
    }
    remote = make_bare_remote(tmp_path / "r", files)
    before = remote.head()
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:9.9.9"])  # tag not in the registry
    assert res.returncode == 13, res.stderr
    assert "b.yaml:4:" in res.stderr and "9.9.9" in res.stderr
    assert remote.head() == before
    # An explicit digest needs no registry at all.
    explicit = "sha256:" + "e" * 64
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{name}:9.9.9@{explicit}"])
    assert res.returncode == 0, res.stderr
    assert remote.show("b.yaml").decode().endswith(f"image: {name}:9.9.9@{explicit}\n")
    assert remote.show("a.yaml").decode() == f"image: {name}:9.9.9\n"


def test_unreachable_registry_is_exit_13_with_its_reason(tmp_path: Path, gitops) -> None:
    """A digest that cannot be resolved is exit 13 (the README's promise), whatever the registry's reason
    (here: nothing listens on 127.0.0.1:1), and the reason is kept in the message."""
    checkout = tmp_path / "deploy"
    checkout.mkdir()
    pinned = f"image: 127.0.0.1:1/team/app:v1@sha256:{'a' * 64}\n"
    (checkout / "app.yaml").write_text(pinned)
    res = gitops(["bump", "--deploy-repo", str(checkout), "--no-commit", "--image", "127.0.0.1:1/team/app:v2"])
    assert res.returncode == 13, res.stderr
    assert "app.yaml:1: needs the digest of 127.0.0.1:1/team/app:v2" in res.stderr
    assert "unreachable" in res.stderr or "refused" in res.stderr
    assert (checkout / "app.yaml").read_text() == pinned
