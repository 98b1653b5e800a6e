"""The image reference grammar (distribution/reference) and normalisation."""

from __future__ import annotations

import re

import pytest

from gitops_cli.errors import InvalidReferenceError
from gitops_cli.imageref import (
    ImageRef,
    is_mutable_tag,
    parse,
    parse_repository,
    parse_tagged,
    split_domain,
    try_parse,
    validate_digest,
    validate_tag,
)

SHA = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "text, domain, path, tag, digest",
    [
        ("nginx", None, "nginx", None, None),
        ("nginx:1.25", None, "nginx", "1.25", None),
        ("library/nginx:latest", None, "library/nginx", "latest", None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/app", "localhost:5000", "app", None, None),
        ("localhost:5000/app:1", "localhost:5000", "app", "1", None),
        ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
        ("[::1]/app", "[::1]", "app", None, None),
        ("127.0.0.1:5000/team/app:3f2a9c1", "127.0.0.1:5000", "team/app", "3f2a9c1", None),
        ("registry.example.com/a/b/c:v1.2.3-rc_1", "registry.example.com", "a/b/c", "v1.2.3-rc_1", None),
        (f"ghcr.io/org/app@{SHA}", "ghcr.io", "org/app", None, SHA),
        (f"ghcr.io/org/app:1.0@{SHA}", "ghcr.io", "org/app", "1.0", SHA),
        ("my-registry:443/x__y/a.b-c:T_AG", "my-registry:443", "x__y/a.b-c", "T_AG", None),
        ("Example.COM/app", "Example.COM", "app", None, None),
    ],
)
def test_parse_valid(text: str, domain, path, tag, digest) -> None:
    ref = parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == text  # spelling preserved


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty"),
        (" nginx", "whitespace"),
        ("Nginx", "must be lowercase"),
        ("team/App", "lowercase"),
        ("registry.example.com/Team/app", "lowercase"),
        ("app:" + "a" * 129, "longer than 128"),
        ("app:-leading", "invalid tag"),
        ("app:has/slash", "invalid"),
        ("app@sha256:abc", "invalid digest"),
        ("app@sha256:" + "A" * 64, "lowercase"),
        ("app@sha256:" + "a" * 63, "needs 64"),
        ("app@sha512:" + "a" * 64, "needs 128"),
        ("a//b", "bad path component"),
        ("app/", "bad path component"),
        ("localhost:5000/", "no repository"),
        ("-bad.example.com/app", "invalid"),
        ("a" * 256, "longer than 255"),
        ("app__-x", "bad path component"),
    ],
)
def test_parse_invalid(text: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError, match=reason):
        parse(text)
    assert try_parse(text) is None


def test_grammar_boundaries_as_distribution_reference() -> None:
    """Where distribution/reference (regexp.go, normalize.go) draws its lines, gitops draws them too."""
    # a first component with an uppercase letter is a registry host (splitDockerDomain), never docker.io
    ref = parse("MyRegistry/team/app:1")
    assert (ref.domain, ref.path, ref.normalized_name) == ("MyRegistry", "team/app", "MyRegistry/team/app")
    assert split_domain("Host/app") == ("Host", "app")
    # a separator is '.', '_', '__' or any run of '-'
    assert parse("team/my--app:1").path == "team/my--app" and parse("a---b").path == "a---b"
    for bad in ("team/app-", "team/-app", "team/a___b", "team/a..b"):
        with pytest.raises(InvalidReferenceError, match="bad path component"):
            parse(bad)
    # a known algorithm's digest has exactly its length, never more
    for algo, hexdigits in (("sha256", 64), ("sha384", 96), ("sha512", 128)):
        validate_digest(f"{algo}:" + "a" * hexdigits)
        with pytest.raises(InvalidReferenceError, match=f"{algo} needs {hexdigits} hex digits, got {hexdigits + 1}"):
            parse(f"app@{algo}:" + "a" * (hexdigits + 1))


@pytest.mark.parametrize(("prefix", "counted"), [
    ("", "library/"), ("docker.io/", "library/"), ("index.docker.io/", "library/"), ("team/", "team/"),
    ("docker.io/team/", "team/"), ("registry.example.com/team/", "team/"), ("localhost:5000/", ""),
])
@pytest.mark.parametrize("length", [254, 255, 256])
def test_the_255_character_limit_is_on_the_normalised_path_as_docker_counts_it(prefix: str, counted: str,
                                                                                length: int) -> None:
    """reference.go's Parse checks len(path) <= 255 on what ParseNormalizedNamed made of the name: the
    registry host does not count, the implicit `library/` does (the docker CLI 28 refuses to tag a bare
    name of 248 characters and takes `registry.example.com/team/` + 250, a path of 255).  gitops counted
    the name as written: a bare name of 248-255 characters passed, and a registry host took characters
    from the path."""
    name = prefix + "a" * (length - len(counted))
    if length <= 255:
        ref = parse(f"{name}:1@{SHA}")
        assert ref.name == name and ref.normalized_path == counted + name[len(prefix):]
        assert len(ref.normalized_path) == length
    else:
        message = "repository path longer than 255 characters" + (" ('library/' included" if counted == "library/"
                                                                   else "")
        with pytest.raises(InvalidReferenceError, match=re.escape(message)):
            parse(name)


