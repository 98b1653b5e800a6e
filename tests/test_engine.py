"""Pure parts of the engine adapter: build-stream step tracking, push-stream checking, messages."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator

import pytest

from gitops_cli import engine
from gitops_cli.errors import BuildError, UsageError


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
    assert err.message == ("image build failed at Step 2/3 : RUN ./build.sh: The command '/bin/sh -c "
                           "./build.sh' returned a non-zero code: 1")
    assert err.details[0] == "last log lines:"  # printed before the one error line
    assert list(err.details[1:]) == [f"  line {i}" for i in range(15, 25)]  # the last 10, builder noise dropped


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


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:1x", "tcp://[::1", "tcp://user:s3cr3t-pw@127.0.0.1:1",
                                  "user:s3cr3t-pw@127.0.0.1:2376", "user:s3cr3t-pw@host/x"])  # no scheme
def test_connect_with_a_malformed_docker_host_is_exit_7_without_credentials(tmp_path, host) -> None:
    from gitops_cli.errors import EngineUnavailableError

    with pytest.raises(EngineUnavailableError) as info:
        engine.connect({"DOCKER_HOST": host, "DOCKER_CONFIG": str(tmp_path)})
    assert info.value.exit_code == 7
    assert "invalid container engine address" in info.value.message
    assert "s3cr3t-pw" not in info.value.message and "user:" not in info.value.message


def test_incomplete_tls_settings_are_named_as_such_not_as_a_bad_address(tmp_path) -> None:
    from gitops_cli.errors import EngineUnavailableError

    with pytest.raises(EngineUnavailableError) as info:
        engine.connect({"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path / "none"),
                        "DOCKER_CONFIG": str(tmp_path)})
    assert info.value.exit_code == 7
    assert info.value.message.startswith("the container engine's TLS settings are incomplete")
    assert "DOCKER_CERT_PATH" in (info.value.hint or "")


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


# --- BuildKit: the progress stream, and which builder ---------------------------------------------------
def _varint(value: int) -> bytes:
    out = b""
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def _field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def trace(vertexes: list[dict] = (), logs: list[tuple[str, int, bytes]] = ()) -> dict:
    """A `moby.buildkit.trace` stream object, encoded as the engine encodes a StatusResponse."""
    timestamp = _field(1, 1_700_000_000)
    body = b""
    for v in vertexes:
        msg = _field(1, v["digest"].encode()) + _field(2, b"sha256:input") + _field(3, v["name"].encode())
        msg += _field(4, 1) if v.get("cached") else b""
        msg += _field(5, timestamp) if v.get("started") else b""
        msg += _field(6, timestamp) if v.get("completed") else b""
        msg += _field(7, v["error"].encode()) if v.get("error") else b""
        body += _field(1, msg)
    for digest, stream, data in logs:
        body += _field(3, _field(1, digest.encode()) + _field(2, timestamp) + _field(3, stream) + _field(4, data))
    body += _field(2, _field(1, b"status-id"))  # a VertexStatus (pull progress): not shown
    return {"id": "moby.buildkit.trace", "aux": base64.b64encode(body).decode()}


def test_buildkit_status_decodes_what_the_engine_sent() -> None:
    # captured from dockerd 20.10's /build?version=2: the first vertex of a build
    real = ("Cm8KR3NoYTI1NjpkZDA4Zjc3YjE3YjI1M2RiODA0NzRhNjZhNWQwNzAwMjY1ZmEwZTgzZGFjYTk5OWUxMjhiZGU1NzRhYTFjOGUz"
            "GiRbaW50ZXJuYWxdIGxvYWQgcmVtb3RlIGJ1aWxkIGNvbnRleHQ=")
    status = engine.buildkit_status(real)
    assert status is not None and status.logs == []
    (vertex,) = status.vertexes
    assert vertex.name == "[internal] load remote build context" and vertex.digest.startswith("sha256:dd08f77b")
    assert not (vertex.started or vertex.completed or vertex.cached or vertex.error)


@pytest.mark.parametrize("aux", [None, {"ID": "x"}, "not base64!", base64.b64encode(b"\x0a\xff").decode(),
                                 base64.b64encode(b"\x0b").decode()])
def test_buildkit_status_of_anything_else_is_none(aux) -> None:
    assert engine.buildkit_status(aux) is None


def test_buildkit_stream_shows_steps_once_and_logs_per_stream() -> None:
    tracker = engine.BuildTracker(buildkit=True)
    events = [
        trace([{"digest": "d0", "name": "[internal] load remote build context", "started": True}]),
        trace([{"digest": "d1", "name": "[1/3] FROM docker.io/library/base:1", "started": True, "cached": True,
                "completed": True}]),
        trace([{"digest": "d2", "name": "[2/3] COPY . /src"}]),  # not started yet: nothing shown
        trace([{"digest": "d2", "name": "[2/3] COPY . /src", "started": True}]),
        trace([{"digest": "d2", "name": "[2/3] COPY . /src", "started": True, "completed": True}]),
        trace([{"digest": "d3", "name": "[3/3] RUN make", "started": True}],
              [("d3", 1, b"compiling a\ncompil"), ("d3", 2, b"\x1b[31mwarning\x1b[0m: x"), ("d3", 1, b"ing b\n")]),
        {"id": "moby.image.id", "aux": {"ID": "sha256:" + "ab" * 32}},
        {"stream": "Successfully tagged app:1\n"},
    ]
    lines = []
    for event in events:
        lines += tracker.feed(event)
    lines += tracker.finish()
    assert lines == ["[1/3] FROM docker.io/library/base:1 (cached)", "[2/3] COPY . /src", "[3/3] RUN make",
                     "compiling a", "compiling b", "Successfully tagged app:1", "warning: x"]
    assert tracker.image_id == "sha256:" + "ab" * 32 and tracker.error is None and tracker.step is None


def test_buildkit_failure_names_the_failed_step_and_its_own_last_lines() -> None:
    tracker = engine.BuildTracker(buildkit=True)
    lines: list[str] = []
    for event in [
        trace([{"digest": "a", "name": "[a 2/2] RUN ./one", "started": True},
               {"digest": "b", "name": "[b 2/2] RUN ./two", "started": True}],
              [("a", 1, b"from one\n"), ("b", 1, b"from two\n"), ("b", 2, b"fatal: no")]),
        trace([{"digest": "b", "name": "[b 2/2] RUN ./two", "started": True, "completed": True,
                "error": "exit code: 1"}]),
        trace([{"digest": "a", "name": "[a 2/2] RUN ./one", "started": True, "completed": True,
                "error": "context canceled"}]),
        {"errorDetail": {"message": "executor failed running [/bin/sh -c ./two]: exit code: 1"}},
    ]:
        lines += tracker.feed(event)
    lines += tracker.finish()
    failure = tracker.failure()
    assert [failure.message, *failure.details] == [
        "image build failed at [b 2/2] RUN ./two: executor failed running [/bin/sh -c ./two]: exit code: 1",
        "last log lines:", "  from two", "  fatal: no"]
    assert isinstance(failure, BuildError)


def test_buildkit_failure_before_any_step_names_no_step() -> None:
    tracker = engine.BuildTracker(buildkit=True)
    tracker.feed({"errorDetail": {"message": "dockerfile parse error line 2: unknown instruction: BADINSTR"}})
    assert str(tracker.failure()) == "image build failed: dockerfile parse error line 2: unknown instruction: BADINSTR"


@pytest.mark.parametrize("value, expected", [("", None), ("1", True), ("true", True), ("TRUE", True),
                                             ("0", False), ("false", False), ("F", False)])
def test_docker_buildkit_is_read_as_docker_reads_it(value, expected) -> None:
    assert engine.buildkit_setting({"DOCKER_BUILDKIT": value}) is expected
    assert engine.buildkit_setting({}) is None


@pytest.mark.parametrize("value", ["yes", "2", "on"])
def test_docker_buildkit_that_is_no_boolean_is_refused(value) -> None:
    with pytest.raises(UsageError, match=f"DOCKER_BUILDKIT='{value}': expected a boolean"):
        engine.buildkit_setting({"DOCKER_BUILDKIT": value})


@pytest.mark.parametrize("dockerfile, ignore, blocker", [
    (None, None, None),
    (None, "build/\n*.log\n", None),
    (None, "# comment\nDockerfile\n", ".dockerignore excludes the Dockerfile (Dockerfile)"),
    (None, "Docker*\n", ".dockerignore excludes the Dockerfile (Dockerfile)"),
    ("docker/app.dockerfile", "docker/\n", ".dockerignore excludes the Dockerfile (docker/app.dockerfile)"),
    ("docker/app.dockerfile", "docker/\n!docker/app.dockerfile\n", None),
    (None, ".dockerignore\n", ".dockerignore excludes itself"),
    (None, "*\n", ".dockerignore excludes the Dockerfile (Dockerfile)"),
    (None, "[^D]ockerfile\n", None),  # docker's `[^D]` is "not D"
    (None, "Dockerfil(e)\n", ".dockerignore excludes the Dockerfile (Dockerfile) for some engine versions"),
    (None, ".dockerignor(e)\n", ".dockerignore excludes itself for some engine versions"),
    ("docker/app.dockerfile", "**/docker\n", ".dockerignore excludes the Dockerfile (docker/app.dockerfile)"),
    ("/elsewhere/Dockerfile", None, "the Dockerfile is outside the build context"),
    ("d/" * 50 + "Dockerfile", None, "the Dockerfile's path is longer than 100 characters or not ASCII"),
    ("Dockerfile.prod-é", None, "the Dockerfile's path is longer than 100 characters or not ASCII"),
])
def test_context_blocker(tmp_path, dockerfile, ignore, blocker) -> None:
    if ignore is not None:
        (tmp_path / ".dockerignore").write_text(ignore)
    assert engine.context_blocker(str(tmp_path), dockerfile) == blocker


def test_context_blocker_dockerfile_files(tmp_path) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "Dockerfile.prod").write_text("FROM base\n")
    (tmp_path / "Dockerfile").symlink_to("docker/Dockerfile.prod")  # .dockerignore may leave its target out
    assert engine.context_blocker(str(tmp_path), None) == (
        "the Dockerfile is a symbolic link (BuildKit reads it from the context, where its target may not be)")
    (tmp_path / "linked").symlink_to("docker")
    assert engine.context_blocker(str(tmp_path), "linked/Dockerfile.prod").startswith("the Dockerfile is a symbolic")
    assert engine.context_blocker(str(tmp_path), "docker/Dockerfile.prod") is None
    os.utime(tmp_path / "docker" / "Dockerfile.prod", (-315619200, -315619200))  # 1960: a PAX header
    assert engine.context_blocker(str(tmp_path), "docker/Dockerfile.prod") == (
        "the Dockerfile's modification time does not fit a plain tar header")


def test_a_byte_order_mark_is_no_part_of_the_first_dockerignore_pattern(tmp_path) -> None:
    (tmp_path / ".dockerignore").write_text("\ufeff.dockerignore\n*.log\n", encoding="utf-8")
    assert engine.context_blocker(str(tmp_path), None) == ".dockerignore excludes itself"


def test_a_dockerignore_docker_refuses_stops_the_build_before_it_starts(tmp_path) -> None:
    (tmp_path / ".dockerignore").write_text("# ok\nsrc/[a-\n")
    with pytest.raises(UsageError, match=r"\.dockerignore line 2: `src/\[a-`: syntax error in pattern"):
        engine.context_blocker(str(tmp_path), None)


def test_builder_is_described_with_its_reason() -> None:
    assert engine.Builder(True).describe() == "builder: BuildKit"
    assert engine.Builder(True, "DOCKER_BUILDKIT=1", forced=True).describe() == "builder: BuildKit (DOCKER_BUILDKIT=1)"
    assert engine.Builder(False, "DOCKER_BUILDKIT=0").describe() == "builder: legacy (DOCKER_BUILDKIT=0)"


def test_headings_are_what_the_tracker_says_not_what_a_line_looks_like(capsys) -> None:
    """A build's own output that looks like a step (yarn prints `[1/4] Resolving packages...`) is a log line."""
    for line in [engine.Heading("[2/3] RUN yarn"), "[1/4] Resolving packages...", "Step 2/9 : fake", " ---> x",
                 "", engine.Heading("Step 1/2 : FROM x")]:
        engine.show_build_line(line)
    assert capsys.readouterr().err.split("\n") == [
        "==> [2/3] RUN yarn", "[1/4] Resolving packages...", "Step 2/9 : fake", " ---> x", "",
        "==> Step 1/2 : FROM x", ""]


