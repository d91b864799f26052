"""The server over a store holding what it must not open: a FIFO where a gate's answers
belong, artifacts that are FIFOs or devices. Every request answers at once."""

import concurrent.futures
import os
import time

import requests

STORE_REFUSED = "the store holds a file the server refuses"


def test_a_fifo_in_place_of_answers_blocks_neither_the_list_nor_the_gate(server):
    fifo_gate = server.ask(run="1")
    fine = server.ask(run="2")
    answers = server.store.answers_path(fifo_gate.id)
    answers.unlink()
    os.mkfifo(answers, 0o600)
    start = time.monotonic()
    listed = server.get("/api/gates?status=all")
    assert listed.status_code == 200
    assert [g["id"] for g in listed.json()["gates"]] == [fine.id]  # the other is reported
    gate = server.get(f"/api/gates/{fifo_gate.id}")
    assert gate.status_code == 500 and gate.json() == {
        "detail": f"{STORE_REFUSED}: see its log",
        "reason": "unsafe-store-file",
    }
    decided = server.decide(fifo_gate.id, {"choice": "approve"})
    assert decided.status_code == 500 and decided.json()["reason"] == "unsafe-store-file"
    assert time.monotonic() - start < 10
    assert server.decide(fine.id, {"choice": "approve"}).status_code == 200


def test_a_fifo_artifact_is_refused_at_once_and_never_stalls_the_server(server):
    record = server.ask(files={"plot.png": b"\x89PNG"})
    plot = server.workdir / "plot.png"
    plot.unlink()
    os.mkfifo(plot)
    path = f"/api/gates/{record.id}/artifacts/0"
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(45) as pool:
        answers = list(pool.map(lambda _: server.get(path), range(45)))
        during = server.get("/api/me")  # while the 45 are under way
    assert time.monotonic() - start < 10 and during.status_code == 200
    assert {a.status_code for a in answers} == {409}
    assert "is a FIFO, not the file the gate was asked about" in answers[0].json()["detail"]


def test_an_artifact_linked_to_a_device_is_refused_unread(server):
    record = server.ask(files={"metrics.json": b"{}"})
    artifact = server.workdir / "metrics.json"
    artifact.unlink()
    artifact.symlink_to("/dev/zero")
    start = time.monotonic()
    answer = requests.get(
        f"{server.url}/api/gates/{record.id}/artifacts/0", headers=server.auth(), timeout=30
    )
    assert time.monotonic() - start < 2  # not 256 MiB of zeros read first
    assert answer.status_code == 409
    assert "is a character device, not the file" in answer.json()["detail"]
