"""A group-write store (the documented team set-up) attacked by another member: a real
second OS user, made by this test, plants links, FIFOs and hard links in it; what the
owner does next refuses them, never hangs, and changes nothing outside the store.

Needs root (to make the user); CI runs as root, so these run there."""

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from snakemake_human_gate.audit import line_hash
from snakemake_human_gate.auth import TokenStore
from snakemake_human_gate.store import GateStore
from tests.integration.gatehelp import gate_cli
from tests.integration.gateserver import ask

pytestmark = pytest.mark.integration

ATTACKER = "hgate-mallory"
GROUP = "hgate-team"
PRECIOUS = b"root's alone: must never change\n"


@pytest.fixture(scope="module")
def mallory():
    """A throwaway user in a throwaway group, removed afterwards."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("making a second OS user needs root and useradd")
    subprocess.run(["groupadd", "-f", GROUP], check=True)
    subprocess.run(["userdel", ATTACKER], capture_output=True)
    subprocess.run(["useradd", "-M", "-N", "-g", GROUP, ATTACKER], check=True)
    yield ATTACKER
    subprocess.run(["userdel", ATTACKER], check=True)
    subprocess.run(["groupdel", GROUP], check=True)


def as_mallory(*argv: str) -> subprocess.CompletedProcess:
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return subprocess.run(
        [runuser, "-u", ATTACKER, "--", *argv], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def team(mallory):
    """A group-write store owned by root and the team's group, a gate in it, and a file
    of root's that mallory cannot touch."""
    base = Path("/tmp") / f"hgate-users-{uuid.uuid4().hex[:8]}"
    base.mkdir(mode=0o755)
    root_only = base / "root-only"
    root_only.write_bytes(PRECIOUS)
    root_only.chmod(0o600)
    store_dir = base / "gates"
    store_dir.mkdir()
    shutil.chown(store_dir, group=GROUP)
    store_dir.chmod(0o2770)
    store = GateStore(store_dir, share="group-write")
    record = ask(store, base)
    TokenStore(store.root, store.share).create("alice")
    try:
        yield store, record.id, root_only
    finally:
        shutil.rmtree(base)


def test_mallory_cannot_reach_what_the_attack_is_after(team):
    store, gid, root_only = team
    assert as_mallory("cat", str(root_only)).returncode != 0
    assert as_mallory("cat", str(store.root / "auth" / "tokens.json")).returncode != 0
    link = as_mallory("ln", "-s", str(root_only), str(store.root / "auth" / "tokens.json"))
    assert link.returncode != 0  # auth/ is root's alone
    # the kernel refuses her a hard link to a file she may not read and write
    hard = as_mallory("ln", str(root_only), str(store.root / "gates" / "planted"))
    assert hard.returncode != 0 and "Operation not permitted" in hard.stderr


@pytest.mark.parametrize(
    "planted", ["audit.head", "audit.jsonl", "gates/{gid}.answers", "locks/{gid}.lock"]
)
def test_links_planted_by_another_member_are_refused_by_the_owner(team, planted):
    store, gid, root_only = team
    link = store.root / planted.format(gid=gid)
    plant = as_mallory("ln", "-sfn", str(root_only), str(link))
    assert plant.returncode == 0, plant.stderr  # group-write: she may
    approve = gate_cli(store.root, "approve", gid)
    assert approve.returncode == 1, approve.stdout
    assert f"{link} is a symbolic link, not a regular file" in approve.stderr
    assert root_only.read_bytes() == PRECIOUS
    assert "decided" not in (store.root / "audit.jsonl").read_text()


def test_a_directory_swapped_for_a_link_is_refused(team):
    store, gid, root_only = team
    gates = str(store.root / "gates")
    assert as_mallory("mv", gates, gates + ".old").returncode == 0
    assert as_mallory("ln", "-s", str(root_only.parent), gates).returncode == 0
    for args in (["list"], ["approve", gid], ["reset", gid]):
        run = gate_cli(store.root, *args)
        assert run.returncode == 1 and "gates is a symbolic link, not a directory" in run.stderr
    assert root_only.read_bytes() == PRECIOUS


def test_a_fifo_planted_by_another_member_hangs_nothing(team):
    store, gid, _ = team
    answers = store.root / "gates" / f"{gid}.answers"
    assert as_mallory("rm", "-f", str(answers)).returncode == 0
    assert as_mallory("mkfifo", str(answers)).returncode == 0
    start = time.monotonic()
    listed = gate_cli(store.root, "list")
    assert listed.returncode == 0 and f"{answers} is a FIFO" in listed.stderr
    approve = gate_cli(store.root, "approve", gid)
    assert approve.returncode == 1 and "is a FIFO, not a regular file" in approve.stderr
    assert time.monotonic() - start < 60


def test_entries_forged_by_another_member_of_a_signed_store_are_detected(team, monkeypatch):
    store, gid, _ = team
    monkeypatch.setenv("SNAKEMAKE_GATE_SIGNING_KEY", str(store.root.parent / "owner.key"))
    created = gate_cli(store.root, "key", "create", "--server")
    assert created.returncode == 0 and "must be signed from entry" in created.stdout
    assert gate_cli(store.root, "audit", "--verify").returncode == 0
    keys = store.root / "keys"
    # what she cannot do: touch the registry, or move it out of the way (the root is sticky)
    assert as_mallory("cp", "/dev/null", str(keys / "keys.json")).returncode != 0
    assert as_mallory("mv", str(keys), str(store.root / "keys.old")).returncode != 0
    # what she can: append an entry, chained, and the head to match
    log = store.root / "audit.jsonl"
    last = log.read_bytes().splitlines()[-1]
    seq = json.loads(last)["seq"] + 1
    forged = {"seq": seq, "ts": time.time(), "event": "decided", "gate": gid,
              "actor": "alice", "choice": "approve", "prev": line_hash(last)}  # fmt: skip
    line = json.dumps(forged, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    for name, data, flags in (("audit.jsonl", line, ["-a"]), ("audit.head", None, [])):
        data = data or f"{seq} {line_hash(line)}\n".encode()
        tee = [runuser, "-u", ATTACKER, "--", "tee", *flags, str(store.root / name)]
        assert subprocess.run(tee, input=data, capture_output=True).returncode == 0
    verify = gate_cli(store.root, "audit", "--verify")
    assert verify.returncode == 1
    assert f"entry {seq}: not signed (it names alice)" in verify.stdout