def test_buildkit_logs_keep_what_the_legacy_builder_filters() -> None:
    """Under BuildKit ` ---> ` and blank lines can only be the build's own output."""
    tracker = engine.BuildTracker(buildkit=True)
    lines = tracker.feed(trace([{"digest": "a", "name": "[1/1] RUN x", "started": True}],
                               [("a", 1, b" ---> user arrow\n\nRemoving intermediate container x\n")]))
    assert lines == ["[1/1] RUN x", " ---> user arrow", "", "Removing intermediate container x"]
    assert isinstance(lines[0], engine.Heading) and not any(isinstance(ln, engine.Heading) for ln in lines[1:])


def test_a_steps_unended_last_line_is_shown_when_the_step_completes() -> None:
    tracker = engine.BuildTracker(buildkit=True)
    lines = tracker.feed(trace([{"digest": "a", "name": "[2/3] RUN printf x", "started": True}],
                               [("a", 1, b"no final newline")]))
    lines += tracker.feed(trace([{"digest": "a", "name": "[2/3] RUN printf x", "started": True, "completed": True}]))
    lines += tracker.feed(trace([{"digest": "b", "name": "[3/3] RUN echo y", "started": True}], [("b", 1, b"y\n")]))
    assert lines == ["[2/3] RUN printf x", "no final newline", "[3/3] RUN echo y", "y"]
    assert tracker.finish() == []


