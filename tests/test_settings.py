"""Settings precedence: defaults < [tool.gitops] (pyproject.toml / gitops.toml) < GITOPS_* env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_cli import output
from gitops_cli.errors import ConfigError
from gitops_cli.settings import FLAGS, Names, load_settings, register_secrets


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(tmp_path, environ={})
    assert s.tag_length == 7 and s.tag_prefix == "" and s.test_command is None
    assert s.build_args == [] and s.allow_mutable_tag is False
    assert set(s.sources.values()) == {"default"}


def test_pyproject_then_env_then_flags(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.gitops]\ntag_length = 9\ntest_command = "pytest -q"\n'
        'image = "file/image"\nbuild-args = ["A=1"]\n'
    )
    s = load_settings(tmp_path, environ={})
    assert (s.tag_length, s.test_command, s.image, s.build_args) == (9, "pytest -q", "file/image", ["A=1"])
    assert s.sources["tag_length"] == str(tmp_path / "pyproject.toml")

    env = {"GITOPS_TAG_LENGTH": "10", "GITOPS_IMAGE": "env/image", "GITOPS_BUILD_ARGS": "B=2, C=3"}
    s = load_settings(tmp_path, environ=env)
    assert (s.tag_length, s.image, s.build_args) == (10, "env/image", ["B=2", "C=3"])
    assert s.test_command == "pytest -q"  # still from the file
    assert s.sources["tag_length"] == "env GITOPS_TAG_LENGTH"

    s = load_settings(tmp_path, {"tag_length": 12, "image": None, "build_args": ()}, environ=env)
    assert s.tag_length == 12 and s.sources["tag_length"] == "flag"
    assert s.image == "env/image"  # None = flag not given
    assert s.build_args == ["B=2", "C=3"]  # an empty list flag is "not given" too


def test_gitops_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.gitops]\ntag_length = 9\n")
    (tmp_path / "gitops.toml").write_text("tag_length = 11\n")
    assert load_settings(tmp_path, environ={}).tag_length == 11


def test_gitops_toml_with_tool_table(tmp_path: Path) -> None:
    (tmp_path / "gitops.toml").write_text("[tool.gitops]\ntag_prefix = 'v-'\n")
    assert load_settings(tmp_path, environ={}).tag_prefix == "v-"


@pytest.mark.parametrize(
    "env, expected",
    [({"GITOPS_ALLOW_MUTABLE_TAG": "true"}, True), ({"GITOPS_ALLOW_MUTABLE_TAG": "0"}, False),
     ({"GITOPS_ALLOW_MUTABLE_TAG": "yes"}, True)],
)
def test_bool_from_env(tmp_path: Path, env: dict[str, str], expected: bool) -> None:
    assert load_settings(tmp_path, environ=env).allow_mutable_tag is expected


def test_bad_values_name_their_origin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GITOPS_TAG_LENGTH=.seven.: expected a whole number"):
        _ = load_settings(tmp_path, environ={"GITOPS_TAG_LENGTH": "seven"}).tag_length
    (tmp_path / "gitops.toml").write_text("tag_length = 'x'\n")
    with pytest.raises(ConfigError, match="gitops.toml.*tag_length"):
        _ = load_settings(tmp_path, environ={}).tag_length


def test_unknown_key_and_bad_toml(tmp_path: Path) -> None:
    (tmp_path / "gitops.toml").write_text("tag_lenght = 8\n")
    with pytest.raises(ConfigError, match="unknown setting 'tag_lenght'"):
        load_settings(tmp_path, environ={})
    (tmp_path / "gitops.toml").write_text("tag_length = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path, environ={})


@pytest.mark.parametrize("key", ["registry_password", "registry-password", "git_token", "password"])
def test_secrets_refused_in_files(tmp_path: Path, key: str) -> None:
    (tmp_path / "gitops.toml").write_text(f'{key} = "hunter2"\n')
    with pytest.raises(ConfigError, match="must not be stored in a file") as info:
        load_settings(tmp_path, environ={})
    assert "hunter2" not in str(info.value)


@pytest.mark.usefixtures("secrets_restored")
def test_every_secret_of_the_settings_is_registered_for_masking(tmp_path: Path) -> None:
    """The secret variables (a blank one is unset, blanks around one are no part of it) and the password of
    the deploy repo's URL, from the environment, a file or a flag, whether or not the verb uses them."""
    env = {"GITOPS_REGISTRY_PASSWORD": "pw-registry-1", "GITOPS_GIT_TOKEN": " tok-git-22 \n",
           "GITHUB_TOKEN": "ghs_github333", "CI_JOB_TOKEN": "   ", "GITOPS_DEPLOY_REPO": "https://u:env-url-4@h/x"}
    register_secrets(env)
    assert output.redact("pw-registry-1 tok-git-22 ghs_github333 env-url-4 |   |") == "*** *** *** *** |   |"
    (tmp_path / "gitops.toml").write_text('deploy_repo = "https://u:file-url-5@h/x"\n')
    load_settings(tmp_path, {"deploy_repo": "https://u:flag-url-6@h/x"}, environ={})
    assert output.redact("file-url-5 flag-url-6") == "*** ***"


