"""Image references: parse, validate and normalise per the distribution/reference grammar.

The single implementation used by every verb.  Grammar (github.com/distribution/reference, regexp.go):

    reference       := name [ ":" tag ] [ "@" digest ]
    name            := [domain '/'] remote-name
    domain          := host [':' port-number]
    host            := domain-name | IPv4address | '[' IPv6address ']'
    domain-name     := domain-component ['.' domain-component]*
    domain-component:= /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    remote-name     := path-component ['/' path-component]*
    path-component  := alpha-numeric [separator alpha-numeric]*
    alpha-numeric   := /[a-z0-9]+/
    separator       := /[_.]|__|[-]+/
    tag             := /[\\w][\\w.-]{0,127}/
    digest          := algorithm ":" hex   (sha256: 64 hex, sha512: 128 hex, others: 32+ hex)

Normalisation (normalize.go): the first path component is a domain only when it contains '.' or ':',
is 'localhost', or has an uppercase letter; otherwise the domain is docker.io.  'index.docker.io' is
'docker.io', and a single-component docker.io name gets the 'library/' prefix.

Length: the repository path, as normalised, has at most 255 characters; the domain does not count
(reference.go's Parse checks `len(repo.path)`, on the string ParseNormalizedNamed made: `nginx` is
`library/nginx` there).  So a bare name has at most 247 characters, `team/app` 255, and a registry
host comes on top.  distribution/reference counts so since v0.6.0 (the docker CLI 28 does); the older
copy in docker/distribution, which Docker Engine 20.10 uses, counted the whole normalised name
(`docker.io/library/...`), so such an engine also refuses a name whose host and path together exceed
255 characters, in its own words.

The parsed reference remembers the exact spelling of each part, so that callers can change the tag
or digest of a reference while keeping its name exactly as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from gitops_cli.errors import InvalidReferenceError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
NAME_TOTAL_LENGTH_MAX = 255  # reference.go's RepositoryNameTotalLengthMax: of the normalised path

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"

PATH_COMPONENT_RE = re.compile(_PATH_COMPONENT, re.ASCII)
DOMAIN_RE = re.compile(_DOMAIN, re.ASCII)
TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}", re.ASCII)
_KNOWN_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference; `domain` and `path` are exactly as written (domain may be None)."""

    domain: str | None
    path: str
    tag: str | None = None
    digest: str | None = None

    # -- spelling -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The repository name exactly as written (domain included when written)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    # -- normalisation --------------------------------------------------------------------------
    @property
    def normalized_domain(self) -> str:
        if self.domain is None or self.domain == LEGACY_DEFAULT_DOMAIN:
            return DEFAULT_DOMAIN
        return self.domain

    @property
    def normalized_path(self) -> str:
        if self.normalized_domain == DEFAULT_DOMAIN and "/" not in self.path:
            return OFFICIAL_REPO_PREFIX + self.path
        return self.path

    @property
    def normalized_name(self) -> str:
        """Fully qualified repository: `nginx` -> `docker.io/library/nginx`."""
        return f"{self.normalized_domain}/{self.normalized_path}"

    @property
    def familiar_name(self) -> str:
        """Shortest equivalent spelling: `docker.io/library/nginx` -> `nginx`."""
        if self.normalized_domain == DEFAULT_DOMAIN:
            path = self.normalized_path
            return path[len(OFFICIAL_REPO_PREFIX):] if path.startswith(OFFICIAL_REPO_PREFIX) else path
        return self.normalized_name

    def same_repository(self, other: ImageRef) -> bool:
        return self.normalized_name == other.normalized_name

    # -- derived references ---------------------------------------------------------------------
    def with_tag(self, tag: str | None) -> ImageRef:
        if tag is not None:
            validate_tag(tag)
        return replace(self, tag=tag)

    def with_digest(self, digest: str | None) -> ImageRef:
        if digest is not None:
            validate_digest(digest)
        return replace(self, digest=digest)

    def repository_only(self) -> ImageRef:
        return replace(self, tag=None, digest=None)


def split_domain(name: str) -> tuple[str | None, str]:
    """Split a name into (domain as written or None, remainder) like normalize.go's splitDockerDomain."""
    i = name.find("/")
    if i == -1:
        return None, name
    first = name[:i]
    if "." in first or ":" in first or first == "localhost" or first.lower() != first:
        return first, name[i + 1:]
    return None, name