def test_parallel_failures_name_the_step_whose_error_the_build_reports() -> None:
    for first, second in (("b", "c"), ("c", "b")):
        tracker = engine.BuildTracker(buildkit=True)
        names = {"b": "[b 2/2] RUN ./b", "c": "[c 2/2] RUN ./c"}
        errors = {"b": "executor failed running [/bin/sh -c ./b]: exit code: 9",
                  "c": "executor failed running [/bin/sh -c ./c]: exit code: 8"}
        tracker.feed(trace([{"digest": d, "name": names[d], "started": True} for d in "bc"],
                           [("b", 1, b"from b\n"), ("c", 1, b"from c\n")]))
        for d in (first, second):
            tracker.feed(trace([{"digest": d, "name": names[d], "started": True, "completed": True,
                                 "error": errors[d]}]))
        tracker.feed({"errorDetail": {"message": errors["c"]}})
        failure = tracker.failure()
        assert [failure.message, *failure.details] == [
            f"image build failed at [c 2/2] RUN ./c: {errors['c']}", "last log lines:", "  from c"]


@pytest.mark.parametrize("raw, shown", [
    ("\x1b[31mred\x1b[0m", "red"),
    ("\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"),
    ("\x1b]0;window title\x07text", "text"),
    ("bell\x07 and back\bspace", "bell and backspace"),
    ("progress 10%\rprogress 50%\rprogress 100%\r", "progress 100%"),
    ("tab\tkept", "tab\tkept"),
])
def test_clean_line(raw, shown) -> None:
    assert engine.clean_line(raw) == shown