def test_pyproject_without_tool_table_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_settings(tmp_path, environ={"GITOPS_TAG_PREFIX": "p-"}).tag_prefix == "p-"


def test_unknown_flag_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        load_settings(tmp_path, {"no_such_setting": 1}, environ={})


def _git_init(path: Path) -> None:
    from tests.fixtures.services import git

    git(path, "init", "-q", "-b", "main")


def test_only_the_app_directorys_config_is_read_a_parents_is_named(tmp_path: Path, capsys) -> None:
    """A parent's settings would build another app (its Dockerfile, its build command): not read, but
    named in a warning, so `cd sub && gitops tag` does not change the tag length without a word."""
    top = tmp_path / "repo"
    sub = top / "src" / "pkg"
    sub.mkdir(parents=True)
    _git_init(top)
    (top / "gitops.toml").write_text('tag_length = 13\ndockerfile = "Dockerfile"\n')
    s = load_settings(sub, environ={})
    assert s.tag_length == 7 and s.dockerfile is None and s.sources["tag_length"] == "default"
    err = capsys.readouterr().err
    assert f"warning: {top / 'gitops.toml'} is not read" in err and f"--repo {top}" in err
    load_settings(sub, environ={})
    assert capsys.readouterr().err == ""  # once per file
    (top / "src" / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no [tool.gitops]: not a config
    (sub / "gitops.toml").write_text("tag_length = 9\n")
    s = load_settings(sub, environ={})
    assert s.tag_length == 9 and s.sources["tag_length"] == str(sub / "gitops.toml")
    assert load_settings(top, environ={}).tag_length == 13


def test_the_parent_config_warning_suggests_repo_only_to_verbs_that_take_it(tmp_path: Path, capsys) -> None:
    top = tmp_path / "deploy"
    sub = top / "apps"
    sub.mkdir(parents=True)
    _git_init(top)
    (top / "gitops.toml").write_text('deploy_repo = "file:///x.git"\n')
    load_settings(sub, environ={}, app_flag=False)  # bump, history, rollback, sync, lint: no app --repo
    err = capsys.readouterr().err
    assert f"run in {top} to use it" in err and "--repo" not in err


def test_outside_a_work_tree_only_the_directory_itself_is_read(tmp_path: Path) -> None:
    (tmp_path / "gitops.toml").write_text("tag_length = 20\n")
    (tmp_path / "sub").mkdir()
    assert load_settings(tmp_path / "sub", environ={}).tag_length == 7
    assert load_settings(tmp_path, environ={}).tag_length == 20


def test_top_level_keys_and_tool_table_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "gitops.toml").write_text('image = "a/b"\n[tool.gitops]\ntag_length = 9\n')
    with pytest.raises(ConfigError, match=r"gitops.toml: settings both at the top level \(image\)") as info:
        load_settings(tmp_path, environ={})
    assert info.value.exit_code == 2


