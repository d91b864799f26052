"""The dashboard in a real browser (Debian's headless Chromium, driven by playwright).

A gated run under ``--executor hybrid`` is decided by a person clicking in the page
that ``snakemake-gate serve`` serves; the value typed in reaches the downstream rule.
"""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snakemake_human_gate import gate
from snakemake_human_gate.store import GateStore
from tests.conftest import REPO, copy_workflow, start
from tests.integration.gatehelp import audit, finish, gate_cli, wait_pending

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
# ../shared/ENVIRONMENT.md; playwright adds --headless and a fresh profile (--user-data-dir)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000  # for anything the page shows after a request or a poll
TOKEN = re.compile(r"\bsgt_\S+")
SERVING = re.compile(r"serving .* at (https?://\S+?)/?$", re.MULTILINE)


def _browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if os.access(CHROMIUM, os.X_OK):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and installing it needs root and apt"
    up = subprocess.run(
        [str(REPO / "scripts" / "browser" / "up")], capture_output=True, text=True, timeout=900
    )
    if up.returncode != 0 or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"scripts/browser/up failed:\n{up.stdout}\n{up.stderr}")
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed by scripts/browser/up if needed; its path.

    Skips only where it cannot be set up (no playwright; not root or no apt); with
    HYBRID_REQUIRE_BROWSER=1 (as in CI) that fails the tests instead.
    """
    reason = _browser_missing()
    if reason:
        if os.environ.get("HYBRID_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return str(CHROMIUM)


@pytest.fixture
def page(chromium: str) -> Iterator[Any]:
    """A fresh page in headless Chromium; an uncaught error in its script fails the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1200, "height": 900})
            tab.set_default_timeout(WAIT_MS)
            crashes: list[str] = []
            tab.on("pageerror", lambda error: crashes.append(str(error)))
            yield tab
            assert not crashes, f"the page's script failed: {crashes}"
        finally:
            browser.close()


