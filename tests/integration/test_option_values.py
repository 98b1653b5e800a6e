"""Values that say nothing or that the engine refuses, end to end: an empty value is refused (exit 2, naming
the flag, variable or file) before any work, never taken as "not given", "the whole deploy repo" or "the
current directory"; an image reference the container engine refuses is exit 2 before any work, not an
internal error (publish), a failed build (exit 5) or a test command that could not start (exit 14); and
`rollback` takes the `image` setting as the other verbs do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.gitremotes import DeployRemote, git
from tests.fixtures.services import sample_app

pytestmark = pytest.mark.integration

API = "registry.example.com/team/api"


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("error:", "hint:"))]


@pytest.mark.parametrize(("args", "env", "config", "expected"), [
    (["--path", ""], {}, None, "error: --path '': empty value; give a value, or leave the option out"),
    (["--path=", "--path", "apps/api"], {}, None, "error: --path '': empty value"),
    ([], {"GITOPS_PATHS": ","}, None, "error: GITOPS_PATHS=',': no entry, only commas and blanks"),
    ([], {}, 'paths = [""]\n', "error: {config}: paths entry '': empty value; give a value, or leave the key out"),
])
def test_an_empty_path_bumps_nothing(gitops, deploy_remote: DeployRemote, tmp_path: Path, args: list[str],
                                     env: dict[str, str], config: str | None, expected: str) -> None:
    """`ENV_DIR=; gitops bump --path "$ENV_DIR"` bumped every environment, prod included, and pushed:
    normpath("") is ".".  GITOPS_PATHS="$A,$B" with both unset, or an empty entry in the file, did too."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    if config:
        (cwd / "gitops.toml").write_text(config)
    head = deploy_remote.head()
    res = gitops(["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:9.9.9", *args], cwd=cwd, env=env)
    assert res.returncode == 2, res.stderr
    assert _error_lines(res.stderr)[0].startswith(expected.format(config=cwd / "gitops.toml")), res.stderr
    assert res.stdout == "" and deploy_remote.head() == head


def test_an_empty_in_image_runs_no_test(gitops, tmp_path: Path) -> None:
    """`gitops test --in-image "$IMAGE"` with IMAGE unset ran the tests on the host and exited 0: CI took the
    image for tested."""
    res = gitops(["test", "--in-image", "", "--command", "touch ran"], cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert _error_lines(res.stderr) == ["error: --in-image '': empty value; give a value, or leave the option out",
                                        "hint: a shell variable that is empty or unset gives one"]
    assert not (tmp_path / "ran").exists()


def test_an_empty_dotenv_is_refused_and_the_step_outputs_written_empty(gitops, tmp_path: Path) -> None:
    """build-and-bump's step outputs after bad input found before the first step: written empty (the
    README), also for an empty --dotenv, which names no file (Path("") is the current directory)."""
    github_output = tmp_path / "github-output"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    res = gitops(["build-and-bump", "--dotenv", ""], cwd=cwd, env={"GITHUB_OUTPUT": str(github_output)})
    assert res.returncode == 2, res.stderr
    assert _error_lines(res.stderr)[0] == "error: --dotenv '': empty value; give a value, or leave the option out"
    assert github_output.read_text() == "tag=\nimage=\ndigest=\ndeploy-commit=\n"
    assert list(cwd.iterdir()) == []


def test_an_empty_prefix_overrides_the_files(gitops, tmp_path: Path) -> None:
    """The one option whose empty value is a value: the empty tag prefix, the default."""
    repo = tmp_path / "app"
    repo.mkdir()
    git("init", "--quiet", "--initial-branch=main", str(repo))
    (repo / "gitops.toml").write_text('tag_prefix = "v1-"\n')
    git("add", "-A", cwd=repo)
    git("commit", "--quiet", "-m", "app", cwd=repo)
    sha = git("rev-parse", "--short=7", "HEAD", cwd=repo).strip()
    assert gitops(["tag"], cwd=repo).stdout.strip() == f"v1-{sha}"
    res = gitops(["tag", "--prefix", ""], cwd=repo)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == sha


def test_rollback_takes_the_image_setting(gitops, deploy_remote: DeployRemote, tmp_path: Path) -> None:
    """`rollback` required --image while it read deploy_repo from the same gitops.toml; the `image` setting
    (the repository, as build reads it) is taken now, named by its source when it is invalid."""
    res = gitops(["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:2.0.0"])
    assert res.returncode == 0, res.stderr
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "gitops.toml").write_text(f'image = "{API}"\ndeploy_repo = "{deploy_remote.url}"\n')
    res = gitops(["rollback", "--dry-run", "--no-verify"], cwd=cwd)
    assert res.returncode == 0, res.stderr
    assert f"-          image: {API}:2.0.0" in res.stdout and f"+          image: {API}:1.0.0" in res.stdout
    res = gitops(["rollback", "--dry-run", "--no-verify"], cwd=cwd, env={"GITOPS_IMAGE": f"{API}:1.0.0"})
    assert res.returncode == 2
    assert _error_lines(res.stderr)[0] == (f"error: GITOPS_IMAGE='{API}:1.0.0': invalid image name '{API}:1.0.0': "
                                           "give the repository without tag or digest")
    res = gitops(["rollback", "--dry-run", "--no-verify"], cwd=tmp_path)  # no setting, no flag
    assert res.returncode == 2
    assert _error_lines(res.stderr) == ["error: --image is required (the repository to roll back)",
                                        "hint: or set image in [tool.gitops] / GITOPS_IMAGE"]