@pytest.mark.parametrize(("origin", "expected"), [
    ("file", "gitops.toml: tag_length = 3: must be between 7 and 40"),
    ("env", "GITOPS_TAG_LENGTH=3: must be between 7 and 40"),
    ("flag", "--length 3: must be between 7 and 40"),
])
def test_bad_tag_length_names_its_source(tmp_path: Path, origin: str, expected: str) -> None:
    if origin == "file":
        (tmp_path / "gitops.toml").write_text("tag_length = 3\n")
    env = {"GITOPS_TAG_LENGTH": "3"} if origin == "env" else {}
    flags = {"tag_length": 3} if origin == "flag" else {}
    with pytest.raises(ConfigError) as info:
        _ = load_settings(tmp_path, flags, environ=env).tag_length
    assert expected in info.value.message


def test_bad_tag_prefix_names_its_source(tmp_path: Path) -> None:
    (tmp_path / "gitops.toml").write_text('tag_prefix = "v/1-"\n')
    with pytest.raises(ConfigError, match=r"gitops.toml: tag_prefix = 'v/1-': a tag prefix"):
        _ = load_settings(tmp_path, environ={}).tag_prefix
    with pytest.raises(ConfigError, match=r"--prefix '-x': a tag prefix"):
        _ = load_settings(tmp_path / "..", {"tag_prefix": "-x"}, environ={}).tag_prefix


@pytest.mark.parametrize("value", ["--8", "²", "8.0", "0x8", " 8 8 "])
def test_an_integer_setting_takes_ascii_digits_only(tmp_path: Path, value: str) -> None:
    """`--8` passed `lstrip("-").isdigit()` and `²` passes isdigit(): int() then raised (exit 70)."""
    with pytest.raises(ConfigError, match="GITOPS_RETRIES=.*: expected a whole number"):
        _ = load_settings(tmp_path, environ={"GITOPS_RETRIES": value}).retries


def test_a_nul_in_a_string_setting_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "gitops.toml").write_text('test_command = "true\\u0000"\nbuild_args = ["A=\\u0000"]\n')
    s = load_settings(tmp_path, environ={})
    with pytest.raises(ConfigError, match="gitops.toml: test_command = 'true.x00': a NUL character in it"):
        _ = s.test_command
    with pytest.raises(ConfigError, match=r"gitops.toml: build_args = \['A=.x00'\]: a NUL character in it"):
        _ = s.build_args


# --- a bad value names where it came from (settings.Names), whichever module checks it -----------------

def test_names_say_where_each_value_came_from(tmp_path: Path) -> None:
    config = tmp_path / "gitops.toml"
    config.write_text('retries = 3\nauthor = "file <f@x>"\npaths = ["a", "b"]\ncontext = "sub"\n')
    s = load_settings(tmp_path, {"container": "web"}, environ={"GITOPS_AUTHOR": "env <e@x>",
                                                                "GITOPS_BUILD_ARGS": "A=1,B"})
    assert s.names("retries", 3) == f"{config}: retries = 3"
    assert s.names("paths", "b") == f"{config}: paths entry 'b'"  # one entry of a list setting
    assert s.names("context", s.context) == f"{config}: context = 'sub'"  # a path as written in the file
    assert s.context == str(tmp_path / "sub")
    assert s.names("author", s.author) == "GITOPS_AUTHOR='env <e@x>'"
    assert s.names("build_args", "B") == "GITOPS_BUILD_ARGS entry 'B'"
    assert s.names("container", "web") == "--container 'web'"
    assert s.names("tag_length", 7) == "tag_length = 7 (default)"  # not set anywhere
    assert s.names("retries", s.retries) == f"{config}: retries = 3"