@contextlib.contextmanager
def gate_server(store: Path, log: Path) -> Iterator[str]:
    """``snakemake-gate serve --port 0`` as a real process; the URL it announces.

    Its log goes to a file: a pipe nobody reads would stall the server once full.
    """
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake_human_gate", "--dir", str(store), "serve"]
            + ["--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30

        def answering() -> str | None:
            found = SERVING.search(log.read_text())
            if found is None:  # not yet bound
                return None
            try:  # bound, and once uvicorn has started, listening
                urllib.request.urlopen(f"{found[1]}/openapi.json", timeout=5).close()
            except OSError:  # URLError, a reset connection
                return None
            return found[1]

        while not (url := answering()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"snakemake-gate serve did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def new_token(store: Path, user: str) -> str:
    made = gate_cli(store, "token", "create", user)
    assert made.returncode == 0, made.stderr
    return TOKEN.search(made.stdout + made.stderr)[0]


def sign_in(page: Any, url: str, token: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#user")).to_be_visible()


def image_width(page: Any, selector: str) -> int:
    """The natural width of the image once it has loaded (0: broken)."""
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete }", arg=selector
    )
    return page.eval_on_selector(selector, "img => img.naturalWidth")


def test_reviewer_approves_in_the_browser_and_the_run_finishes_with_the_value(tmp_path, page):
    from playwright.sync_api import expect

    wd = copy_workflow("dashboard", tmp_path)
    store = wd / ".snakemake" / "gates"
    proc = start(wd, "--executor", "hybrid", "--jobs", "2")
    (pending,) = wait_pending(store, 1, proc)
    token = new_token(store, "alice")

    with gate_server(store, tmp_path / "serve.log") as url:
        sign_in(page, url, token)
        link = page.locator("#pending-list").get_by_role("link", name=re.compile("Train the full"))
        link.click()
        expect(page).to_have_url(re.compile(rf"\?gate={pending['id']}$"))
        expect(page.get_by_role("heading", level=2, name="Train the full model?")).to_be_visible()
        expect(page.locator("#facts")).to_contain_text("anyone with a token")

        # the artifacts, fetched with the token: the plot as an image, JSON, CSV
        assert image_width(page, "#artifacts img[alt^='loss.png']") == 160
        expect(page.locator("#artifacts pre")).to_contain_text('"loss": 0.5')
        expect(page.locator("#artifacts table.csv tbody tr")).to_have_count(8)

        # typed fields: lr required and empty, epochs prefilled with its default
        lr, epochs = page.get_by_label("lr"), page.get_by_label("epochs")
        assert lr.get_attribute("aria-required") == "true"
        assert (lr.get_attribute("min"), lr.get_attribute("max")) == ("0.00001", "1")
        expect(epochs).to_have_value("10")
        lr.fill("0.042")
        epochs.fill("12")
        page.get_by_label("Comment").fill("plot looks sane")
        page.get_by_role("button", name="Approve").click()

        expect(page.locator("#outcome")).to_contain_text("Decided: approve")
        expect(page.locator("#status")).to_contain_text("Decision recorded: approve by alice")
        out = finish(proc)
        assert proc.returncode == 0, out
        assert (wd / "results/trained.txt").read_text().split() == ["lr=0.042", "epochs=12"]

        # the page shows the gate as decided, with alice's decision in its history
        expect(page.locator("#facts .badge")).to_have_text("decided")
        expect(page.locator("#recent-list")).to_contain_text("approve by alice")
        expect(page.locator("#pending-list")).to_contain_text("Nothing is waiting.")
        decided = page.locator("#history tr.event-decided")
        expect(decided).to_contain_text("alice")
        expect(decided).to_contain_text('"lr":0.042')

    entry = [e for e in audit(store) if e["event"] == "decided"][-1]
    assert (entry["actor"], entry["fields"], entry["comment"]) == (
        "alice",
        {"lr": 0.042, "epochs": 12},
        "plot looks sane",
    )


def ask(store: Path, workdir: Path, spec: Any, rule: str = "review") -> str:
    """A pending gate asked straight through the store, with one artifact of each kind."""
    files = {
        "metrics.json": '{"loss": [0.9, 0.5], "note": "<b>not markup</b>"}',
        "table.csv": 'a,b\n1,"x, quoted"\n2,y\n',
        "log.txt": "epoch 1 done\n",
        "weights.bin": "\0\1\2",
    }
    for name, text in files.items():
        (workdir / name).write_text(text)
    record, _ = GateStore(store).ask(
        rule=rule,
        wildcards={"run": "1"},
        inputs=[workdir / name for name in files],
        output=workdir / f"{rule}.json",
        spec=spec,
        requested_by="runner",
    )
    return record.id


def test_page_is_labelled_keyboard_usable_and_explains_refusals(tmp_path, page):
    from playwright.sync_api import expect

    store = tmp_path / "gates"
    fields = {
        "lr": gate.field(float, min=0.0, max=1.0),
        "seeds": (int, 1, 8),
        "model": gate.field(str, choices=["small", "large"], default="small"),
        "augment": gate.field(bool, default=True),
        "note": str,
    }
    gid = ask(
        store, tmp_path, gate("Ship <it>?", choices=["approve", "retune", "reject"], fields=fields)
    )
    other = ask(store, tmp_path, gate("Only for bob?", approvers=["bob"]), rule="bobs")
    token = new_token(store, "alice")

    with gate_server(store, tmp_path / "serve.log") as url:
        page.goto(url)
        page.get_by_label("Access token").fill("sgt_not-a-token")
        page.keyboard.press("Enter")
        expect(page.get_by_role("alert").first).to_contain_text("Token refused (401)")

        # a notification's link opens the gate once signed in
        sign_in(page, f"{url}/?gate={gid}", token)
        expect(page.get_by_role("heading", level=2, name="Ship <it>?")).to_be_visible()
        expect(page.locator("#artifacts pre").first).to_contain_text('"note": "<b>not markup</b>"')
        expect(page.locator("#artifacts table.csv")).to_contain_text("x, quoted")
        expect(page.locator("#artifacts")).to_contain_text("epoch 1 done")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download weights.bin").click()
        assert download.value.suggested_filename == "weights.bin"
        assert Path(download.value.path()).read_bytes() == b"\0\1\2"

        # one control per field type, each labelled
        assert page.get_by_label("lr").get_attribute("type") == "number"
        assert page.get_by_label("seeds").get_attribute("step") == "1"
        expect(page.get_by_label("model")).to_have_value("0")  # its default, "small"
        expect(page.get_by_label("augment")).to_be_checked()
        assert page.get_by_label("note").get_attribute("type") == "text"
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea, button')]
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                              && !e.textContent.trim())
                 .map(e => e.outerHTML)"""
        )
        assert unlabelled == []
        assert page.locator("main").count() == 1 and page.locator("nav").count() == 1
        assert page.get_attribute("html", "lang") == "en"
        assert page.locator("[aria-live], [role=alert], [role=status]").count() >= 2

        # keyboard only: fill and answer; the refusal names the field, which gets focus
        page.get_by_label("lr").fill("")
        page.get_by_label("lr").focus()
        page.keyboard.type("7")
        page.get_by_label("seeds").fill("3")
        page.get_by_label("note").fill("typed before a refresh")
        page.get_by_role("button", name="Retune").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#answer-error")).to_contain_text(
            "Invalid value (422): field 'lr': 7.0 is above the maximum 1.0"
        )
        expect(page.get_by_label("lr")).to_be_focused()
        assert page.get_by_label("lr").get_attribute("aria-invalid") == "true"

        # polling refreshes the page without losing what was typed
        before = page.locator("#refreshed").text_content()
        expect(page.locator("#refreshed")).not_to_have_text(before or "")
        expect(page.get_by_label("note")).to_have_value("typed before a refresh")
        expect(page.get_by_label("lr")).to_have_value("7")

        # someone else decides while alice is still typing (her page's refresh held back):
        # her answer is refused with the server's reason, then the page shows the decision
        page.route("**/api/gates?status=all", lambda route: route.abort())
        answer = ("--set", "lr=0.5", "--set", "seeds=2", "--set", "note=from the CLI")
        assert gate_cli(store, "approve", gid, *answer).returncode == 0
        page.get_by_label("lr").fill("0.25")
        page.get_by_role("button", name="Retune").click()
        expect(page.locator("#answer-error")).to_contain_text(
            f"Conflict (409): gate {gid} is already decided: approve by "
        )
        page.unroute("**/api/gates?status=all")
        expect(page.locator("#outcome")).to_contain_text("Decided: approve")
        expect(page.locator("#form-slot")).to_be_empty()
        expect(page.locator("#answer-error")).to_contain_text("Conflict (409)")

        # a gate alice may not answer explains why instead of offering a form
        page.locator("#pending-list").get_by_role("link", name=re.compile("Only for bob")).click()
        expect(page).to_have_url(re.compile(rf"\?gate={other}$"))
        expect(page.locator("#form-slot")).to_contain_text("Only bob may decide this gate")
        page.go_back()
        expect(page.get_by_role("heading", level=2, name="Ship <it>?")).to_be_visible()

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("Access token")).to_be_visible()
        assert page.evaluate("sessionStorage.length") == 0

    refused = [e for e in audit(store) if e["event"] == "refused" and e["gate"] == gid]
    assert [(e["actor"], e["reason"]) for e in refused] == [
        ("alice", "invalid"),
        ("alice", "already decided"),
    ]
    assert GateStore(store).get(gid).decision.fields["lr"] == 0.5


SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">
<rect width="40" height="20" fill="teal"/>
<script>
try {
  const seen = Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)).join(" ");
  document.documentElement.setAttribute("data-stolen", seen || "nothing");
} catch (e) {
  document.documentElement.setAttribute("data-stolen", "refused: " + e.name);
}
</script>
</svg>
"""


