"""Pure parts of the engine adapter: build-stream step tracking, push-stream checking, messages."""

from __future__ import annotations

import pytest

from gitops_cli import engine
from gitops_cli.errors import BuildError


def feed_all(events: list[dict]) -> tuple[engine.BuildTracker, list[str]]:
    tracker = engine.BuildTracker()
    lines: list[str] = []
    for event in events:
        lines += tracker.feed(event)
    lines += tracker.finish()
    return tracker, lines


def test_successful_build_stream() -> None:
    tracker, lines = feed_all([
        {"stream": "Step 1/2 : FROM base\n"},
        {"stream": " ---> abc\n"},
        {"stream": "Step 2/2 : RUN make\n"},
        {"stream": "\x1b[91mcompil"},  # partial line, with the builder's colour codes
        {"stream": "ing\n\x1b[0m"},
        {"aux": {"ID": "sha256:" + "1" * 64}},
        {"stream": "Successfully built 111111111111\n"},
    ])
    assert tracker.image_id == "sha256:" + "1" * 64
    assert tracker.error is None
    assert tracker.step == "Step 2/2 : RUN make"
    assert tracker.step_lines == ["compiling", "Successfully built 111111111111"]
    assert "compiling" in lines and "Step 1/2 : FROM base" in lines


def test_image_id_from_success_line_on_old_engines() -> None:
    tracker, _ = feed_all([{"stream": "Step 1/1 : FROM base\n"}, {"stream": "Successfully built 0123abcd\n"}])
    assert tracker.image_id == "0123abcd"


def test_failed_step_is_named_with_last_lines() -> None:
    events = [{"stream": "Step 1/3 : FROM base\n"}, {"stream": "Step 2/3 : RUN ./build.sh\n"}]
    events += [{"stream": f"line {i}\n"} for i in range(25)]
    events += [{"stream": "Removing intermediate container 123\n"}]
    events += [{"errorDetail": {"code": 1, "message": "The command '/bin/sh -c ./build.sh' returned a "
                                "non-zero code: 1"}, "error": "ignored when errorDetail has a message"}]
    tracker, _ = feed_all(events)
    err = tracker.failure()
    assert isinstance(err, BuildError) and err.exit_code == 5
    first = err.message.splitlines()[0]
    assert first == ("image build failed at Step 2/3 : RUN ./build.sh: The command '/bin/sh -c ./build.sh' "
                     "returned a non-zero code: 1")
    shown = err.message.splitlines()[2:]
    assert shown == [f"  line {i}" for i in range(15, 25)]  # the last 10, builder noise dropped


def test_error_before_first_step() -> None:
    tracker, _ = feed_all([{"error": "Cannot locate specified Dockerfile: Dockerfile"}])
    assert tracker.failure().message == (
        "image build failed before the first step: Cannot locate specified Dockerfile: Dockerfile")


def test_no_image_without_error_is_a_failure() -> None:
    tracker, _ = feed_all([{"stream": "Step 1/1 : FROM base\n"}])
    assert tracker.image_id is None
    assert "no image was produced" in tracker.failure().message


def test_push_stream_digest_from_aux() -> None:
    seen: list[dict] = []
    events = [
        {"status": "The push refers to repository [127.0.0.1:5000/app]"},
        {"status": "Preparing", "id": "aaa"},
        {"status": "Pushing", "id": "aaa", "progressDetail": {"current": 10, "total": 20}},
        {"status": "Pushed", "id": "aaa"},
        {"status": "t1: digest: sha256:" + "b" * 64 + " size: 528"},
        {"aux": {"Tag": "t1", "Digest": "sha256:" + "c" * 64, "Size": 528}},
    ]
    assert engine.check_push_stream(events, seen.append) == "sha256:" + "c" * 64
    assert len(seen) == len(events)


def test_push_stream_digest_from_status_line() -> None:
    events = [{"status": "t1: digest: sha256:" + "b" * 64 + " size: 528"}]
    assert engine.check_push_stream(events, lambda e: None) == "sha256:" + "b" * 64


def test_push_stream_error_anywhere_fails_even_after_progress() -> None:
    events = [
        {"status": "Preparing", "id": "aaa"},
        {"errorDetail": {"message": "unauthorized: authentication required"}, "error": "unauthorized"},
        {"aux": {"Digest": "sha256:" + "c" * 64}},
    ]
    with pytest.raises(engine.PushFailed, match="unauthorized: authentication required"):
        engine.check_push_stream(events, lambda e: None)


def test_push_stream_without_digest_fails() -> None:
    with pytest.raises(engine.PushFailed, match="no digest"):
        engine.check_push_stream([{"status": "Pushed", "id": "aaa"}], lambda e: None)


def test_engine_address_names_what_is_tried() -> None:
    host = "tcp://10.0.0.1:2375"
    assert engine.engine_address({"DOCKER_HOST": host}) == f"{host} (DOCKER_HOST)"
    assert engine.engine_address({}).startswith("unix:///var/run/docker.sock (default socket")