def test_flag_names_are_the_verbs_own(tmp_path: Path) -> None:
    s = load_settings(tmp_path, {"deploy_repo": "/x", "paths": ["p"], "build_args": ["K"], "tag_length": 9},
                      environ={}, flag_names={"deploy_repo": "--repo"})
    assert s.names("deploy_repo", "/x") == "--repo '/x'"
    assert s.names("paths", "p") == "--path 'p'" and s.names("build_args", "K") == "--build-arg 'K'"
    assert s.names("tag_length", 9) == "--length 9"
    assert FLAGS("deploy_repo", "/x") == "--deploy-repo '/x'"  # no sources known: the flags
    assert Names(flags={"deploy_repo": "origin"})("deploy_repo", "u") == "origin 'u'"


def test_a_value_with_a_line_break_is_named_on_one_line() -> None:
    assert FLAGS("deploy_repo", "/tmp/x\ny") == "--deploy-repo '/tmp/x\\ny'"
    env = Names({"push_branch": "env GITOPS_PUSH_BRANCH"})
    assert env("push_branch", "a\x1b[2Jb") == "GITOPS_PUSH_BRANCH='a\\x1b[2Jb'"


def test_names_given_shows_scoped_paths_as_given() -> None:
    names = FLAGS.given("paths", ["apps/x", "/abs"], ["x", "/abs"])
    assert names("paths", "apps/x") == "--path 'x'" and names("paths", "/abs") == "--path '/abs'"
    assert FLAGS.given("paths", ["a"], ["a"]) is FLAGS


@pytest.mark.parametrize("where", ["file", "env", "flag"])
def test_bump_checks_name_the_source(tmp_path: Path, where: str) -> None:
    """Every check of a bump setting says where the bad value came from: gitops.toml, GITOPS_*, a flag."""
    from gitops_cli.bump import BumpRequest, validate
    from gitops_cli.errors import UsageError

    bad = {"retries": -1, "lock_wait": -1, "author": "nobody", "message": "  ", "push_branch": "a b",
           "branch": "refs/heads/x"}
    problems = {"retries": "must be 0 or more", "lock_wait": "must be 0 or more",
                "author": 'expected "Name <email@example.com>"',
                "message": "empty template", "push_branch": "not a valid branch name",
                "branch": "give the branch's name, without refs/heads/"}
    for key, value in bad.items():
        if where == "env" and isinstance(value, str) and not value.strip():
            continue  # a blank variable is not set (test_a_blank_variable_is_not_set)
        flags, environ = {}, {}
        if where == "file":
            text = f"{key} = {value}\n" if isinstance(value, int) else f'{key} = "{value}"\n'
            (tmp_path / "gitops.toml").write_text(text)
        elif where == "env":
            environ[f"GITOPS_{key.upper()}"] = str(value)
        else:
            flags[key] = value
        s = load_settings(tmp_path, flags, environ=environ, app_flag=False)
        request = BumpRequest(deploy_repo="x", images=[], retries=s.retries, lock_wait=s.lock_wait, author=s.author,
                              message=s.message, push_branch=s.push_branch, branch=s.branch, names=s.names)
        with pytest.raises(UsageError) as exc:
            validate(request, images_required=False)
        subject = {"file": f"{tmp_path / 'gitops.toml'}: {key} = {value!r}",
                   "env": f"GITOPS_{key.upper()}={value!r}",
                   "flag": f"--{key.replace('_', '-')} {value!r}"}[where]
        assert exc.value.message == f"{subject}: {problems[key]}"
        (tmp_path / "gitops.toml").unlink(missing_ok=True)