# --- references the container engine refuses -----------------------------------------------------------
def _engine_takes_ipv6_hosts(docker_engine) -> bool:
    from docker.errors import APIError

    try:
        docker_engine.inspect_image("[::1]:5000/gitops-test/absent:1")
    except APIError as exc:
        return exc.status_code != 400
    return True


@pytest.fixture
def marked_app(tmp_path: Path, base_image: str) -> Path:
    """The sample app whose build command leaves a marker: a build that ran it left it."""
    return sample_app(tmp_path / "app", extra_files={"gitops.toml": 'build_command = "touch built-marker"\n',
                                                     ".gitignore": "built-marker\n"})


@pytest.mark.parametrize("verb", ["publish", "build", "build-and-bump", "test"])
def test_a_registry_host_only_for_its_capitals_is_refused_before_any_work(gitops, marked_app: Path,
                                                                          verb: str) -> None:
    """`MyOrg/app`: the grammar takes `MyOrg` for a registry host (it has a capital), Docker Engine 20.10
    refuses it: publish was an internal error (exit 70, "report it"), build exit 5 after the build command,
    `test --in-image` exit 14."""
    image = "MyOrg/app:v1" if verb in ("publish", "test") else "MyOrg/app"
    flag = "--in-image" if verb == "test" else "--image"
    args = {"build-and-bump": ["--deploy-repo", str(marked_app)], "test": ["--command", "touch tested"]}.get(verb, [])
    res = gitops([verb, flag, image, *args], cwd=marked_app)
    assert res.returncode == 2, res.stderr
    assert _error_lines(res.stderr) == [
        f"error: {flag} '{image}': the container engine refuses this reference: 'MyOrg' is read as a registry "
        "host only for its capitals (repository names must be lowercase)",
        f"hint: 'MyOrg' is most likely an organisation's or user's name: write it lowercase (my{image[2:].lower()}); "
        "a registry host has a '.' or a port (registry.example.com/app)"]
    assert not (marked_app / "built-marker").exists() and not (marked_app / "tested").exists()


@pytest.mark.parametrize("verb", ["publish", "build", "test"])
def test_an_ipv6_registry_host_the_engine_refuses_is_refused_before_any_work(gitops, marked_app: Path,
                                                                             docker_engine, verb: str) -> None:
    if _engine_takes_ipv6_hosts(docker_engine):
        pytest.skip("this engine takes an IPv6 registry host")
    image = "[::1]:5000/app:v1" if verb in ("publish", "test") else "[::1]:5000/app"
    flag = "--in-image" if verb == "test" else "--image"
    res = gitops([verb, flag, image, *(["--command", "touch tested"] if verb == "test" else [])], cwd=marked_app)
    assert res.returncode == 2, res.stderr
    assert _error_lines(res.stderr) == [
        f"error: {flag} '{image}': the container engine refuses this reference (invalid reference format)",
        "hint: this engine takes no IPv6 registry host: name the registry by a host name or an IPv4 address "
        "(localhost:5000/..., 127.0.0.1:5000/...)"]
    assert not (marked_app / "built-marker").exists() and not (marked_app / "tested").exists()


@pytest.mark.parametrize("buildkit", ["1", "0"])
def test_the_engine_refusing_a_reference_is_exit_2_wherever_it_is_met(docker_engine, tmp_path: Path,
                                                                      monkeypatch, buildkit: str) -> None:
    """Past the checks before the work (a caller of the adapter's own), the engine's 400 "invalid reference
    format" is exit 2 too: inspect_image caught only ImageNotFound (the APIError was an internal error),
    run_in_image made it exit 14, a build exit 5 ("image build failed: invalid reference format") or, the docker
    SDK refusing the tag of a legacy build, exit 7 "lost the container engine"."""
    from gitops_cli import engine
    from gitops_cli.errors import InvalidReferenceError

    monkeypatch.setenv("DOCKER_BUILDKIT", buildkit)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    for call in (lambda: engine.inspect_image(docker_engine, "MyOrg/app:v1"),
                 lambda: engine.run_in_image(docker_engine, "MyOrg/app:v1", "true"),
                 lambda: engine.build(docker_engine, context=str(tmp_path), dockerfile=None, tag="MyOrg/app:v1")):
        with pytest.raises(InvalidReferenceError) as info:
            call()
        assert info.value.exit_code == 2
        assert info.value.message.startswith("MyOrg/app:v1: the container engine refuses this reference (invalid "
                                             "reference format")
        assert info.value.hint == "write the image's name lowercase, its registry host too " \
                                  "(registry.example.com/team/app)"