def split_reference(text: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) as written, without validation ('localhost:5000/app' has no tag)."""
    name, digest = text, None
    if "@" in text:
        name, digest = text.split("@", 1)
    tag = None
    # A tag is after the last ':' that follows the last '/': 'localhost:5000/app' has no tag.
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1:]
        # An IPv6 host without a path ('[::1]') is not a tag separator case we accept here.
    return name, tag, digest


def validate_tag(tag: str) -> None:
    if not TAG_RE.fullmatch(tag):
        if len(tag) > 128:
            raise InvalidReferenceError(f"invalid tag {tag[:20]!r}...: longer than 128 characters")
        raise InvalidReferenceError(
            f"invalid tag {tag!r}: must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}",
        )


def validate_digest(digest: str) -> None:
    if not DIGEST_RE.fullmatch(digest):
        raise InvalidReferenceError(f"invalid digest {digest!r}: expected ALGORITHM:HEX, e.g. sha256:<64 hex>")
    algo, hexpart = digest.split(":", 1)
    want = _KNOWN_DIGEST_LENGTHS.get(algo)
    if want is not None and len(hexpart) != want:
        raise InvalidReferenceError(f"invalid digest {digest!r}: {algo} needs {want} hex digits, got {len(hexpart)}")
    if algo in _KNOWN_DIGEST_LENGTHS and hexpart.lower() != hexpart:
        raise InvalidReferenceError(f"invalid digest {digest!r}: hex digits must be lowercase")


def validate_name(name: str) -> tuple[str | None, str]:
    """Check a repository name; return (domain or None, path)."""
    if not name:
        raise InvalidReferenceError("empty image name")
    domain, path = split_domain(name)
    normalized = ImageRef(domain, path).normalized_path
    if len(normalized) > NAME_TOTAL_LENGTH_MAX:  # docker's limit: see the module's docstring
        counted = f" ({OFFICIAL_REPO_PREFIX!r} included, as docker counts it)" if normalized != path else ""
        raise InvalidReferenceError(f"invalid image name {name[:40]!r}...: repository path longer than "
                                    f"{NAME_TOTAL_LENGTH_MAX} characters{counted}")
    if domain is not None and not DOMAIN_RE.fullmatch(domain):
        raise InvalidReferenceError(f"invalid image name {name!r}: bad registry host {domain!r}")
    if not path:
        raise InvalidReferenceError(f"invalid image name {name!r}: no repository after the registry host")
    for component in path.split("/"):
        if not PATH_COMPONENT_RE.fullmatch(component):
            if component.lower() != component and PATH_COMPONENT_RE.fullmatch(component.lower()):
                raise InvalidReferenceError(f"invalid image name {name!r}: repository must be lowercase")
            raise InvalidReferenceError(
                f"invalid image name {name!r}: bad path component {component!r} "
                "(lowercase letters, digits and single '.', '_', '__' or '-' separators)",
            )
    return domain, path


def parse(text: str) -> ImageRef:
    """Parse an image reference, raising InvalidReferenceError with the reason when it is invalid."""
    if text != text.strip() or not text:
        raise InvalidReferenceError(f"invalid image reference {text!r}: empty or surrounded by whitespace")
    name, tag, digest = split_reference(text)
    domain, path = validate_name(name)
    if tag is not None:
        validate_tag(tag)
    if digest is not None:
        validate_digest(digest)
    return ImageRef(domain=domain, path=path, tag=tag, digest=digest)


def try_parse(text: str) -> ImageRef | None:
    try:
        return parse(text)
    except InvalidReferenceError:
        return None


def parse_repository(text: str) -> ImageRef:
    """Parse a name that must carry neither tag nor digest (e.g. `gitops build --image NAME`)."""
    ref = parse(text)
    if ref.tag is not None or ref.digest is not None:
        raise InvalidReferenceError(
            f"invalid image name {text!r}: give the repository without tag or digest",
            hint="the tag comes from --tag or from the commit",
        )
    return ref


def parse_tagged(text: str) -> ImageRef:
    """Parse NAME:TAG[@DIGEST] (the form `gitops bump --image` takes): a tag or digest is required."""
    ref = parse(text)
    if ref.tag is None and ref.digest is None:
        raise InvalidReferenceError(f"invalid image {text!r}: a tag or digest is required (NAME:TAG[@sha256:...])")
    return ref


# Text that something else fills in before the reference is used: `${VAR}` / `$VAR` (envsubst, Flux's postBuild
# substitution, docker compose), `{{ ... }}` (Helm, Go templates), `<NAME>` / `<<NAME>>` (a value left to fill in).
# The one definition: lint's GL006 reports them, bump never overwrites them.
PLACEHOLDER_RE = re.compile(r"\$\{[^}]*\}?|\$[A-Za-z_][A-Za-z0-9_]*|\{\{.*?(?:\}\}|$)|<<?[^<>\s]+>>?")


def placeholders(value: str) -> list[str]:
    """The placeholders written in value (see PLACEHOLDER_RE), in order."""
    return [m.group(0) for m in PLACEHOLDER_RE.finditer(value)]


def templated(value: str) -> tuple[ImageRef, str, str] | None:
    """(the image it names, 'tag' or 'digest', the placeholder) when value names an image in words of its own and
    its tag or digest holds a placeholder (`team/app:${APP_VERSION}`, `team/app:{{ .Values.tag }}`,
    `team/app:${TAG:-v1}`, `team/app@${DIGEST}`); None for a value with none, or with one in its name
    (`${REGISTRY}/team/app:v1`: which image that is, is not written)."""
    found = placeholders(value)
    if not found:
        return None
    name, tag, digest = split_reference(PLACEHOLDER_RE.sub("\0", value))
    image = try_parse(name) if "\0" not in name else None
    if image is None or image.tag is not None or image.digest is not None:
        return None
    return image, "tag" if tag is not None and "\0" in tag else "digest", found[0]


MUTABLE_TAGS = frozenset(
    {
        "latest", "main", "master", "develop", "dev", "trunk", "head", "stable", "edge", "nightly",
        "canary", "snapshot", "staging", "prod", "production", "release", "test",
    }
)


def is_mutable_tag(tag: str, extra: frozenset[str] | set[str] = frozenset()) -> bool:
    """True for `latest` and branch-like tags (any case) and `-SNAPSHOT` suffixes."""
    low = tag.lower()
    return low in MUTABLE_TAGS or low in {t.lower() for t in extra} or low.endswith("-snapshot")