def test_build_deploy_repo_and_path_checks_name_the_source(tmp_path: Path) -> None:
    from gitops_cli import build, deployrepo
    from gitops_cli.errors import UsageError
    from gitops_cli.yamledit import discover

    config = tmp_path / "gitops.toml"
    config.write_text('labels = ["NOEQ"]\ndeploy_repo = "/nonexistent"\ndockerfile = "D.x"\n')
    s = load_settings(tmp_path, environ={"GITOPS_PATHS": "ok,../x", "GITOPS_BUILD_ARGS": "=A"})
    with pytest.raises(UsageError, match=f"^{config}: labels entry 'NOEQ': expected KEY=VALUE$"):
        build.user_labels(s.labels, s.names)
    with pytest.raises(UsageError, match=r"^GITOPS_BUILD_ARGS entry '=A': expected KEY=VALUE or KEY \(its value"):
        build.parse_build_args(s.build_args, s.names)
    with pytest.raises(UsageError, match=f"^{config}: deploy_repo = '/nonexistent': not a URL"):
        deployrepo.open_remote(s.deploy_repo or "", environ={}, names=s.names)
    with pytest.raises(UsageError, match=f"^{config}: dockerfile = 'D.x': no such file$"):
        build._resolve_paths(tmp_path, s.context, s.dockerfile, s.names)
    (tmp_path / "ok").mkdir()
    with pytest.raises(UsageError, match="^GITOPS_PATHS entry '../x': outside the repository$"):
        list(discover(tmp_path, s.paths, s.names))


def test_a_bad_type_names_its_source(tmp_path: Path) -> None:
    (tmp_path / "gitops.toml").write_text("paths = 5\n")
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'gitops.toml'}: paths = 5: expected a list of strings$"):
        _ = load_settings(tmp_path, environ={}).paths


# --- a blank variable is not set; only the value that wins is checked; unknown names are named ---------

@pytest.mark.parametrize("blank", ["", "  ", "\t"])
def test_a_blank_variable_is_not_set(tmp_path: Path, blank: str) -> None:
    """CI systems export unset variables as empty ones (`${{ vars.UNSET }}`): an empty GITOPS_TEST_COMMAND
    threw away the file's test_command (make test ran), an empty GITOPS_IMAGE the file's image."""
    (tmp_path / "gitops.toml").write_text('test_command = "echo FROMFILE"\nimage = "file/image"\n'
                                          'deploy_repo = "/deploy"\ntag_length = 9\nallow_mutable_tag = true\n'
                                          'paths = ["apps/x"]\n')
    from dataclasses import fields

    from gitops_cli.settings import Settings

    not_variables = ("lint", "sources", "names", "refused")
    every = [f"GITOPS_{f.name.upper()}" for f in fields(Settings) if f.name not in not_variables]
    s = load_settings(tmp_path, environ=dict.fromkeys(every, blank))
    assert (s.test_command, s.image, s.deploy_repo, s.tag_length, s.allow_mutable_tag, s.paths) == (
        "echo FROMFILE", "file/image", "/deploy", 9, True, ["apps/x"])
    assert s.retries == 10 and s.tag_prefix == "" and s.sources["retries"] == "default"
    assert set(s.sources.values()) - {"default"} == {str(tmp_path / "gitops.toml")}


def test_an_overridden_bad_value_is_not_used_and_named_in_a_warning(tmp_path: Path, capsys) -> None:
    """flags > env > file holds for invalid values too: `GITOPS_TAG_LENGTH=seven gitops tag --length 8`."""
    (tmp_path / "gitops.toml").write_text('tag_length = "x"\n')
    s = load_settings(tmp_path, {"tag_length": 8}, environ={"GITOPS_TAG_LENGTH": "seven"})
    assert s.tag_length == 8 and s.sources["tag_length"] == "flag"
    err = capsys.readouterr().err
    assert "warning: GITOPS_TAG_LENGTH='seven': expected a whole number (ignored: --length 8 overrides it)" in err
    assert f"warning: {tmp_path / 'gitops.toml'}: tag_length = 'x': expected a whole number" in err
    s = load_settings(tmp_path, environ={"GITOPS_TAG_LENGTH": "12"})
    assert s.tag_length == 12
    assert "(ignored: GITOPS_TAG_LENGTH='12' overrides it)" in capsys.readouterr().err
    # a value of the right type that fails its check (range, form) is named too, by its own source
    s = load_settings(tmp_path, {"tag_length": 8, "tag_prefix": "v1-"},
                      environ={"GITOPS_TAG_LENGTH": "3", "GITOPS_TAG_PREFIX": "-x"})
    assert (s.tag_length, s.tag_prefix) == (8, "v1-")
    err = capsys.readouterr().err
    assert "warning: GITOPS_TAG_LENGTH=3: must be between 7 and 40 (ignored: --length 8 overrides it)" in err
    assert "warning: GITOPS_TAG_PREFIX='-x': a tag prefix must start" in err and "--prefix 'v1-' overrides" in err