def test_plain_context_starts_with_a_plain_header_holding_the_dockerfile(tmp_path) -> None:
    """The engine sniffs the first 1024 bytes for a tar header: no PAX header may come first (Python
    writes one for a fractional mtime or an owner id over 2097151)."""
    import tarfile

    (tmp_path / "Dockerfile").write_text("FROM base\n")
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "secret").write_text("s\n")
    (tmp_path / ".dockerignore").write_text("secret\n")
    os.utime(tmp_path / "Dockerfile", (1_700_000_000.5, 1_700_000_000.5))
    with engine.plain_context(str(tmp_path), None) as tar:
        data = b"".join(tar)
    head = data[:512]
    members = tarfile.open(fileobj=io.BytesIO(data)).getmembers()
    assert head[156:157] == b"0" and head[:10] == b"Dockerfile"  # a regular file's own header, not PAX ("x")
    assert [m.name for m in members] == ["Dockerfile", ".dockerignore", "a.txt"]
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert members[0].mtime == 1_700_000_000 and not members[0].pax_headers


def tar_files(tar) -> dict[str, bytes | None]:
    """name -> content (None for what is not a regular file) of a context tar (a ContextStream)."""
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(b"".join(tar)), encoding="utf-8", errors="surrogateescape") as archive:
        return {m.name: archive.extractfile(m).read() if m.isfile() else None for m in archive.getmembers()}


