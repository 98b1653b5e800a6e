"""Unit tests: choosing a rollback target from history, and the registry check before writing."""

from __future__ import annotations

import pytest

from gitops_cli.errors import InvalidReferenceError, NotFoundError, RefusedError, UsageError
from gitops_cli.history import HistoryEntry
from gitops_cli.imageref import parse
from gitops_cli.rollback import choose_target, settle_digest, verify_target

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
IMAGE = parse("registry.example.com/team/api")


def entry(tag: str | None, digest: str | None = None, commit: str = "c") -> HistoryEntry:
    return HistoryEntry(repository=IMAGE.normalized_name, name=IMAGE.name, tag=tag, digest=digest, previous=None,
                        commit=commit, date="2026-01-01T00:00:00+00:00", author="a <a@b>", subject="s")


HISTORY = [entry("3", D2, "c3"), entry("2", D1, "c2"), entry("1", None, "c1")]


def test_steps_pick_the_value_n_changes_ago_with_its_recorded_digest() -> None:
    target, recorded = choose_target(IMAGE, HISTORY, None, 1)
    assert str(target) == f"registry.example.com/team/api:2@{D1}" and recorded is HISTORY[1]
    target, _ = choose_target(IMAGE, HISTORY, None, 2)
    assert str(target) == "registry.example.com/team/api:1"


def test_steps_beyond_history_and_bad_steps() -> None:
    with pytest.raises(NotFoundError, match="has 2 recorded earlier value.s. to go back to; cannot go back 3"):
        choose_target(IMAGE, HISTORY, None, 3)  # 3 -> 2 -> 1: two values to go back to
    with pytest.raises(UsageError):
        choose_target(IMAGE, HISTORY, None, 0)


def test_to_tag_uses_the_newest_recorded_digest_or_none() -> None:
    target, recorded = choose_target(IMAGE, HISTORY, "2", 1)
    assert target.digest == D1 and recorded is HISTORY[1]
    target, recorded = choose_target(IMAGE, HISTORY, "0.9", 1)
    assert str(target) == "registry.example.com/team/api:0.9" and recorded is None
    with pytest.raises(InvalidReferenceError):
        choose_target(IMAGE, HISTORY, "bad tag!", 1)


def test_verify_refuses_a_deleted_tag_and_a_vanished_recorded_digest() -> None:
    target = IMAGE.with_tag("2").with_digest(D1)
    with pytest.raises(RefusedError, match="no longer exists"):
        verify_target(target, lambda ref: None)
    assert verify_target(target, lambda ref: D1) == D1  # tag still points at the recorded digest
    # tag moved to another image: references pinned by digest keep the recorded one, which must still exist
    pinned = {("a.yaml", 3): f"{IMAGE.name}:2@{D2}"}
    assert verify_target(target, lambda ref: D2 if ref.tag else D1) == D2
    assert settle_digest(target, D2, pinned, lambda ref: D1) == target
    with pytest.raises(RefusedError, match="recorded digest"):
        settle_digest(target, D2, pinned, lambda ref: None)