def test_a_bad_value_stops_only_a_verb_that_reads_it(tmp_path: Path) -> None:
    """`GITOPS_RETRIES=x gitops tag` failed: tag does not use retries.  The error comes when the setting
    is read, naming its source as before; the other settings are there."""
    (tmp_path / "gitops.toml").write_text("tag_length = 3\n")
    s = load_settings(tmp_path, {"tag_prefix": "v-"}, environ={"GITOPS_RETRIES": "x"})
    assert s.tag_prefix == "v-" and s.image is None and s.sources["retries"] == "env GITOPS_RETRIES"
    with pytest.raises(ConfigError, match="^GITOPS_RETRIES='x': expected a whole number$") as info:
        _ = s.retries
    assert info.value.exit_code == 2
    with pytest.raises(ConfigError, match=r"gitops.toml: tag_length = 3: must be between 7 and 40$"):
        _ = s.tag_length


def test_an_unknown_variable_is_named_once_with_the_nearest_setting(tmp_path: Path, capsys) -> None:
    """`GITOPS_PREFIX=v- gitops tag` printed the tag without a prefix and said nothing."""
    env = {"GITOPS_PREFIX": "v-", "GITOPS_ZZZ_QQQ": "1", "GITOPS_GIT_TOKNE": "t",
           # read by gitops, but no setting: never named
           "GITOPS_DEBUG": "1", "GITOPS_REGISTRY_PASSWORD": "pw", "GITOPS_GIT_TOKEN": "t",
           "GITOPS_YAML_PARSER": "python", "GITOPS_CLI_SPEC": "gitops-cli", "GITOPS_SOURCE_COMMIT": "abc",
           "GITOPS_CI_RUN_URL": "u", "GITOPS_SSH_KNOWN_HOSTS": "k", "GITOPS_GIT_USERNAME": "u",
           "GITOPS_TAG_LENGTH": "8"}
    s = load_settings(tmp_path, environ=env)
    assert s.tag_prefix == "" and s.tag_length == 8
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "warning: GITOPS_GIT_TOKNE is no gitops setting and is ignored; did you mean GITOPS_GIT_TOKEN?",
        "warning: GITOPS_PREFIX is no gitops setting and is ignored; did you mean GITOPS_TAG_PREFIX?",
        "warning: GITOPS_ZZZ_QQQ is no gitops setting and is ignored",
    ]
    load_settings(tmp_path, environ=env)
    assert capsys.readouterr().err == ""  # once


@pytest.mark.parametrize(("text", "where"), [
    ("tag_lenght = 8\n", "at the top level"), ("[tool.gitops]\ntag-lenght = 8\n", "in [tool.gitops]")])