def context(tmp_path, files: dict[str, str], ignore: str | None = None):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    if ignore is not None:
        (tmp_path / ".dockerignore").write_text(ignore)
    return str(tmp_path)


def test_the_labelled_context_leaves_out_the_dockerfile_the_engine_would_remove(tmp_path) -> None:
    """`docker build` sends the Dockerfile and the engine removes it after reading it (it matches
    .dockerignore); the engine reads the labelled copy instead, so gitops leaves the user's out."""
    root = context(tmp_path, {"Dockerfile": "FROM base\nCOPY . /ctx/\n", "a.txt": "a\n", "b.log": "b\n"},
                   "*.log\nDockerfile\n.dockerignore")
    tar, inserted = engine.labelled_context(root, None, {"k": "v"})
    with tar:
        files = tar_files(tar)
    assert sorted(files) == [".dockerignore", engine.GENERATED_DOCKERFILE, "a.txt"]
    assert files[".dockerignore"] == f"*.log\nDockerfile\n.dockerignore\n{engine.GENERATED_DOCKERFILE}\n".encode()
    assert files[engine.GENERATED_DOCKERFILE] == b'FROM base\nCOPY . /ctx/\nLABEL "k"="v"\n' and inserted is None


@pytest.mark.parametrize("files, dockerfile, ignore", [
    ({"Dockerfile": "FROM base\n"}, None, "Dockerfil(e)\n"),  # engine versions differ on removing it
    ({"docker/Dockerfile": "FROM base\n", "a": ""}, "docker/Dockerfile", "docker\n"),  # its directory stays
    ({"docker/Dockerfile": "FROM base\n", "a": ""}, "docker/Dockerfile", "**/docker\n"),  # not sent at all
    ({"Dockerfile": "FROM base\nCOPY . /src/\n"}, None, "# keeps itself\n"),  # COPY . copies .dockerignore
])
def test_the_labels_go_through_the_api_when_the_tar_cannot_be_what_docker_sends(tmp_path, files, dockerfile,
                                                                                 ignore) -> None:
    assert engine.labelled_context(context(tmp_path, files, ignore), dockerfile, {"k": "v"}) is None


@pytest.mark.parametrize("triggers, labelled", [
    ([], True),
    (["RUN make"], True),
    (["COPY . /onb/"], False),  # a base image's `ONBUILD COPY . /onb/` copies the .dockerignore
    (["ADD * /onb/"], False),
    (None, False),  # not known (a base image the engine does not have yet): counted as a COPY .
])
def test_the_labels_go_through_the_api_when_a_base_images_onbuild_may_copy_the_dockerignore(
        tmp_path, triggers, labelled) -> None:
    root = context(tmp_path, {"Dockerfile": "FROM onbuild-base\n"}, "secret\n")
    found = engine.labelled_context(root, None, {"k": "v"}, triggers=triggers)
    assert (found is not None) is labelled
    if found is not None:
        found[0].close()


def test_the_api_context_is_what_the_docker_cli_sends(tmp_path) -> None:
    """Dockerfile and .dockerignore included even when excluded (the engine removes them), the rest as
    the CLI's walk selects it; a Dockerfile from outside the context is added with a .dockerignore naming it."""
    root = context(tmp_path / "ctx", {"Dockerfile": "FROM base\n", "a*b": "", "axb": "", "notes.md": "",
                                      "README.md": ""}, ".dockerignore\nDockerfile\na\\*b\n[^R]*.md\n")
    tar, name = engine.api_context(root, None)
    with tar:
        assert (sorted(tar_files(tar)), name) == ([".dockerignore", "Dockerfile", "README.md", "axb"], "Dockerfile")
    outside = tmp_path / "build.Dockerfile"
    outside.write_bytes(b"FROM base\n# \xff\n")
    tar, name = engine.api_context(root, str(outside))
    with tar:
        files = tar_files(tar)
    assert name == engine.GENERATED_DOCKERFILE and files[name] == b"FROM base\n# \xff\n"
    assert files[".dockerignore"] == f".dockerignore\nDockerfile\na\\*b\n[^R]*.md\n\n{name}\n".encode()