def test_an_svg_artifact_never_runs_script_where_the_token_is(tmp_path, page):
    """The SVG is shown as an image only; its address, opened in the signed-in tab, runs
    nothing that can read the token; opened straight from the server, it downloads."""
    from playwright.sync_api import Error, expect

    store = tmp_path / "gates"
    (tmp_path / "plot.svg").write_text(SVG)
    (tmp_path / "page.html").write_text("<script>document.title = 'ran'</script>")
    record, _ = GateStore(store).ask(
        rule="review",
        wildcards={},
        inputs=[tmp_path / "plot.svg", tmp_path / "page.html"],
        output=tmp_path / "out.json",
        spec=gate("Ship?"),
        requested_by="runner",
    )
    token = new_token(store, "alice")
    with gate_server(store, tmp_path / "serve.log") as url:
        sign_in(page, f"{url}/?gate={record.id}", token)
        image = "#artifacts img[alt^='plot.svg']"
        assert image_width(page, image) == 40  # shown, as an image
        expect(page.locator("#artifacts")).to_contain_text("No preview for this kind of file")
        source = page.get_attribute(image, "src")
        assert source.startswith("data:image/svg+xml"), source[:40]

        page.goto(source)  # what a user could paste into the address bar of this tab
        stolen = page.evaluate("document.documentElement.getAttribute('data-stolen')")
        assert "sgt_" not in str(stolen), stolen

        for index in (0, 1):  # straight from the server: a download, never a page
            direct = page.context.browser.new_page()
            direct.set_extra_http_headers({"Authorization": f"Bearer {token}"})
            artifact = f"{url}/api/gates/{record.id}/artifacts/{index}"
            with direct.expect_download() as download, contextlib.suppress(Error):
                direct.goto(artifact)  # raises "Download is starting"
            assert download.value.suggested_filename == ("plot.svg", "page.html")[index]
            assert direct.title() != "ran"
            direct.close()