def test_an_unknown_key_names_its_table_as_written_and_the_nearest_setting(tmp_path: Path, text: str,
                                                                           where: str) -> None:
    (tmp_path / "gitops.toml").write_text(text)
    key = text.splitlines()[-1].split(" ")[0]
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})
    assert info.value.message == f"{tmp_path / 'gitops.toml'}: unknown setting {key!r} {where}"
    assert info.value.hint == "did you mean 'tag_length'?"
    (tmp_path / "gitops.toml").unlink()
    (tmp_path / "pyproject.toml").write_text("[tool.gitops]\nxyzzy = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})
    assert info.value.message.endswith("unknown setting 'xyzzy' in [tool.gitops]") and info.value.hint is None


def test_a_value_naming_a_url_never_shows_its_credentials(tmp_path: Path, capsys) -> None:
    """An overridden bad value is named in a warning next to the value that wins: a --deploy-repo URL with
    a token printed the token (in a CI log)."""
    from gitops_cli.settings import load_settings

    (tmp_path / "gitops.toml").write_text("deploy_repo = 5\n")
    url = "https://x-access-token:ghp_abcdefghijklmnop@example.com/x.git?private_token=tok123456"
    s = load_settings(tmp_path, {"deploy_repo": url})
    assert s.deploy_repo == url  # the value itself is kept: git gets its credentials elsewhere
    err = capsys.readouterr().err
    assert "ghp_abcdefghijklmnop" not in err and "tok123456" not in err
    assert "--deploy-repo 'https://example.com/x.git' overrides it" in err
    assert s.names("deploy_repo", url) == "--deploy-repo 'https://example.com/x.git'"


def test_child_environment_leaves_the_secret_variables_out_or_empty() -> None:
    from gitops_cli.settings import OWN_SECRETS, child_environment

    env = {"GITOPS_GIT_TOKEN": "t", "GITHUB_TOKEN": "g", "CI_JOB_TOKEN": "c", "GITOPS_REGISTRY_PASSWORD": "p",
           "PATH": "/bin"}
    assert child_environment(environ=env) == {"PATH": "/bin"}
    assert child_environment(environ=env, blank=True) == {
        "GITOPS_GIT_TOKEN": "", "GITHUB_TOKEN": "", "CI_JOB_TOKEN": "", "GITOPS_REGISTRY_PASSWORD": "", "PATH": "/bin"}
    assert child_environment(OWN_SECRETS, environ=env) == {"GITHUB_TOKEN": "g", "CI_JOB_TOKEN": "c", "PATH": "/bin"}


@pytest.mark.parametrize(("text", "key", "shown"), [
    ('author = ""\n', "author", "author = ''"),
    ('test_command = ""\n', "test_command", "test_command = ''"),
    ('paths = ["apps", ""]\n', "paths", "paths entry ''"),
    ('context = ""\n', "context", "context = ''"),
    ('deploy_repo = ""\n', "deploy_repo", "deploy_repo = ''"),
    ('allow_mutable_tag = ""\n', "allow_mutable_tag", "allow_mutable_tag = ''"),
])
def test_an_empty_value_in_a_file_is_refused_naming_it(tmp_path: Path, text: str, key: str, shown: str) -> None:
    """An empty string in a file was taken as "not given" (author, test_command: the default ran), "the whole
    repository" (a paths entry: normpath('') is '.'), "the file's directory" (context) or false: refused now,
    like an empty flag, naming the file and key.  The empty tag prefix is a value (the default)."""
    (tmp_path / "gitops.toml").write_text(text + 'tag_prefix = ""\n')
    s = load_settings(tmp_path, environ={})
    assert s.tag_prefix == "" and s.sources["tag_prefix"] == str(tmp_path / "gitops.toml")
    with pytest.raises(ConfigError) as info:
        getattr(s, key)
    assert info.value.message == (f"{tmp_path / 'gitops.toml'}: {shown}: empty value; give a value, or leave the "
                                  "key out")
    with pytest.raises(ConfigError, match=r"^--author '': empty value; give a value, or leave the option out$"):
        _ = load_settings(tmp_path, {"author": ""}, environ={}).author  # the option layer refuses it first


def test_a_list_variable_of_commas_is_refused_and_a_blank_one_unset(tmp_path: Path) -> None:
    """GITOPS_PATHS="$A,$B" with both unset is `,`: no entry, so every path of the repository was bumped."""
    s = load_settings(tmp_path, environ={"GITOPS_PATHS": " , ", "GITOPS_LABELS": "  "})
    assert s.labels == [] and s.sources["labels"] == "default"  # blank: unset
    with pytest.raises(ConfigError, match=r"^GITOPS_PATHS=' , ': no entry, only commas and blanks$"):
        _ = s.paths


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("0", False), ('"yes"', True), ('"off"', False),
                                                   ("true", True)])