def test_a_moved_tag_is_refused_where_a_reference_rolled_back_carries_no_digest(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`image: R:v3` (tag only), bumped with R:v3@D (as build-and-bump does): the digest was kept in the
    message and the trailer, the file got the bare tag, which names another image now."""
    target = IMAGE.with_tag("2").with_digest(D1)
    bare = {("a.yaml", 3): f"{IMAGE.name}:3"}
    pinned = {("b.yaml", 5): f"{IMAGE.name}:3@{D2}"}
    recorded = entry("2", D1, "c2" * 20)
    for chosen in (bare, {**bare, **pinned}):
        with pytest.raises(RefusedError) as caught:
            settle_digest(target, D2, chosen, lambda ref: D1, recorded)
        assert caught.value.exit_code == 6
        assert caught.value.message == (
            f"{IMAGE.name}:2 now names another image ({D2}) than when it was deployed ({D1}, commit c2c2c2c2c2c2), "
            "and the references rolled back carry no digest (a.yaml:3): they would run the image the tag names now; "
            "refusing to roll back")
        assert f"point 2 back at {IMAGE.name}@{D1}" in (caught.value.hint or "")
        assert "--no-verify" in (caught.value.hint or "")
    assert "keeping the recorded digest" not in capsys.readouterr().err
    # the tag names the recorded image still: nothing to refuse, the digest is true
    assert settle_digest(target, D1, bare, lambda ref: D1, recorded) == target
    # not checked (--no-verify): the tag as it is, with a warning; no digest recorded that nothing written has
    assert settle_digest(target, None, bare, None, recorded) == target.with_digest(None)
    assert "a.yaml:3: no digest there: it gets the tag 2, whatever image it names now (not checked: " \
           f"--no-verify); it named {D1} when it was deployed, commit c2c2c2c2c2c2" in capsys.readouterr().err
    assert settle_digest(target, None, {**bare, **pinned}, None, recorded) == target  # b.yaml gets the digest
    assert settle_digest(target, None, pinned, None, recorded) == target
    # a target with no recorded digest: the tag, as always
    assert settle_digest(IMAGE.with_tag("2"), D2, bare, lambda ref: D2) == IMAGE.with_tag("2")


def test_steps_skip_entries_at_the_current_value() -> None:
    history = [entry("3", D2, "c4"), entry("3", None, "c3"), entry("2", D1, "c2"), entry("1", None, "c1")]
    target, recorded = choose_target(IMAGE, history, None, 1)
    assert str(target) == f"registry.example.com/team/api:2@{D1}" and recorded is history[2]
    target, _ = choose_target(IMAGE, history, None, 2)
    assert str(target) == "registry.example.com/team/api:1"
    with pytest.raises(NotFoundError, match="cannot go back 3"):
        choose_target(IMAGE, history, None, 3)
    # the same tag with another digest is another value
    history = [entry("3", D2, "c2"), entry("3", D1, "c1")]
    target, _ = choose_target(IMAGE, history, None, 1)
    assert target.digest == D1


def test_a_commit_with_several_forms_records_the_tag_and_the_digest() -> None:
    from gitops_cli.history import _entry_values

    repo = IMAGE.normalized_name
    new = {f"2@{D2}", f"@{D2}", "2"}
    # bump --image NAME:2 writes a trailer without digest: the digest comes from the files
    assert _entry_values([f"{IMAGE.name}:2"], repo, new) == [f"2@{D2}"]
    assert _entry_values([], repo, new) == [f"2@{D2}"]
    # a tag-only form and a digest-only form: the one digest goes with the tag
    assert _entry_values([f"{IMAGE.name}:2"], repo, {"2", f"@{D2}"}) == [f"2@{D2}"]
    # the digest the files pin is what was deployed; a trailer's digest is used when they pin none
    assert _entry_values([f"{IMAGE.name}:2@{D1}"], repo, new) == [f"2@{D2}"]
    assert _entry_values([f"{IMAGE.name}:2@{D1}"], repo, {"2"}) == [f"2@{D1}"]
    # a digest-only pin (`repo@sha256:...`, kustomize/Helm digest without tag): the tag is the trailer's
    assert _entry_values([f"{IMAGE.name}:2"], repo, {f"@{D2}"}) == [f"2@{D2}"]
    assert _entry_values([f"{IMAGE.name}:2"], repo, {f"@{D2}", f"2@{D2}"}) == [f"2@{D2}"]
    assert _entry_values([], repo, {f"@{D2}"}) == [f"@{D2}"]  # by hand: no tag to know
    assert _entry_values([f"{IMAGE.name}:2"], repo, {"3"}) == ["3"]  # the files win over a wrong trailer
    # two different digests, no trailer: the tag alone is not guessed a digest
    assert _entry_values([], repo, {"2", f"@{D1}", f"@{D2}"}) == ["2"]


def test_a_commit_setting_several_tags_records_them_all_not_a_guess() -> None:
    """Two containers of one repository at two tags (`app:v1`, `app:v1-debug`): the entry was the longest
    value, `v1-debug`, and rollback put the debug tag into the app container."""
    from gitops_cli.history import _entry_values

    repo = IMAGE.normalized_name
    assert _entry_values([], repo, {"v1", "v1-debug"}) == ["v1", "v1-debug"]
    assert _entry_values([], repo, {f"@{D1}", f"@{D2}"}) == [f"@{D1}", f"@{D2}"]
    # a trailer naming one of two tags the files hold does not make the other go away
    assert _entry_values([f"{IMAGE.name}:v1"], repo, {"v1", "v1-debug"}) == ["v1", "v1-debug"]
    several = HistoryEntry(repository=IMAGE.normalized_name, name=IMAGE.name, tag=None, digest=None,
                           previous=None, commit="c1", date="d", author="a", subject="s", values=["1", "1-debug"])
    assert several.several and several.value == "1, 1-debug" and not entry("2").several
    # the value to go back to is several: refused (exit 3), naming them and how to choose
    with pytest.raises(NotFoundError) as caught:
        choose_target(IMAGE, [entry("2", None, "c2"), several], None, 1)
    assert caught.value.exit_code == 3
    assert caught.value.message == ("registry.example.com/team/api: the value 1 change(s) ago is several values "
                                    "(1, 1-debug, commit c1); which one to go back to is not guessed")
    assert "--container" in (caught.value.hint or "") and "--path" in (caught.value.hint or "")
    # --to one of them: that one
    assert choose_target(IMAGE, [entry("2", None, "c2"), several], "1-debug", 1)[0].tag == "1-debug"
    # rolling back from several values would set them all to one: refused
    with pytest.raises(NotFoundError, match=r"was last set to several values \(1, 1-debug, commit c1\)"):
        choose_target(IMAGE, [several, entry("0")], None, 1)
    with pytest.raises(NotFoundError, match="several values"):
        choose_target(IMAGE, [several, entry("0")], "0", 1)
    # several values are one value only when they are the same ones
    history = [entry("3", None, "c3"), several, several, entry("0", None, "c0")]
    with pytest.raises(NotFoundError, match="several"):
        choose_target(IMAGE, history, None, 1)
    assert choose_target(IMAGE, history, None, 2)[0].tag == "0"


def test_steps_count_consecutive_entries_at_one_value_once() -> None:
    """staging -> 2, then prod -> 2 (two entries), then everything -> 3: two steps back is 1, not 2 again."""
    history = [entry("3", None, "c4"), entry("2", None, "c3"), entry("2", None, "c2"), entry("1", None, "c1")]
    target, recorded = choose_target(IMAGE, history, None, 1)
    assert target.tag == "2" and recorded is history[1]  # the newest entry of the change
    target, recorded = choose_target(IMAGE, history, None, 2)
    assert target.tag == "1" and recorded is history[3]
    with pytest.raises(NotFoundError, match="has 2 recorded earlier value.s. to go back to; cannot go back 3"):
        choose_target(IMAGE, history, None, 3)
    # a digest recorded in one entry and not the other is the same value; two digests are two values
    history = [entry("3", None, "c4"), entry("2", D1, "c3"), entry("2", None, "c2"), entry("2", D2, "c1")]
    assert choose_target(IMAGE, history, None, 1)[0].digest == D1
    assert choose_target(IMAGE, history, None, 2)[0].digest == D2


def test_verify_says_a_tag_no_history_entry_has_does_not_exist() -> None:
    """`--to v9` for a tag never deployed (nor, the registry says, pushed): not "no longer exists"."""
    with pytest.raises(RefusedError) as caught:
        verify_target(IMAGE.with_tag("9"), lambda ref: None, unrecorded="the history")
    assert caught.value.message == ("registry.example.com/team/api:9 does not exist in the registry (and no value "
                                    "in the history has that tag); refusing to roll back to it")
    assert "no longer" not in caught.value.message and "--no-verify" in (caught.value.hint or "")
    verify_target(IMAGE.with_tag("9"), lambda ref: D1, unrecorded="the history")  # it exists: fine


def test_exit_code_3_documents_rollback_steps_beyond_the_history() -> None:
    from gitops_cli.errors import EXIT_CODES

    with pytest.raises(NotFoundError) as caught:
        choose_target(IMAGE, HISTORY, None, 5)
    assert caught.value.exit_code == 3 and "--steps N" in EXIT_CODES[3]


def test_undo_selects_the_references_at_the_value_in_the_files_of_the_change() -> None:
    """A rollback changes what the change rolled back set: references at its value (its tag, and its digest
    where both have one), in the files of the newest entries at that value; others at that value are noted."""
    from gitops_cli.rollback import Undo
    from gitops_cli.yamledit import locate

    def at(value: str, files: list[str], commit: str) -> HistoryEntry:
        tag, _, digest = value.partition("@")
        found = entry(tag or None, digest or None, commit)
        found.files = files
        return found

    history = [at(f"3@{D2}", ["prod.yaml"], "c4"), at("3", ["staging.yaml"], "c3"), at("2", ["dev.yaml"], "c2")]
    undo = Undo(history)
    assert undo.files == {"prod.yaml", "staging.yaml"}  # one change set env by env; dev's is another
    name = IMAGE.name
    text = (f"containers:\n- name: a\n  image: {name}:3\n- name: b\n  image: {name}:3@{D2}\n"
            f"- name: c\n  image: {name}@{D2}\n- name: d\n  image: {name}:3@{D1}\n- name: e\n  image: {name}@{D1}\n"
            f"- name: f\n  image: {name}:2\n")
    kustomization = f"images:\n- name: {name}\n  digest: {D2}\n- name: {name}\n  newTag: '2'\n  digest: {D2}\n"
    refs = {ref.container or "k": ref for ref in locate(text).references}
    assert {c for c, ref in refs.items() if undo("prod.yaml", ref)} == {"a", "b", "c"}
    assert [undo("staging.yaml", ref) for ref in locate(kustomization, filename="kustomization.yaml").references] == [
        True, False]
    assert not undo.left
    assert not any(undo("dev.yaml", ref) for ref in refs.values())  # a file the change did not set
    assert sorted(undo.left) == [("dev.yaml", 3), ("dev.yaml", 5), ("dev.yaml", 7)]


def test_undo_records_every_value_it_sees_not_the_old_values_of_the_bump(tmp_path) -> None:
    """Undo's recorded values (the guard's) and bump.old_values (`{old}`) read different things, and are kept
    apart: a reference left as it is (a v3 landed over the v2 rolled back, one already at the target) is
    among the former, never the latter, and the guard is there for just that one."""
    from gitops_cli.bump import compute_edits, old_values
    from gitops_cli.rollback import Undo

    current = entry("2", None, "c2")
    current.files = ["app.yaml"]
    undo = Undo([current])
    name = IMAGE.name
    (tmp_path / "app.yaml").write_text(f"containers:\n- name: a\n  image: {name}:2\n- name: b\n  image: {name}:3\n"
                                       f"- name: c\n  image: {name}:1\n")
    target = IMAGE.with_tag("1")
    edits, _, _ = compute_edits(tmp_path, [target], select=undo)
    assert old_values(target, edits) == ["2"]  # the one reference changed
    assert undo.take() == {("2", None), ("3", None), ("1", None)}  # every one seen in the file


def test_a_value_without_a_tag_is_named_not_shown_empty() -> None:
    """`image: team/api` (no tag) some steps back: the message said `the value 1 change(s) ago () has no tag`."""
    with pytest.raises(NotFoundError) as caught:
        choose_target(IMAGE, [entry("2", None, "c2"), entry(None, None, "c1" * 10)], None, 1)
    assert caught.value.exit_code == 3
    assert caught.value.message == (f"{IMAGE.name}: the value 1 change(s) ago is the image without a tag "
                                    f"(`{IMAGE.name}`: whatever its `latest` names), no tag to go back to "
                                    "(commit c1c1c1c1c1c1)")
    assert "()" not in caught.value.message and "--to" in (caught.value.hint or "")
    with pytest.raises(NotFoundError) as caught:
        choose_target(IMAGE, [entry("2", None, "c2"), entry(None, D1, "c1")], None, 1)
    assert caught.value.message == (f"{IMAGE.name}: the value 1 change(s) ago is pinned by digest only "
                                    f"({IMAGE.name}@{D1}), with no tag recorded to go back to (commit c1)")


def test_nothing_to_roll_back_names_the_change_and_the_references_left() -> None:
    """A rollback that changes no reference, its target another value: exit 3 naming why, not "up to date"."""
    from gitops_cli.rollback import Undo, nothing_to_roll_back
    from gitops_cli.yamledit import locate

    current = entry("3", None, "c3" * 20)
    current.files, current.commit_files = ["a.yaml"], ["a.yaml"]
    undo = Undo([current, entry("2", None, "c2")])
    refs = locate(f"containers:\n- name: a\n  image: {IMAGE.name}:2\n- name: b\n  image: {IMAGE.name}:1\n").references
    assert not any(undo("b.yaml", ref) for ref in refs)
    error = nothing_to_roll_back(IMAGE.with_tag("2"), current, undo)
    assert error.exit_code == 3
    assert error.message == (f"{IMAGE.name}: nothing rolled back from 3 to 2: the change rolled back (commit "
                             "c3c3c3c3c3c3) set 3 in a.yaml, and no reference there is at 3 now (changed since); the "
                             "references found were left as they are: b.yaml:3 (2), b.yaml:5 (1)")
    assert error.hint == ("roll back where the image is now, by that path's own history: `gitops rollback --path "
                          "b.yaml` (see `gitops history --path b.yaml`), or to a value you choose with --to")
    error = nothing_to_roll_back(IMAGE.with_tag("2"), current, undo, to_given=True)  # --to 2: the user's value
    assert error.hint == ("roll back where the image is now: `gitops rollback --path b.yaml --to 2` (see `gitops "
                          "history --path b.yaml`)")
    # files gone from the tree; every reference found at the target already
    current.files = []
    undo = Undo([current])
    assert not undo("env/b.yaml", refs[0])
    error = nothing_to_roll_back(IMAGE.with_tag("2"), current, undo)
    assert error.message.endswith("(commit c3c3c3c3c3c3: a.yaml) holds no file of the tree now (deleted since, or "
                                  "by that change); the references found were left as they are: env/b.yaml:3 (2), "
                                  "every one at 2 already")
    assert error.hint == "see `gitops history`: roll back one environment with `--path DIR --to TAG`"