def test_tag_boundaries() -> None:
    validate_tag("a" * 128)
    validate_tag("_x")
    validate_tag("1.0")
    with pytest.raises(InvalidReferenceError):
        validate_tag(".x")
    with pytest.raises(InvalidReferenceError):
        validate_tag("")
    with pytest.raises(InvalidReferenceError):
        validate_tag("tag with space")
    with pytest.raises(InvalidReferenceError):
        validate_tag("é")  # \w is ASCII-only in the grammar


def test_digest_algorithms() -> None:
    validate_digest("sha512:" + "a" * 128)
    validate_digest("blake3:" + "a" * 32)  # unknown algorithms: 32+ hex
    with pytest.raises(InvalidReferenceError):
        validate_digest("blake3:" + "a" * 31)
    with pytest.raises(InvalidReferenceError):
        validate_digest("sha256-" + "a" * 64)


@pytest.mark.parametrize(
    "text, normalized, familiar",
    [
        ("nginx", "docker.io/library/nginx", "nginx"),
        ("library/nginx", "docker.io/library/nginx", "nginx"),
        ("docker.io/nginx", "docker.io/library/nginx", "nginx"),
        ("index.docker.io/library/nginx", "docker.io/library/nginx", "nginx"),
        ("team/app", "docker.io/team/app", "team/app"),
        ("docker.io/team/app", "docker.io/team/app", "team/app"),
        ("localhost:5000/app", "localhost:5000/app", "localhost:5000/app"),
        ("[::1]:5000/app", "[::1]:5000/app", "[::1]:5000/app"),
        ("ghcr.io/org/app", "ghcr.io/org/app", "ghcr.io/org/app"),
    ],
)
def test_normalisation(text: str, normalized: str, familiar: str) -> None:
    ref = parse(text)
    assert ref.normalized_name == normalized
    assert ref.familiar_name == familiar


def test_same_repository_ignores_spelling_tag_and_digest() -> None:
    assert parse("nginx:1").same_repository(parse(f"docker.io/library/nginx@{SHA}"))
    assert parse("index.docker.io/team/app").same_repository(parse("team/app:2"))
    assert not parse("localhost:5000/app").same_repository(parse("localhost:5001/app"))
    assert not parse("team/app").same_repository(parse("ghcr.io/team/app"))


def test_split_domain_rules() -> None:
    assert split_domain("team/app") == (None, "team/app")
    assert split_domain("localhost/app") == ("localhost", "app")
    assert split_domain("host.tld/app") == ("host.tld", "app")
    assert split_domain("host:80/app") == ("host:80", "app")
    assert split_domain("app") == (None, "app")


def test_with_tag_and_digest_keep_spelling() -> None:
    ref = parse("docker.io/team/app:old")
    assert str(ref.with_tag("new")) == "docker.io/team/app:new"
    assert str(ref.with_digest(SHA)) == f"docker.io/team/app:old@{SHA}"
    assert str(ref.repository_only()) == "docker.io/team/app"
    with pytest.raises(InvalidReferenceError):
        ref.with_tag("bad tag")
    with pytest.raises(InvalidReferenceError):
        ref.with_digest("sha256:xyz")


def test_parse_repository_and_tagged() -> None:
    assert parse_repository("127.0.0.1:5000/app") == ImageRef("127.0.0.1:5000", "app")
    with pytest.raises(InvalidReferenceError, match="without tag"):
        parse_repository("app:1")
    with pytest.raises(InvalidReferenceError, match="without tag"):
        parse_repository(f"app@{SHA}")
    assert parse_tagged("localhost:5000/app:1").tag == "1"
    assert parse_tagged(f"app@{SHA}").digest == SHA
    with pytest.raises(InvalidReferenceError, match="tag or digest is required"):
        parse_tagged("localhost:5000/app")


@pytest.mark.parametrize("tag", ["latest", "LATEST", "main", "master", "dev", "develop", "stable",
                                 "nightly", "1.0-SNAPSHOT"])
def test_mutable_tags(tag: str) -> None:
    assert is_mutable_tag(tag)


@pytest.mark.parametrize("tag", ["3f2a9c1", "v1.2.3", "release-2024-01", "main-3f2a9c1", "latest2"])
def test_immutable_tags(tag: str) -> None:
    assert not is_mutable_tag(tag)


def test_mutable_tags_extra() -> None:
    assert is_mutable_tag("qa", extra={"QA"})
    assert not is_mutable_tag("qa")
