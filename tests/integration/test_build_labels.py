"""The labels gitops sets and the build inputs it reads, against the real engine and registry: a base
image's labels never pass for the app image's, `--label` never replaces a label the re-run check reads
(a version may be set, and is what a re-run compares), `--build-arg NAME` takes its value from the
environment as `docker build` does, and a context with a lowercase `dockerfile` builds."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.fixtures.gitremotes import DeployRemote, make_bare_remote
from tests.fixtures.services import BASE_IMAGE, TEST_LABEL, TEST_LABEL_VALUE, Registry, git, sample_app
from tests.integration.test_build import BUILDERS, labels_of
from tests.integration.test_pipeline import GITOPS_TOML, PATH, config_labels, deploy_files, run

pytestmark = pytest.mark.integration

REVISION, SOURCE = "org.opencontainers.image.revision", "org.opencontainers.image.source"
VERSION = "org.opencontainers.image.version"
TESTED, INPUTS = "dev.gitops-cli.tested-command", "dev.gitops-cli.build-inputs"
# what an upstream base image (GHCR's, distroless') or a base image built by gitops build-and-bump carries
BASE_LABELS = {REVISION: "0123456789abcdef0123456789abcdef01234567", SOURCE: "https://github.com/upstream/base",
               TESTED: "make base-test", INPUTS: "dockerfile=0123456789abcdef"}


@pytest.fixture
def remote(tmp_path: Path, registry: Registry) -> DeployRemote:
    return make_bare_remote(tmp_path / "remotes", deploy_files(registry.image(PATH)))


@pytest.fixture(scope="module")
def labelled_base(docker_engine, base_image: str) -> str:
    """A base image carrying BASE_LABELS (removed with the session's images: it has the test label)."""
    tag = f"gitops-test/labelled-base:{TEST_LABEL_VALUE}"
    labels = " ".join(f'"{k}"="{v}"' for k, v in {**BASE_LABELS, TEST_LABEL: TEST_LABEL_VALUE}.items())
    dockerfile = f"FROM {base_image}\nLABEL {labels}\n".encode()
    for chunk in docker_engine.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True, decode=True):
        assert "error" not in chunk, chunk
    return tag


def on_base(path: Path, base: str) -> Path:
    """The sample app built FROM `base`, no origin remote, with gitops.toml (GITOPS_TOML)."""
    dockerfile = f"FROM {base}\nLABEL {TEST_LABEL}={TEST_LABEL_VALUE}\nCOPY app.sh test.sh /app/\n"
    return sample_app(path, dockerfile=dockerfile, extra_files={"gitops.toml": GITOPS_TOML})


@BUILDERS
def test_a_base_images_labels_are_never_the_apps(gitops, tmp_path: Path, labelled_base: str, registry: Registry,
                                                 remote: DeployRemote, docker_engine, builder) -> None:
    """gitops sets every label it owns, to "" when it has no value: a clean build in a checkout without
    an origin remote has an empty source, `gitops build` empty build-and-bump labels, and a dirty build an
    empty revision, so that a re-run of the same uncommitted state finds its image by its tag (it was
    exit 6, "already has this tag for revision <the base's>")."""
    app = on_base(tmp_path / "app", labelled_base)
    sha = git(app, "rev-parse", "HEAD")
    res = gitops(["build", "--image", "gitops-test/app"], cwd=app, env=builder)
    assert res.returncode == 0, res.stderr
    labels = labels_of(docker_engine, res.stdout.splitlines()[0])
    assert labels[REVISION] == sha and labels[VERSION] == sha[:7]
    assert labels[SOURCE] == labels[TESTED] == labels[INPUTS] == ""

    (app / "wip.txt").write_text("uncommitted\n")
    image = registry.image(PATH)
    first = run(gitops, app, image, remote, "--allow-dirty", "-o", "json", env=builder)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["built"] and "-dirty-" in data["tag"]
    labels = config_labels(registry, data["tag"])
    assert labels[REVISION] == labels[SOURCE] == "" and labels[VERSION] == data["tag"]
    assert labels[TESTED] == "make test" and labels[INPUTS] != BASE_LABELS[INPUTS]
    again = run(gitops, app, image, remote, "--allow-dirty", "-o", "json", env=builder)
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert rerun["tag"] == data["tag"] and not rerun["built"] and rerun["digest"] == data["digest"]