def test_a_bool_in_a_file_takes_what_a_variable_takes(tmp_path: Path, value: str, expected: bool) -> None:
    """`allow_mutable_tag = 1` was refused with `expected true or false (1/0, yes/no, on/off)`."""
    (tmp_path / "gitops.toml").write_text(f"allow_mutable_tag = {value}\n")
    assert load_settings(tmp_path, environ={}).allow_mutable_tag is expected


def test_a_bool_that_is_none_says_what_is_taken(tmp_path: Path) -> None:
    (tmp_path / "gitops.toml").write_text("allow_mutable_tag = 2\n")
    with pytest.raises(ConfigError, match=r": allow_mutable_tag = 2: expected true or false \(1/0, yes/no, on/off\)$"):
        _ = load_settings(tmp_path, environ={}).allow_mutable_tag


@pytest.mark.parametrize("table", ["", "[tool.gitops]\n"])
def test_one_setting_spelled_twice_in_a_file_is_refused(tmp_path: Path, table: str) -> None:
    """`tag-length = 8` and `tag_length = 9`: the one later in the file won, without a word."""
    (tmp_path / "gitops.toml").write_text(f"{table}tag-length = 8\ntag_length = 9\n")
    where = "in [tool.gitops]" if table else "at the top level"
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})
    assert info.value.message == (f"{tmp_path / 'gitops.toml'}: 'tag-length' and 'tag_length' are one setting "
                                  f"(tag_length) {where}")
    assert info.value.hint == "keep one of them"


@pytest.mark.parametrize(("make", "kind"), [
    (lambda p: p.mkdir(), "a directory"),
    (lambda p: p.symlink_to("nowhere.toml"), "a symlink to 'nowhere.toml', which does not exist"),
    (lambda p: __import__("os").mkfifo(p), "a FIFO"),
])
@pytest.mark.parametrize("name", ["gitops.toml", "pyproject.toml"])
def test_a_config_file_that_is_no_file_is_refused(tmp_path: Path, make, kind: str, name: str) -> None:
    """A gitops.toml that was a directory or a dangling symlink was passed over: the defaults applied (and a
    FIFO would block the read)."""
    make(tmp_path / name)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})
    assert info.value.message == f"{tmp_path / name}: not a file ({kind})"
    assert info.value.hint == f"make {name} a file holding the settings, or remove it"


def test_a_symlink_to_a_config_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "shared.toml").write_text("tag_length = 9\n")
    (tmp_path / "gitops.toml").symlink_to("shared.toml")
    assert load_settings(tmp_path, environ={}).tag_length == 9


def test_a_relative_deploy_repo_in_a_file_is_relative_to_the_file(tmp_path: Path, monkeypatch) -> None:
    """`deploy_repo = "../deploy"` was taken relative to the current directory: `gitops build-and-bump --repo
    app` from elsewhere bumped another repository, or none.  A URL or scp-like address stays as written; a
    variable or flag stays relative to the current directory."""
    app = tmp_path / "app"
    app.mkdir()
    (tmp_path / "deploy").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (app / "gitops.toml").write_text('deploy_repo = "../deploy"\n')
    s = load_settings(app, environ={})
    assert s.deploy_repo == str(app / ".." / "deploy")
    assert s.names("deploy_repo", s.deploy_repo) == f"{app / 'gitops.toml'}: deploy_repo = '../deploy'"  # as written
    for value in ("git@example.com:org/deploy.git", "https://example.com/org/deploy.git", "/srv/deploy",
                  "~/deploy", "file:///srv/deploy.git"):
        (app / "gitops.toml").write_text(f'deploy_repo = "{value}"\n')
        assert load_settings(app, environ={}).deploy_repo == value
    (app / "git@example.com:org").mkdir()  # a directory of that name beside the file: a local path
    (app / "gitops.toml").write_text('deploy_repo = "git@example.com:org"\n')
    assert load_settings(app, environ={}).deploy_repo == str(app / "git@example.com:org")
    assert load_settings(app, environ={"GITOPS_DEPLOY_REPO": "../deploy"}).deploy_repo == "../deploy"
    assert load_settings(app, {"deploy_repo": "../deploy"}, environ={}).deploy_repo == "../deploy"