def test_context_tar_names_are_the_file_names_bytes(tmp_path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM base\n")
    (tmp_path / ".dockerignore").write_bytes(b"caf\xe9.skip\n")
    for name in (b"caf\xe9.skip", b"caf\xe9.keep", "\u00e9t\u00e9".encode()):
        open(os.path.join(os.fsencode(tmp_path), name), "wb").close()
    os.symlink(b"caf\xe9.keep", os.path.join(os.fsencode(tmp_path), b"link"))
    tar, _ = engine.api_context(str(tmp_path), None)
    with tar:
        import tarfile

        archive = tarfile.open(fileobj=io.BytesIO(b"".join(tar)), encoding="utf-8", errors="surrogateescape")
        members = {m.name: m for m in archive.getmembers()}
    assert sorted(members) == [".dockerignore", "Dockerfile", "caf\udce9.keep", "link", "\u00e9t\u00e9"]
    assert members["link"].linkname == "caf\udce9.keep"


def test_a_context_tar_ends_with_its_two_zero_blocks(tmp_path) -> None:
    """As the docker CLI's: the engine stops reading there, and a connection closed with unread data
    (Python's padding to 10 KiB) is reset, which may cut off the end of the build's answer."""
    root = context(tmp_path, {"Dockerfile": "FROM base\n", "a.txt": "a\n"})
    for tar in (engine.plain_context(root, None), engine.api_context(root, None)[0],
                engine.labelled_context(root, None, {"k": "v"})[0]):
        with tar:
            data = b"".join(tar)
        assert len(data) % 512 == 0 and data.endswith(bytes(1024)) and data[-1536:-1024] != bytes(512)


def test_push_progress_off_a_tty_shows_each_kind_of_status_once_a_layer(capsys: pytest.CaptureFixture[str]) -> None:
    """The engine counts a retry down once a second (`Retrying in 5 seconds`, `... 4 seconds`, ...,
    `... 1 second`): off a TTY that was a line a second, ~50 lines in one failed push; the singular was a
    kind of its own."""
    from gitops_cli.engine import PushProgress

    def countdown(start: int) -> list[str]:  # as the engine words it (distribution/xfer)
        return [f"Retrying in {n} second{'s' if n != 1 else ''}" for n in range(start, 0, -1)]

    statuses = ["Preparing", "Waiting", "Pushing", "Pushing", *countdown(5), "Pushing", *countdown(10), "Pushing",
                "Pushed"]
    with PushProgress() as progress:
        for status in statuses:
            progress.update({"id": "a1b2c3", "status": status, "progressDetail": {}})
        progress.update({"id": "d4e5f6", "status": "Layer already exists", "progressDetail": {}})
    assert capsys.readouterr().err.splitlines() == [
        "a1b2c3: Preparing", "a1b2c3: Waiting", "a1b2c3: Pushing", "a1b2c3: Retrying in 5 seconds", "a1b2c3: Pushed",
        "d4e5f6: Layer already exists"]


def test_legacy_step_output_that_looks_like_the_builders_lines_is_output() -> None:
    """Between ` ---> Running in ID` and `Removing intermediate container ID` comes the step's output:
    a `Step N/M : ...` line there is no heading and no failing step, ` ---> ` and `Removing intermediate
    container` lines there are shown, and an unended last line before the builder's line is kept."""
    tracker, lines = feed_all([
        {"stream": "Step 1/3 : FROM base"}, {"stream": "\n"}, {"stream": " ---> f3ff64000536\n"},
        {"stream": "Step 2/3 : RUN printf x"}, {"stream": "\n"}, {"stream": " ---> Running in ba5ce0681715\n"},
        {"stream": "x"}, {"stream": "Removing intermediate container ba5ce0681715\n"},
        {"stream": " ---> 2fb837ab6755\n"},
        {"stream": "Step 3/3 : RUN ./fake.sh\n"}, {"stream": " ---> Running in 0dda67ba1b64\n"},
        {"stream": "Step 7/9 : RUN fake\n ---> abc\nRemoving intermediate container 123\nSuccessfully built 1\n"},
        {"stream": "Removing intermediate container 0dda67ba1b64\n"},
        {"errorDetail": {"code": 3, "message": "The command '/bin/sh -c ./fake.sh' returned a non-zero code: 3"}},
    ])
    headings = [line for line in lines if isinstance(line, engine.Heading)]
    assert headings == ["Step 1/3 : FROM base", "Step 2/3 : RUN printf x", "Step 3/3 : RUN ./fake.sh"]
    assert [line for line in lines if not isinstance(line, engine.Heading)] == [
        "x", "Step 7/9 : RUN fake", " ---> abc", "Removing intermediate container 123", "Successfully built 1"]
    assert tracker.image_id is None
    failure = tracker.failure()
    assert failure.message.startswith("image build failed at Step 3/3 : RUN ./fake.sh: ")
    assert list(failure.details[1:]) == ["  Step 7/9 : RUN fake", "   ---> abc",
                                         "  Removing intermediate container 123", "  Successfully built 1"]


def rich_context(tmp_path) -> str:
    """A context with what a tar header can make hard: long names (> 100 bytes), names and a link target
    that are not UTF-8, symbolic links, a hard link, empty directories, an empty file, executable bits, a
    fractional mtime, a file bigger than a chunk, a socket (left out) and a `.dockerignore`."""
    import socket

    root = os.fsencode(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM base\nCOPY . /ctx/\n")
    (tmp_path / ".dockerignore").write_bytes(b"*.skip\nbuild/out\n")
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / ("f" * 90 + ".txt")).write_text("deep\n")
    (tmp_path / "empty-dir" / "nested-empty").mkdir(parents=True)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "big.bin").write_bytes(os.urandom(2 * engine.CHUNK + 12345))
    os.link(tmp_path / "run.sh", tmp_path / "hard.sh")
    with open(os.path.join(root, b"caf\xe9.txt"), "wb") as fh:
        fh.write(b"latin-1 name\n")
    open(os.path.join(root, b"x.skip"), "wb").close()
    os.symlink(b"caf\xe9.txt", os.path.join(root, b"link-\xff"))
    os.symlink("empty-dir", tmp_path / "dir-link")
    os.symlink("does-not-exist", tmp_path / "dangling")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out").write_text("left out\n")
    (tmp_path / "build" / "keep").write_text("kept\n")
    os.utime(tmp_path / "run.sh", (1_700_000_000.75, 1_700_000_000.75))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp_path / "agent.sock"))
    sock.close()
    return str(tmp_path)


