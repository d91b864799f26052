"""No path of a store is followed through a link, at any component; only regular files
are opened, without blocking, their size known before they are read."""

import os
import shutil
import threading
import time

import pytest

from snakemake_human_gate import gate
from snakemake_human_gate.auth import TokenStore
from snakemake_human_gate.store import GateStore, file_digest, gate_id
from snakemake_human_gate.storefs import UnsafeFile
from snakemake_human_gate.webhooks import WebhookSecrets

PRECIOUS = b"precious: must never change\n"
LINK = "is a symbolic link"


@pytest.fixture
def outside(tmp_path):
    """A file outside the store that a planted link points to."""
    path = tmp_path / "outside.txt"
    path.write_bytes(PRECIOUS)
    return path


def ask(store, artifact, run="1"):
    record, _ = store.ask(
        rule="review",
        wildcards={"run": run},
        inputs=[artifact],
        output=artifact.parent / "out.json",
        spec=gate("Ship?"),
        requested_by="runner",
    )
    return record


def plant(link, target):
    """Replace ``link`` (if there) by a symbolic link to ``target``."""
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    elif link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)


def within(seconds, action):
    """``action()``'s outcome (its value or the error it raised), failing the test if it
    does not end in time (a FIFO opened for reading would block it for ever)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = action()
        except BaseException as e:  # noqa: BLE001 (handed to the test)
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    return outcome.get("error", outcome.get("value"))


def test_a_linked_answers_file_is_refused_not_appended_to(store, artifact, outside):
    record = ask(store, artifact)
    plant(store.answers_path(record.id), outside)
    with pytest.raises(UnsafeFile, match=LINK):
        store.decide(record.id, "approve", actor="alice")
    with pytest.raises(UnsafeFile, match=LINK):
        store.get(record.id)
    assert [p.path.name for p in store.scan()[1]] == [f"{record.id}.json"]
    assert outside.read_bytes() == PRECIOUS


def test_a_link_planted_where_a_gate_will_write_its_answers_is_not_truncated(
    store, artifact, outside
):
    gid = gate_id("review", {"run": "1"}, [file_digest(artifact)])
    plant(store.root / "gates" / f"{gid}.answers", outside)
    with pytest.raises(UnsafeFile, match=LINK):
        ask(store, artifact)
    assert outside.read_bytes() == PRECIOUS and not store.has(gid)


@pytest.mark.parametrize("name", ["audit.jsonl", "audit.head", "store.json"])
def test_linked_files_at_the_root_are_refused(store, artifact, outside, name):
    record = ask(store, artifact)
    plant(store.root / name, outside)
    with pytest.raises(UnsafeFile, match=LINK):
        if name == "store.json":
            GateStore(store.root)
        else:
            store.decide(record.id, "approve", actor="alice")
    assert outside.read_bytes() == PRECIOUS


def test_a_linked_lock_file_is_refused(store, artifact, outside):
    record = ask(store, artifact)
    plant(store.root / "locks" / f"{record.id}.lock", outside)
    with pytest.raises(UnsafeFile, match=LINK):
        store.decide(record.id, "approve", actor="alice")
    assert outside.read_bytes() == PRECIOUS


def test_a_link_in_place_of_a_gate_record_is_not_read(store, artifact, tmp_path):
    record = ask(store, artifact)
    forged = tmp_path / "forged.json"
    shutil.copy(store.path(record.id), forged)
    plant(store.path(record.id), forged)
    with pytest.raises(UnsafeFile, match=LINK):
        store.get(record.id)
    assert not store.has(record.id)


@pytest.mark.parametrize("directory", ["gates", "locks", "archive"])
def test_a_linked_directory_is_refused_for_reads_writes_and_moves(
    store, artifact, tmp_path, directory
):
    record = ask(store, artifact)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(store.root / directory, elsewhere)
    before = sorted(p.name for p in elsewhere.iterdir())
    plant(store.root / directory, elsewhere)
    with pytest.raises(UnsafeFile, match=LINK):
        store.reset(record.id, actor="alice")  # reads gates/, locks it, moves to archive/
    if directory != "archive":
        with pytest.raises(UnsafeFile, match=LINK):
            store.decide(record.id, "approve", actor="alice")
    assert sorted(p.name for p in elsewhere.iterdir()) == before


def test_a_hard_link_to_a_file_elsewhere_is_not_written_through(store, artifact, outside):
    record = ask(store, artifact)
    store.answers_path(record.id).unlink()
    os.link(outside, store.answers_path(record.id))
    with pytest.raises(UnsafeFile, match="2 hard links"):
        store.decide(record.id, "approve", actor="alice")
    assert outside.read_bytes() == PRECIOUS


@pytest.mark.parametrize("name", ["auth", "auth/tokens.json", "auth/tokens.json.lock"])
def test_links_among_the_secrets_are_refused(store, tmp_path, name):
    tokens = TokenStore(store.root, store.share)
    tokens.create("alice")
    elsewhere = tmp_path / "elsewhere"
    if name == "auth":
        shutil.copytree(store.root / "auth", elsewhere)
    else:
        shutil.copy(store.root / "auth" / "tokens.json", elsewhere)
    before = elsewhere.stat().st_mtime_ns
    plant(store.root / name, elsewhere)
    with pytest.raises(UnsafeFile, match=LINK):
        tokens.create("bob")
    assert elsewhere.stat().st_mtime_ns == before


def test_a_linked_directory_of_seen_signatures_is_refused(store, tmp_path):
    senders = WebhookSecrets(store.root, store.share)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    plant(store.root / "auth" / "seen-signatures", tmp_path / "elsewhere")
    with pytest.raises(UnsafeFile, match=LINK):
        senders.first_use("sha256=" + "0" * 64, time.time())
    assert list((tmp_path / "elsewhere").iterdir()) == []


# -- FIFOs and devices --------------------------------------------------------------


def test_a_fifo_in_place_of_answers_never_blocks(store, artifact):
    record = ask(store, artifact)
    store.answers_path(record.id).unlink()
    os.mkfifo(store.answers_path(record.id), 0o600)
    for action in (
        lambda: store.get(record.id),
        lambda: store.decide(record.id, "approve", actor="alice"),
        lambda: store.reset(record.id, actor="alice"),
    ):
        error = within(5, action)
        assert isinstance(error, UnsafeFile) and "is a FIFO, not a regular file" in str(error)
    (problem,) = within(5, store.scan)[1]
    assert "is a FIFO" in problem.reason


def test_a_fifo_in_place_of_the_audit_log_or_a_lock_never_blocks(store, artifact):
    record = ask(store, artifact)
    (store.root / "locks" / f"{record.id}.lock").unlink()
    os.mkfifo(store.root / "locks" / f"{record.id}.lock")
    error = within(5, lambda: store.decide(record.id, "approve", actor="alice"))
    assert isinstance(error, UnsafeFile) and "is a FIFO" in str(error)
    (store.root / "audit.jsonl").unlink()
    os.mkfifo(store.root / "audit.jsonl")
    error = within(5, lambda: list(store.audit.entries()))
    assert isinstance(error, UnsafeFile) and "is a FIFO" in str(error)


def test_an_input_that_is_a_fifo_or_a_device_is_refused_unread(store, tmp_path):
    fifo = tmp_path / "plot.png"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")  # an artifact's own links are followed: not a store path
    for path, kind in ((fifo, "a FIFO"), (zero, "a character device")):
        error = within(5, lambda p=path: ask(store, p))
        assert isinstance(error, UnsafeFile) and f"is {kind}, not a regular file" in str(error)
