"""Signed audit entries: a forged, altered or misattributed entry is detected.

Keys of other people are made here as files and given to the store's audit log as its
signer (tests/integration/test_store_users.py has a real second OS user append to the
log of a group-write store)."""

import base64
import json
import os

import pytest

from snakemake_human_gate import gate
from snakemake_human_gate.audit import line_hash
from snakemake_human_gate.cli import main
from snakemake_human_gate.errors import NotPermitted
from snakemake_human_gate.signing import (
    ENV_KEY,
    Signer,
    SigningError,
    load_signer,
    make_signer,
    register,
)
from snakemake_human_gate.store import GateStore, current_user
from snakemake_human_gate.verify import verify_store

pytest.importorskip("cryptography")  # the [signing] extra; the tests install it


@pytest.fixture
def keys(tmp_path, monkeypatch):
    """A signer per user name (this process's user: the store's owner, with its key)."""
    made = {}

    def key(user):
        if user not in made:
            monkeypatch.setenv(ENV_KEY, str(tmp_path / "keys" / user))
            made[user] = make_signer(user)
        return made[user]

    monkeypatch.setenv(ENV_KEY, str(tmp_path / "keys" / current_user()))
    return key


@pytest.fixture
def store(tmp_path, keys, capsys):
    """A store whose owner registered their key (``key create``) and alice's and bob's,
    with a gate that alice and bob may decide."""
    root = tmp_path / "gates"
    GateStore(root)
    owner = current_user()
    keys(owner)
    os.environ[ENV_KEY] = str(tmp_path / "keys" / owner)
    assert main(["--dir", str(root), "key", "create", "--server"]) == 0
    for user in ("alice", "bob"):
        public = base64.b64encode(keys(user).public).decode()
        os.environ[ENV_KEY] = str(tmp_path / "keys" / owner)
        assert main(["--dir", str(root), "key", "add", user, public]) == 0
    capsys.readouterr()
    store = GateStore(root)
    artifact = tmp_path / "m.json"
    artifact.write_text("{}")
    store.ask(
        rule="review",
        wildcards={},
        inputs=[artifact],
        output=tmp_path / "out.json",
        spec=gate("Ship?", approvers=["alice", "bob"]),
        requested_by=owner,
    )
    return store


def gate_id(store):
    return store.scan()[0][0].id


def as_user(store, signer: Signer) -> GateStore:
    """The store as written to by ``signer``'s user."""
    other = GateStore(store.root)
    other.audit._signer = signer
    return other


def append_forged(store, entry: dict, signer: Signer | None = None) -> None:
    """An entry chained onto the log and the head brought up to date: what anyone who
    may write both files can do."""
    log = store.audit.path
    last = log.read_bytes().splitlines(keepends=True)[-1]
    seq = json.loads(last)["seq"] + 1
    entry = {"seq": seq, "ts": 1.0, "prev": line_hash(last), **entry}
    line = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    if signer:
        line = signer.seal(line)
    with open(log, "ab") as f:
        f.write(line)
    store.audit.head.write_text(f"{seq} {line_hash(line)}\n")


def test_entries_are_signed_and_verify(store, keys):
    gid = gate_id(store)
    as_user(store, keys("alice")).decide(gid, "approve", actor="alice")
    report = verify_store(store)
    assert report.ok, report.problems
    assert report.signed == "from entry 2 on, by registered keys"  # 1: the first key added
    last = json.loads(store.audit.path.read_bytes().splitlines()[-1])
    assert (last["actor"], last["signer"], last["key"]) == ("alice", "alice", keys("alice").id)


def test_an_unsigned_forged_entry_is_detected(store):
    gid = gate_id(store)
    append_forged(store, {"event": "decided", "gate": gid, "actor": "alice", "choice": "approve"})
    assert store.audit.verify().ok  # the chain alone cannot tell
    report = verify_store(store)
    assert not report.ok
    assert "not signed (it names alice)" in report.problems[0]


def test_an_entry_signed_by_one_member_in_anothers_name_is_detected(store, keys):
    gid = gate_id(store)
    forged = {"event": "decided", "gate": gid, "actor": "alice", "choice": "approve"}
    append_forged(store, {**forged, "signer": "bob", "key": keys("bob").id}, keys("bob"))
    report = verify_store(store)
    assert "signed by bob but names alice" in report.problems[0]