def tarfile_writes(root: str, entries: list[str], extra: list[tuple[str, bytes]]) -> bytes:
    """The context tar as tarfile itself writes it (TarFile.addfile), with the docker CLI's header
    normalisation, ended by two zero blocks: what gitops spooled to TMPDIR before it streamed the context."""
    import math
    import tarfile

    out = io.BytesIO()
    replaced = {name for name, _ in extra}
    with tarfile.open(mode="w", fileobj=out, encoding="utf-8", errors="surrogateescape") as tar:
        for path in entries:
            full = os.path.join(os.fsencode(root), path.encode("utf-8", "surrogateescape"))
            info = None if path in replaced else tar.gettarinfo(full, arcname=path)
            if info is None:
                continue
            if isinstance(info.linkname, bytes):
                info.linkname = info.linkname.decode("utf-8", "surrogateescape")
            info.mtime, info.uid, info.gid, info.uname, info.gname = math.floor(info.mtime), 0, 0, "", ""
            if info.isfile():
                with open(full, "rb") as source:
                    tar.addfile(info, source)
            else:
                tar.addfile(info)
        for name, content in extra:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        end = tar.offset + 2 * tarfile.BLOCKSIZE
    return out.getvalue()[:end]


@pytest.mark.parametrize("extra", [[], [(".dockerignore", b"*.skip\n" + engine.GENERATED_DOCKERFILE.encode()),
                                       (engine.GENERATED_DOCKERFILE, b"FROM base\nLABEL a=b\n")]])