def test_connect_to_missing_socket(tmp_path) -> None:
    from gitops_cli.errors import EngineUnavailableError

    with pytest.raises(EngineUnavailableError) as info:
        engine.connect({"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert info.value.exit_code == 7
    where = f"unix://{tmp_path}/none.sock (DOCKER_HOST)"
    assert info.value.message == f"container engine unreachable at {where}: no such socket"
    assert "DOCKER_HOST" in (info.value.hint or "")


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:1x", "tcp://[::1", "tcp://user:s3cr3t-pw@127.0.0.1:1"])
def test_connect_with_a_malformed_docker_host_is_exit_7_without_credentials(tmp_path, host) -> None:
    from gitops_cli.errors import EngineUnavailableError

    with pytest.raises(EngineUnavailableError) as info:
        engine.connect({"DOCKER_HOST": host, "DOCKER_CONFIG": str(tmp_path)})
    assert info.value.exit_code == 7
    assert "invalid container engine address" in info.value.message
    assert "s3cr3t-pw" not in info.value.message and "user:" not in info.value.message


def test_engine_address_strips_userinfo() -> None:
    assert engine.engine_address({"DOCKER_HOST": "tcp://u:pw@10.0.0.1:2375"}) == "tcp://10.0.0.1:2375 (DOCKER_HOST)"


@pytest.mark.parametrize("config", ['[1]', '{"credHelpers": ["x"]}',
                                    '{"auths": {"other.example:5000": {"auth": "YWxpY2U="}}}'])
def test_connect_with_a_broken_docker_config_is_exit_2_naming_it(tmp_path, config) -> None:
    from gitops_cli.errors import ConfigError

    (tmp_path / "config.json").write_text(config)
    with pytest.raises(ConfigError) as info:
        engine.connect({"DOCKER_HOST": f"unix://{tmp_path}/none.sock", "DOCKER_CONFIG": str(tmp_path)})
    assert info.value.exit_code == 2 and str(tmp_path / "config.json") in info.value.message


# --- labels in the Dockerfile: one LABEL instruction ------------------------------------------------
LABELS = {"org.opencontainers.image.version": "abc1234", "org.opencontainers.image.revision": "f" * 40}


def test_label_instruction_is_one_sorted_quoted_line() -> None:
    assert engine.label_instruction(LABELS) == (
        f'LABEL "org.opencontainers.image.revision"="{"f" * 40}" "org.opencontainers.image.version"="abc1234"')
    # quotes, variables and the escape character itself are escaped; other text is kept
    assert engine.label_instruction({"k": 'a "b" $HOME ${X} \\ `t` é'}) == (
        'LABEL "k"="a \\"b\\" \\$HOME \\${X} \\\\ `t` é"')
    assert engine.label_instruction({"k": "a `b` \\"}, escape="`") == 'LABEL "k"="a ``b`` \\"'


@pytest.mark.parametrize("labels", [{}, {"k": "two\nlines"}, {"k=v": "x"}, {"": "x"}, {"k\r": "x"}])
def test_label_instruction_refuses_what_does_not_fit_one_line(labels) -> None:
    assert engine.label_instruction(labels) is None


def test_with_labels_appends_to_the_last_stage() -> None:
    line = engine.label_instruction(LABELS)
    assert engine.with_labels("FROM base\nCMD [\"/app\"]\n", LABELS) == f'FROM base\nCMD ["/app"]\n{line}\n'
    assert engine.with_labels("FROM base\nCMD x", LABELS) == f"FROM base\nCMD x\n{line}\n"  # no final newline
    text = "FROM a AS build\nRUN make\nFROM b\nCOPY --from=build /x /x\n"
    assert engine.with_labels(text, LABELS) == text + line + "\n"


def test_with_labels_with_target_ends_the_target_stage() -> None:
    line = engine.label_instruction(LABELS)
    text = "FROM a AS Build\nRUN make \\\n  all\n\n# the runtime\nFROM b AS final\nLABEL stage=final\n"
    assert engine.with_labels(text, LABELS, target="build") == (
        f"FROM a AS Build\nRUN make \\\n  all\n\n# the runtime\n{line}\nFROM b AS final\nLABEL stage=final\n")
    assert engine.with_labels(text, LABELS, target="final") == text + line + "\n"
    assert engine.with_labels(text, LABELS, target="missing") is None  # the engine names the stage


def test_with_labels_uses_the_escape_directive_and_skips_heredocs() -> None:
    text = "# escape=`\nFROM base\nRUN <<EOF\nFROM not-a-stage\nEOF\n"
    assert engine.with_labels(text, {"k": "a`b"}) == text + 'LABEL "k"="a``b"\n'


def test_parse_error_lines_are_mapped_back_past_the_inserted_label() -> None:
    text = "FROM base AS a\nRUN true\nFROM a AS b\nBADINSTR x\n"
    labelled = engine.with_labels(text, LABELS, target="a")
    at = engine.inserted_line(text, labelled)
    assert at == 3 and labelled.splitlines()[4] == "BADINSTR x"  # the engine sees it on line 5
    tracker = engine.BuildTracker(inserted_line=at)
    tracker.feed({"errorDetail": {"message": "dockerfile parse error line 5: unknown instruction: BADINSTR"}})
    assert "parse error line 4: unknown instruction" in tracker.failure().message
    assert engine.unshift_lines("error on line 2: x", at) == "error on line 2: x"  # before the label: as is
    assert engine.inserted_line("FROM base\nCMD x", "FROM base\nCMD x\nLABEL a=b\n") is None  # appended


@pytest.mark.parametrize("text", ["", "# only a comment\n", "FROM base\nRUN make \\\n"])
def test_with_labels_gives_up_where_it_is_not_safe(text) -> None:
    assert engine.with_labels(text, LABELS) is None