def test_an_altered_signed_entry_is_detected_even_with_the_chain_rebuilt(store, keys):
    gid = gate_id(store)
    as_user(store, keys("alice")).decide(gid, "approve", actor="alice", comment="ok")
    log = store.audit.path
    lines = log.read_bytes().splitlines(keepends=True)
    lines[-1] = lines[-1].replace(b'"comment":"ok"', b'"comment":"OK"')
    log.write_bytes(b"".join(lines))
    store.audit.head.write_text(f"{len(lines)} {line_hash(lines[-1])}\n")
    report = verify_store(store)
    assert any("its signature by alice does not match" in p for p in report.problems)


def test_a_key_nobody_registered_is_not_trusted(store, keys):
    gid = gate_id(store)
    with pytest.raises(NotPermitted):  # refused, and audited: signed with her own key
        as_user(store, keys("mallory")).decide(gid, "approve", actor="mallory")
    report = verify_store(store)
    assert any(
        "a key of mallory that the store's owner did not register" in p for p in report.problems
    )


def test_the_servers_key_may_name_the_users_it_authenticated(store, keys):
    gid = gate_id(store)
    server = load_signer(current_user())
    as_user(store, server).decide(gid, "approve", actor="alice", via="api@127.0.0.1")
    assert verify_store(store).ok


def test_a_decision_by_someone_who_may_not_decide_is_detected(store, keys):
    """A member writes the answer and its entry herself, signed, bypassing the store."""
    gid = gate_id(store)
    carol = keys("carol")
    os.environ[ENV_KEY] = str(store.root.parent / "keys" / current_user())
    register(store.tree, "carol", carol.public, False, 1)
    line = {"id": "c" * 16, "vote": {"by": "carol", "choice": "approve", "fields": {},
            "comment": "", "at": 1.0, "via": "cli@x"}, "decision": None}  # fmt: skip
    append_forged(
        store,
        {"event": "voted", "gate": gid, "actor": "carol", "choice": "approve",
         "answer": "c" * 16, "signer": "carol", "key": carol.id},
        carol,
    )  # fmt: skip
    seq = json.loads(store.audit.path.read_bytes().splitlines()[-1])["seq"]
    with open(store.answers_path(gid), "a") as f:
        f.write(json.dumps(line) + "\n" + json.dumps({"ack": "c" * 16, "seq": seq}) + "\n")
    report = verify_store(store)
    assert any("carol is not one of the gate's approvers" in p for p in report.problems)


def test_a_gate_changed_after_it_was_asked_is_detected(store):
    gid = gate_id(store)
    record = json.loads(store.path(gid).read_text())
    record["spec"]["approvers"] = None  # anyone, now
    store.path(gid).write_text(json.dumps(record))
    report = verify_store(store)
    assert any("changed after it was asked" in p for p in report.problems)


def test_a_registry_removed_or_replaced_is_detected(store):
    (store.root / "keys" / "keys.json").chmod(0o666)
    assert "writable by nobody else" in verify_store(store).problems[0]
    (store.root / "keys").rename(store.root / "keys.old")
    report = verify_store(store)
    assert (
        "entries are signed (the first: entry 1) but the store has no key registry"
        in (report.problems[0])
    )


def test_only_the_owner_registers_keys(store, keys, capsys):
    before = len(list(store.audit.entries()))
    os.chown(store.root, 12345, -1)
    try:
        with pytest.raises(SigningError, match="only the store's owner .* may register keys"):
            register(store.tree, "alice", keys("alice").public, False, 1)
        public = base64.b64encode(keys("carol").public).decode()
        assert main(["--dir", str(store.root), "key", "add", "carol", public]) == 1
    finally:
        os.chown(store.root, os.geteuid(), -1)
    assert "only the store's owner (uid 12345)" in capsys.readouterr().err
    assert len(list(store.audit.entries())) == before  # no entry says it was done


def test_writers_without_a_key_are_told(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV_KEY, str(tmp_path / "no-such-key"))
    assert main(["--dir", str(store.root), "reject", gate_id(store)]) == 4  # not an approver
    err = capsys.readouterr().err
    assert "this store's audit entries are signed, but you have no signing key" in err
    assert "not signed" in verify_store(store).problems[0]