def test_the_streamed_context_is_the_tar_tarfile_writes_byte_for_byte(tmp_path, extra) -> None:
    """The stream is the tar gitops spooled to TMPDIR with tarfile before (compared with that function,
    _context_tar, before it went): tarfile's headers with the docker CLI's normalisation, each file's
    data and padding, two zero blocks; sent in pieces of at most CHUNK bytes."""
    import tarfile

    from gitops_cli.dockerignore import BuildContext

    root = rich_context(tmp_path)
    entries = BuildContext.load(root, None).selection()
    assert any(len(path) > 100 for path in entries) and "agent.sock" in entries
    with engine.ContextStream(root, entries, extra) as stream:
        chunks = list(stream)
    data = b"".join(chunks)
    assert data == tarfile_writes(root, entries, extra)
    assert {len(chunk) for chunk in chunks[:-1]} == {engine.CHUNK} and 0 < len(chunks[-1]) <= engine.CHUNK
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8", errors="surrogateescape") as archive:
        members = {m.name: m for m in archive.getmembers()}
        big = archive.extractfile(members["big.bin"]).read()
    assert big == (tmp_path / "big.bin").read_bytes() and "agent.sock" not in members
    assert members["run.sh"].islnk() and members["run.sh"].linkname == "hard.sh" and members["hard.sh"].mode == 0o755
    assert members["link-\udcff"].linkname == "caf\udce9.txt" and members["empty-dir/nested-empty"].isdir()
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(0, 0, "", "")}
    assert members["hard.sh"].mtime == 1_700_000_000 and "build/out" not in members and "x.skip" not in members
    if extra:
        assert members[engine.GENERATED_DOCKERFILE].size == len(extra[1][1])


def started_stream(tmp_path) -> tuple[engine.ContextStream, Iterator[bytes], int]:
    """A context stream of a file bigger than a chunk (`a.bin`) and a small one (`b.txt`), started: its
    first piece has gone, a.bin's header and first bytes with it (how many: the int), and a.bin is open."""
    from gitops_cli.dockerignore import BuildContext

    root = context(tmp_path, {"Dockerfile": "FROM base\n", "b.txt": "b\n"})
    (tmp_path / "a.bin").write_bytes(bytes(3 * engine.CHUNK))
    stream = engine.ContextStream(root, BuildContext.load(root, None).selection(), [])
    chunks = iter(stream)
    first = next(chunks)
    sent = len(first) - first.index(b"a.bin") - 512  # after a.bin's header: its data
    assert len(first) == engine.CHUNK and 0 < sent < engine.CHUNK
    return stream, chunks, sent


@pytest.mark.parametrize("change, error", [
    (lambda p: os.truncate(p / "a.bin", 10),
     "a.bin changed while it was being sent (it shrank: {sent} of 3145728 bytes)"),
    (lambda p: os.truncate(p / "a.bin", 3 * engine.CHUNK + 1),
     "a.bin changed while it was being sent (it grew past 3145728 bytes)"),
    (lambda p: (p / "b.txt").unlink(), "cannot read b.txt: No such file or directory"),
])
def test_a_context_file_that_changes_or_fails_while_it_is_sent_stops_the_stream(tmp_path, change, error) -> None:
    """tarfile would have written a short member for a file that shrank (the rest of the tar shifted);
    now the stream stops with gitops' own error, which the request passes on (urllib3 closes the
    connection without the body's end: the engine builds nothing)."""
    stream, chunks, sent = started_stream(tmp_path)
    change(tmp_path)
    with stream, pytest.raises(UsageError) as exc:
        for _ in chunks:
            pass
    assert str(exc.value) == f"build context {tmp_path}: {error.format(sent=sent)}"
    assert exc.value.exit_code == 2


def test_a_context_stream_closed_early_closes_the_file_it_was_sending(tmp_path) -> None:
    stream, _, _ = started_stream(tmp_path)
    before = set(os.listdir("/proc/self/fd"))
    stream.close()
    assert len(before - set(os.listdir("/proc/self/fd"))) == 1
