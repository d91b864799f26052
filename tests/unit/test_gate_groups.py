"""Approver groups: from the store's group file (the owner's alone) or the OS groups."""

import grp
import os
import pwd

import pytest

from snakemake_human_gate import gate
from snakemake_human_gate.errors import NotPermitted
from snakemake_human_gate.groups import Groups, read_file, set_group
from snakemake_human_gate.ownerfiles import OwnerFileError
from snakemake_human_gate.store import GateStore


def ask(store, artifact, approvers):
    record, _ = store.ask(
        rule="review",
        wildcards={},
        inputs=[artifact],
        output=artifact.parent / "out.json",
        spec=gate("Ship?", approvers=approvers),
        requested_by="runner",
    )
    return record.id


def test_a_group_of_the_store_file_lets_its_members_decide_and_the_log_says_so(store, artifact):
    set_group(store.tree, "leads", ["alice", "bob"], store.share)
    gid = ask(store, artifact, ["carol", "@leads"])
    with pytest.raises(NotPermitted, match="eve may not decide"):
        store.decide(gid, "approve", actor="eve")
    assert store.decide(gid, "approve", actor="bob").decision.by == ["bob"]
    decided = [e for e in store.audit.entries() if e["event"] == "decided"]
    assert [(e["actor"], e["as"]) for e in decided] == [("bob", "@leads")]


def test_an_os_group_is_used_when_the_store_file_does_not_define_it(store, artifact):
    me = pwd.getpwuid(os.geteuid()).pw_name
    mine = grp.getgrgid(os.getegid()).gr_name  # this user's primary group
    gid = ask(store, artifact, [f"@{mine}"])
    assert store.decide(gid, "approve", actor=me).decision.by == [me]
    assert Groups(store.tree).unknown(["@no-such-group-here", f"@{mine}", "alice"]) == [
        "@no-such-group-here"
    ]


def test_a_group_file_others_could_write_is_never_used(store, artifact):
    set_group(store.tree, "leads", ["alice"], store.share)
    gid = ask(store, artifact, ["@leads"])
    path = store.root / "keys" / "groups.json"
    os.chmod(path, 0o664)  # group-writable: any member could add themselves
    with pytest.raises(OwnerFileError, match="writable by nobody else"):
        store.decide(gid, "approve", actor="alice")
    os.chmod(path, 0o644)
    if os.geteuid() == 0:  # replaced by a member's own file
        os.chown(path, 4321, -1)
        with pytest.raises(OwnerFileError, match="must belong to the store's owner"):
            read_file(store.tree)
        os.chown(path, 0, -1)
    refused = [e["reason"] for e in store.audit.entries() if e["event"] == "refused"]
    assert refused == ["untrusted groups"]
    assert store.decide(gid, "approve", actor="alice").decision.by == ["alice"]


def test_only_the_owner_sets_groups_and_a_group_write_store_becomes_sticky(tmp_path, monkeypatch):
    store = GateStore(tmp_path / "team", share="group-write")
    done = set_group(store.tree, "leads", ["alice"], store.share)
    assert done and os.stat(store.root).st_mode & 0o1000  # members cannot move keys/ away
    assert os.stat(store.root / "keys").st_mode & 0o777 == 0o755
    monkeypatch.setattr(os, "geteuid", lambda: 4321)
    with pytest.raises(OwnerFileError, match="only the store's owner .* may change approver"):
        set_group(store.tree, "leads", ["mallory"], store.share)
    monkeypatch.undo()
    assert read_file(store.tree) == {"leads": ["alice"]}


def test_a_group_file_alone_does_not_make_the_store_a_signed_one(
    store, artifact, tmp_path, monkeypatch
):
    """keys/ holds the groups too: only a key registry asks writers for a key."""
    from snakemake_human_gate.signing import ENV_KEY

    monkeypatch.setenv(ENV_KEY, str(tmp_path / "no-key"))  # this user has no key
    set_group(store.tree, "leads", ["alice"], store.share)
    fresh = GateStore(store.root)
    ask(fresh, artifact, ["@leads"])
    assert fresh.audit.warnings == []