def test_an_image_gitops_build_published_is_judged_by_its_revision(gitops, tmp_path: Path, labelled_base: str,
                                                                   registry: Registry, remote: DeployRemote) -> None:
    """`gitops build` + `gitops publish` FROM a base that build-and-bump made: the image records no test
    command and no build inputs (empty), so build-and-bump runs the tests and takes the image for this
    commit's, instead of skipping the tests on the base's record, or refusing the base's build inputs."""
    app = on_base(tmp_path / "app", labelled_base)
    image = registry.image(PATH)
    built = gitops(["build", "--image", image], cwd=app)
    assert built.returncode == 0, built.stderr
    published = gitops(["publish", "--image", built.stdout.splitlines()[0]], cwd=app)
    assert published.returncode == 0, published.stderr
    ran = tmp_path / "ran.txt"
    res = run(gitops, app, image, remote, "--test-command", f"echo ran > {ran}", "-o", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert ran.exists() and not data["built"] and data["deploy_commit"]


def test_a_version_label_is_the_users_and_a_rerun_compares_it(gitops, tmp_path: Path, base_image: str,
                                                              registry: Registry, remote: DeployRemote) -> None:
    """`--label org.opencontainers.image.version=1.2.3` (the packaged software's version) replaces the
    tag there; a re-run with it skips build and push, also with --no-cache (a fresh runner: it was
    rebuilt, then refused at publish), and another version for the same commit is exit 6 before any work."""
    app = sample_app(tmp_path / "app", extra_files={"gitops.toml": GITOPS_TOML})
    image, version = registry.image(PATH), f"{VERSION}=1.2.3"
    first = run(gitops, app, image, remote, "--label", version, "-o", "json")
    assert first.returncode == 0, first.stderr
    tag = json.loads(first.stdout)["tag"]
    assert config_labels(registry, tag)[VERSION] == "1.2.3"
    for extra in ([], ["--no-cache"]):
        again = run(gitops, app, image, remote, "--label", version, *extra, "-o", "json")
        assert again.returncode == 0, again.stderr
        assert not json.loads(again.stdout)["built"], extra
    other = run(gitops, app, image, remote, "--label", f"{VERSION}=1.2.4")
    assert other.returncode == 6, other.stderr
    assert "differs: version label '1.2.3', this run's '1.2.4'" in other.stderr
    assert "Building" not in other.stderr


@pytest.mark.parametrize("verb", ["build", "build-and-bump"])
def test_a_label_gitops_sets_is_refused_naming_it(gitops, tmp_path: Path, base_image: str, registry: Registry,
                                                  remote: DeployRemote, verb: str) -> None:
    app = sample_app(tmp_path / "app", extra_files={
        "gitops.toml": GITOPS_TOML + 'labels = ["org.opencontainers.image.created=2020-01-01T00:00:00Z"]\n'})
    args = ["build", "--image", registry.image(PATH)] if verb == "build" else [
        "build-and-bump", "--image", registry.image(PATH), "--deploy-repo", remote.url]
    res = gitops(args, cwd=app)
    assert res.returncode == 2, res.stderr
    assert (f"error: {app / 'gitops.toml'}: labels entry 'org.opencontainers.image.created=2020-01-01T00:00:00Z': "
            "gitops sets the label org.opencontainers.image.created itself: it is the commit time "
            "(SOURCE_DATE_EPOCH sets another)") in res.stderr
    assert "Building" not in res.stderr and not (app / "build-output.txt").exists()


TOKEN = "s3cret-from-the-environment"
ARG_DOCKERFILE = f"""FROM {BASE_IMAGE}
LABEL {TEST_LABEL}={TEST_LABEL_VALUE}
ARG TOKEN=the-default
RUN echo "token: $TOKEN" > /token.txt && cat /token.txt
LABEL probe=$TOKEN
"""


@BUILDERS
def test_a_build_arg_without_value_takes_the_environments_masked(gitops, tmp_path: Path, base_image: str,
                                                                  docker_engine, builder) -> None:
    """`--build-arg TOKEN` as `docker build` reads it: TOKEN's value from the environment, masked in
    every output (the form keeps a secret off the command line); unset, the Dockerfile's default."""
    app = sample_app(tmp_path / "app", dockerfile=ARG_DOCKERFILE)
    res = gitops(["build", "--image", "gitops-test/app", "--build-arg", "TOKEN", "--no-cache"], cwd=app,
                 env={**builder, "TOKEN": TOKEN})
    assert res.returncode == 0, res.stderr
    assert labels_of(docker_engine, res.stdout.splitlines()[0])["probe"] == TOKEN
    assert TOKEN not in res.stdout + res.stderr and "token: ***" in res.stderr
    unset = gitops(["build", "--image", "gitops-test/app", "--build-arg", "TOKEN"], cwd=app, env=builder)
    assert unset.returncode == 0, unset.stderr
    assert labels_of(docker_engine, unset.stdout.splitlines()[0])["probe"] == "the-default"


@BUILDERS
def test_a_context_with_a_lowercase_dockerfile_builds_from_it(gitops, tmp_path: Path, base_image: str,
                                                              docker_engine, builder) -> None:
    """As `docker build`: no `Dockerfile`, but a `dockerfile`: that one (it was exit 2, "no such file")."""
    app = sample_app(tmp_path / "app", dockerfile="")
    (app / "Dockerfile").rename(app / "dockerfile")
    (app / "dockerfile").write_text(f"FROM {base_image}\nLABEL {TEST_LABEL}={TEST_LABEL_VALUE} lower=yes\n")
    git(app, "add", "-A")
    git(app, "commit", "-q", "-m", "lowercase dockerfile")
    res = gitops(["build", "--image", "gitops-test/app"], cwd=app, env=builder)
    assert res.returncode == 0, res.stderr
    assert labels_of(docker_engine, res.stdout.splitlines()[0])["lower"] == "yes"
