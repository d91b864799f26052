"""Authentication for the gate server: tokens, signed requests, one-click links, limiter."""

import contextlib
import hashlib
import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snakemake_human_gate.auth import (
    AuthError,
    AuthFileError,
    FailureLimiter,
    TokenStore,
    TooManyFailures,
    token_id,
)
from snakemake_human_gate.errors import GateError, InvalidInput
from snakemake_human_gate.links import LinkSigner
from snakemake_human_gate.signatures import (
    SENDER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Target,
    canonical_path,
    canonical_query,
    sign_request,
    sign_request_v1,
    verify_request,
)
from snakemake_human_gate.storefs import UnsafeFile
from snakemake_human_gate.webhooks import WebhookSecrets

NOW = 1_700_000_000.0
SECRET = b"0123456789abcdef0123456789abcdef"
GATE = "review-0123456789ab"
HOOK = Target("POST", "/hooks/decision")


def verify(secret, headers, body, now, **options):
    """verify_request of a POST to /hooks/decision."""
    options.setdefault("target", HOOK)
    verify_request(secret, headers, body, now=now, **options)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@contextlib.contextmanager
def refused(reason):
    """pytest.raises for an AuthError with this reason."""
    with pytest.raises(AuthError) as info:
        yield info
    assert info.value.reason == reason, str(info.value)


@pytest.fixture
def root(tmp_path):
    return tmp_path / "gates"


@pytest.fixture
def tokens(root):
    return TokenStore(root, "private")


@pytest.fixture
def links(root):
    return LinkSigner(root, "private")


# -- tokens ---------------------------------------------------------------------------


def test_token_verifies_as_its_user_and_is_shown_once(tokens):
    token = tokens.create("alice", label="laptop", now=NOW)
    assert token.startswith("sgt_") and len(token) == 4 + 43
    assert tokens.verify(token) == "alice"
    [info] = tokens.list()
    assert (info.id, info.user, info.label, info.created, info.expires) == (
        token_id(token),
        "alice",
        "laptop",
        NOW,
        None,
    )
    assert token not in repr(info)


def test_token_file_holds_digests_only_and_is_private_in_every_share_mode(tmp_path):
    for share in ("private", "group-read", "group-write"):
        store = TokenStore(tmp_path / share, share)
        token = store.create("alice")
        text = store.path.read_text()
        assert token not in text and token[4:] not in text and token[4:24] not in text
        assert mode(store.path) == 0o600
        assert mode(store.path.parent) == 0o700
        assert "sha256" in json.loads(text)["tokens"][token_id(token)]


def test_new_store_root_gets_the_share_mode(tmp_path):
    TokenStore(tmp_path / "shared", "group-write")
    assert mode(tmp_path / "shared") == 0o2770


def test_wrong_and_malformed_tokens_are_refused(tokens):
    token = tokens.create("alice")
    other = token[:-1] + ("A" if token[-1] != "A" else "B")
    with refused("unknown-token"):
        tokens.verify(other)
    for bad in ("", "sgt_", token + "x", token[4:], "Bearer " + token, token + "\n"):
        with refused("bad-token"):
            tokens.verify(bad)


def test_tokens_of_several_users_stay_apart(tokens):
    alice, bob = tokens.create("alice"), tokens.create("bob")
    assert (tokens.verify(alice), tokens.verify(bob)) == ("alice", "bob")
    assert alice != bob and len(tokens.list()) == 2


def test_token_expires(tokens):
    token = tokens.create("alice", expires_in=60, now=NOW)
    assert tokens.verify(token, now=NOW + 59.9) == "alice"
    with refused("expired-token"):
        tokens.verify(token, now=NOW + 60)
    assert tokens.list()[0].expired(NOW + 60)


def test_revoked_token_is_refused_at_once_even_by_another_instance(root, tokens):
    token = tokens.create("alice")
    server = TokenStore(root, "private")
    assert server.verify(token) == "alice"
    info = tokens.revoke(token_id(token))
    assert info.user == "alice"
    with refused("unknown-token"):
        server.verify(token)
    assert tokens.list() == []
    with pytest.raises(InvalidInput, match="no token"):
        tokens.revoke(token_id(token))


@pytest.mark.parametrize(
    "user", ["", "a" * 65, "al ice", "alice/..", "bob\n", "ålice", "timeout", None]
)
def test_invalid_or_reserved_user_names_are_refused(tokens, user):
    with pytest.raises(InvalidInput):
        tokens.create(user)


@pytest.mark.parametrize("label", ["x" * 201, "two\nlines", "\x1b[31mred"])
def test_unprintable_or_long_labels_are_refused(tokens, label):
    with pytest.raises(InvalidInput, match="label"):
        tokens.create("alice", label=label)


@pytest.mark.parametrize("expires_in", [0, -1, float("nan"), float("inf")])
def test_nonsense_expiry_is_refused(tokens, expires_in):
    with pytest.raises(InvalidInput, match="expires_in"):
        tokens.create("alice", expires_in=expires_in)


def test_unknown_share_mode_is_a_usage_error(tmp_path):
    with pytest.raises(InvalidInput, match="unknown share mode"):
        TokenStore(tmp_path, "world")


def test_secret_files_open_to_others_are_refused(tokens):
    token = tokens.create("alice")
    os.chmod(tokens.path, 0o640)
    with pytest.raises(AuthFileError, match="chmod go="):
        tokens.verify(token)
    os.chmod(tokens.path, 0o600)
    os.chmod(tokens.path.parent, 0o770)
    with pytest.raises(AuthFileError, match="open to others"):
        TokenStore(tokens.path.parent.parent, "private")


def test_symlinked_token_file_is_refused(tokens, tmp_path):
    tokens.create("alice")
    elsewhere = tmp_path / "planted.json"
    os.replace(tokens.path, elsewhere)
    tokens.path.symlink_to(elsewhere)
    with pytest.raises(UnsafeFile, match="is a symbolic link, not a regular file"):
        tokens.list()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_auth_dir_of_another_user_is_refused(tokens):
    os.chown(tokens.path.parent, 12345, -1)
    with pytest.raises(AuthFileError, match="belongs to uid 12345"):
        TokenStore(tokens.path.parent.parent, "private")


def test_corrupt_token_file_is_reported_not_ignored(tokens):
    tokens.create("alice")
    tokens.path.write_text("{not json")
    with pytest.raises(AuthFileError, match="not a valid tokens.json"):
        tokens.verify("sgt_" + "A" * 43)


def test_auth_errors_are_gate_errors_with_an_exit_code():
    error = AuthError("no", "bad-token")
    assert isinstance(error, GateError) and error.exit_code == 4 and str(error) == "no"


# -- signed requests ------------------------------------------------------------------


def signed(body=b'{"choice": "approve"}', timestamp=int(NOW), secret=SECRET):
    return sign_request(secret, body, timestamp, HOOK)


def test_signed_request_round_trips():
    body = b'{"choice": "approve"}'
    headers = signed(body)
    assert set(headers) == {TIMESTAMP_HEADER, SIGNATURE_HEADER}
    assert headers[SIGNATURE_HEADER].startswith("v2=")
    verify(SECRET, headers, body, now=NOW)
    verify(SECRET, {k.lower(): v for k, v in headers.items()}, body, now=NOW)


def test_a_v2_signature_is_over_timestamp_method_path_query_and_body():
    import hashlib
    import hmac

    message = b"v2\n1700000000\nPOST\n/api/gates/review-1/decision\na=1&b=%20x\nhello"
    expected = hmac.new(SECRET, message, hashlib.sha256).hexdigest()
    target = Target("post", "/api/gates/review-1/decision", "b=+x&a=1")
    assert sign_request(SECRET, b"hello", int(NOW), target)[SIGNATURE_HEADER] == f"v2={expected}"


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        ("/hooks/decision", "/hooks/decision"),
        ("/api/gates/r%65view-1/decision", "/api/gates/review-1/decision"),
        ("/api/gates/a%2fb", "/api/gates/a%2Fb"),  # an encoded '/' stays one segment
        ("/api/gates/é~x y", "/api/gates/%C3%A9~x%20y"),
        ("/api/gates/%c3%a9", "/api/gates/%C3%A9"),
        ("/a+b", "/a%2Bb"),  # '+' in a path is a plus
    ],
)
def test_canonical_paths(sent, canonical):
    assert canonical_path(sent) == canonical


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1", "a=1&a=2"),
        ("flag&&x=", "flag=&x="),
        ("q=a+b%2Bc", "q=a%20b%2Bc"),  # '+' in a query is a space
        ("n%61me=v%C3%A9", "name=v%C3%A9"),
    ],
)
def test_canonical_queries(sent, canonical):
    assert canonical_query(sent) == canonical


def test_the_worked_example_in_the_docs():
    secret = b"5f6c0d2e9a7b4c1d8e3f2a1b0c9d8e7f5f6c0d2e9a7b4c1d8e3f2a1b0c9d8e7f"
    body = b'{"choice": "approve", "fields": {"lr": 0.05}}'
    target = Target("POST", "/api/gates/review_pilot-3f2a9c1d0b7e/decision")
    signed = sign_request(secret, body, 1_700_000_000, target)[SIGNATURE_HEADER]
    docs = (Path(__file__).resolve().parents[2] / "docs" / "webhook.md").read_text()
    assert f"`X-Gate-Signature-256: {signed}`" in docs


def test_a_signature_binds_the_method_and_the_path():
    body = b'{"choice": "approve"}'
    for_a = Target("POST", "/api/gates/review-a/decision")
    headers = sign_request(SECRET, body, int(NOW), for_a)
    verify(SECRET, headers, body, NOW, target=for_a)
    verify(SECRET, headers, body, NOW, target=Target("POST", "/api/gates/review-%61/decision"))
    for other in (
        Target("POST", "/api/gates/review-b/decision"),
        Target("PUT", "/api/gates/review-a/decision"),
        Target("POST", "/api/gates/review-a/decision", "choice=reject"),
        HOOK,
    ):
        with refused("bad-signature"):
            verify(SECRET, headers, body, NOW, target=other)


def test_old_signatures_are_refused_unless_accepted_for_the_hook():
    body = b'{"gate": "g", "choice": "approve"}'
    old = sign_request_v1(SECRET, body, int(NOW))
    assert old[SIGNATURE_HEADER].startswith("sha256=")
    with refused("old-signature") as error:
        verify(SECRET, old, body, NOW)
    assert "sign it 'v2='" in str(error.value) and "--accept-v1-signatures" in str(error.value)
    verify(SECRET, old, body, NOW, accept_v1=True)
    with refused("old-signature"):  # the REST path is not in the body: never by v1
        verify(SECRET, old, body, NOW, accept_v1=True, target=Target("POST", "/api/gates/g/x"))
    with refused("bad-signature"):  # and a forged one is just forged
        verify(SECRET, sign_request_v1(b"guess", body, int(NOW)), body, NOW, accept_v1=True)


def test_forged_signature_and_wrong_secret_are_refused():
    body = b"payload"
    with refused("bad-signature"):
        verify(b"another secret", signed(body), body, now=NOW)
    forged = {**signed(body), SIGNATURE_HEADER: "sha256=" + "0" * 64}
    with refused("bad-signature"):
        verify(SECRET, forged, body, now=NOW)


def test_body_changed_by_one_byte_is_refused():
    body = b'{"choice": "approve"}'
    with refused("bad-signature"):
        verify(SECRET, signed(body), b'{"choice": "approvf"}', now=NOW)


def test_timestamp_cannot_be_refreshed_without_the_secret():
    headers = {**signed(timestamp=int(NOW) - 3600), TIMESTAMP_HEADER: str(int(NOW))}
    with refused("bad-signature"):
        verify(SECRET, headers, b'{"choice": "approve"}', now=NOW)


def test_stale_and_future_timestamps_are_refused():
    body = b'{"choice": "approve"}'
    verify(SECRET, signed(body, int(NOW) - 300), body, now=NOW)
    verify(SECRET, signed(body, int(NOW) + 300), body, now=NOW)
    with refused("stale-timestamp"):
        verify(SECRET, signed(body, int(NOW) - 301), body, now=NOW)
    with refused("future-timestamp"):
        verify(SECRET, signed(body, int(NOW) + 301), body, now=NOW)
    with refused("stale-timestamp"):
        verify(SECRET, signed(body, int(NOW) - 61), body, now=NOW, window=60)


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_missing_headers_are_refused(missing):
    headers = {k: v for k, v in signed().items() if k != missing}
    with refused("missing-header"):
        verify(SECRET, headers, b'{"choice": "approve"}', now=NOW)


@pytest.mark.parametrize(
    "name, value",
    [
        (TIMESTAMP_HEADER, ""),
        (TIMESTAMP_HEADER, "1700000000.5"),
        (TIMESTAMP_HEADER, "-1700000000"),
        (TIMESTAMP_HEADER, " 1700000000"),
        (TIMESTAMP_HEADER, "１７００"),  # full-width digits are digits to int(), not here
        (SIGNATURE_HEADER, "0" * 64),
        (SIGNATURE_HEADER, "sha1=" + "0" * 40),
        (SIGNATURE_HEADER, "sha256=" + "A" * 64),
        (SIGNATURE_HEADER, "sha256=" + "0" * 63),
        (SIGNATURE_HEADER, "sha256=" + "0" * 64 + "\n"),
        (SIGNATURE_HEADER, "v2=" + "A" * 64),
        (SIGNATURE_HEADER, "V2=" + "0" * 64),
        (SIGNATURE_HEADER, "v3=" + "0" * 64),
        (SIGNATURE_HEADER, "v2=" + "0" * 64 + "\n"),
    ],
)
def test_malformed_headers_are_refused(name, value):
    headers = {**signed(), name: value}
    with refused("malformed-header"):
        verify(SECRET, headers, b'{"choice": "approve"}', now=NOW)


def test_a_header_given_twice_is_refused():
    headers = signed()
    twice = [*headers.items(), (SIGNATURE_HEADER.lower(), headers[SIGNATURE_HEADER])]

    class Repeated(dict):
        def items(self):
            return twice

    with refused("malformed-header"):
        verify(SECRET, Repeated(headers), b'{"choice": "approve"}', now=NOW)


def test_webhook_senders_authenticate_as_their_user(root):
    webhooks = WebhookSecrets(root, "group-write")
    secret = webhooks.add("chatbot", "alice", now=NOW)
    assert len(bytes.fromhex(secret)) == 32
    assert mode(webhooks.path) == 0o600 and mode(webhooks.path.parent) == 0o700
    sender = webhooks.get("chatbot")
    assert (sender.name, sender.user, sender.secret) == ("chatbot", "alice", secret.encode())
    body = b'{"gate": "g", "choice": "approve"}'
    headers = {SENDER_HEADER: "chatbot", **sign_request(secret.encode(), body, int(NOW), HOOK)}
    assert webhooks.authenticate(headers, body, target=HOOK, now=NOW).user == "alice"
    assert webhooks.names() == {"chatbot": "alice"}


def test_webhook_request_refusals(root):
    webhooks = WebhookSecrets(root, "private")
    secret = webhooks.add("chatbot", "alice").encode()
    other = webhooks.add("ci", "bob").encode()
    body = b"{}"
    with refused("missing-header"):
        webhooks.authenticate(
            sign_request(secret, body, int(NOW), HOOK), body, target=HOOK, now=NOW
        )
    with refused("unknown-sender"):
        webhooks.authenticate(
            {SENDER_HEADER: "nobody", **sign_request(secret, body, int(NOW), HOOK)},
            body,
            target=HOOK,
            now=NOW,
        )
    with refused("bad-signature"):  # one sender cannot speak for another
        webhooks.authenticate(
            {SENDER_HEADER: "chatbot", **sign_request(other, body, int(NOW), HOOK)},
            body,
            target=HOOK,
            now=NOW,
        )


def test_a_signature_is_accepted_once_whichever_server_process_sees_it(root):
    first, second = WebhookSecrets(root, "private"), WebhookSecrets(root, "private")
    first.first_use("sha256=" + "a" * 64, NOW)
    for webhooks in (first, second):  # two worker processes, or a server and its restart
        with refused("replayed"):
            webhooks.first_use("sha256=" + "a" * 64, NOW + 1)
    second.first_use("sha256=" + "b" * 64, NOW + 2)
    assert mode(first.seen) == 0o700
    assert sorted(mode(p) for p in first.seen.iterdir()) == [0o600, 0o600]


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_seen_signatures_are_forgotten_once_their_requests_would_be_stale(root):
    now = time.time()
    WebhookSecrets(root, "private").first_use("old", now)
    WebhookSecrets(root, "private").first_use("recent", now)
    old, recent = (WebhookSecrets(root, "private").seen / sha256(s) for s in ("old", "recent"))
    os.utime(old, (now - 601, now - 601))  # twice the default window (300 s), and more
    os.utime(recent, (now - 599, now - 599))
    WebhookSecrets(root, "private").first_use("new", now)  # a new process prunes first
    assert not old.exists() and recent.exists()


def test_webhook_senders_are_added_once_and_removed(root):
    webhooks = WebhookSecrets(root, "private")
    webhooks.add("chatbot", "alice")
    with pytest.raises(InvalidInput, match="exists"):
        webhooks.add("chatbot", "bob")
    with pytest.raises(InvalidInput, match="invalid sender name"):
        webhooks.add("chat bot", "bob")
    webhooks.remove("chatbot")
    with refused("unknown-sender"):
        webhooks.get("chatbot")
    with pytest.raises(InvalidInput, match="no sender"):
        webhooks.remove("chatbot")
    assert "chatbot" not in webhooks.path.read_text()


# -- one-click links ------------------------------------------------------------------


def test_link_redeems_once_with_its_claim(links):
    link = links.mint(GATE, "approve", "alice", ttl=600, now=NOW)
    assert links.peek(link, NOW + 1) == links.peek(link, NOW + 2)  # peeking spends nothing
    claim = links.redeem(link, NOW + 3)
    assert (claim.gate, claim.action, claim.user) == (GATE, "approve", "alice")
    assert claim.expires == NOW + 600
    with refused("used-link"):
        links.redeem(link, NOW + 4)
    assert links.peek(link, NOW + 5) == claim  # a confirmation page may still show it


def test_link_files_are_private(links):
    links.redeem(links.mint(GATE, "approve", "alice", ttl=600, now=NOW), NOW)
    assert mode(links.key_path) == 0o600 and mode(links.used_path) == 0o600


def test_each_link_is_single_use_on_its_own(links):
    first = links.mint(GATE, "approve", "alice", ttl=600, now=NOW)
    second = links.mint(GATE, "approve", "alice", ttl=600, now=NOW)
    assert first != second
    assert links.redeem(first, NOW).nonce != links.redeem(second, NOW).nonce


def test_expired_link_is_refused(links):
    link = links.mint(GATE, "reject", "alice", ttl=60, now=NOW)
    assert links.peek(link, NOW + 59).action == "reject"
    with refused("expired-link"):
        links.peek(link, NOW + 60)
    with refused("expired-link"):
        links.redeem(link, NOW + 60)


def test_used_link_stays_refused_after_its_record_would_be_pruned(links):
    link = links.mint(GATE, "approve", "alice", ttl=60, now=NOW)
    links.redeem(link, NOW)
    links.redeem(links.mint(GATE, "approve", "bob", ttl=60, now=NOW + 10_000), NOW + 10_000)
    assert len(links.used_path.read_text().splitlines()) == 1  # the first was pruned
    with refused("expired-link"):
        links.redeem(link, NOW + 10_000)


def test_used_links_are_remembered_past_expiry_in_case_the_clock_goes_back(links):
    link = links.mint(GATE, "approve", "alice", ttl=60, now=NOW)
    links.redeem(link, NOW)
    links.redeem(links.mint(GATE, "approve", "bob", ttl=60, now=NOW + 100), NOW + 100)
    with refused("used-link"):  # the clock was set back by two minutes
        links.redeem(link, NOW - 20)


def test_link_for_gate_a_cannot_act_on_gate_b(links):
    link = links.mint("review-aaaaaaaaaaaa", "approve", "alice", ttl=600, now=NOW)
    assert links.peek(link, NOW).gate == "review-aaaaaaaaaaaa"
    with refused("wrong-gate"):
        links.redeem(link, NOW, gate="review-bbbbbbbbbbbb")
    with refused("wrong-action"):
        links.redeem(link, NOW, action="reject")
    # refused without being spent
    assert links.redeem(link, NOW, gate="review-aaaaaaaaaaaa", action="approve").user == "alice"


def test_claim_cannot_be_rewritten(links):
    import base64

    link = links.mint(GATE, "reject", "alice", ttl=60, now=NOW)
    payload, tag = link.split(".")
    claim = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for change in ({"a": "approve"}, {"g": "other-gate"}, {"u": "bob"}, {"exp": NOW + 10**6}):
        forged = json.dumps({**claim, **change}, separators=(",", ":")).encode()
        forged_link = base64.urlsafe_b64encode(forged).rstrip(b"=").decode() + "." + tag
        with refused("bad-link"):
            links.redeem(forged_link, NOW)
    assert links.redeem(link, NOW).action == "reject"


def test_link_from_another_server_is_refused(tmp_path, links):
    other = LinkSigner(tmp_path / "elsewhere", "private")
    with refused("bad-link"):
        links.peek(other.mint(GATE, "approve", "alice", ttl=60, now=NOW), NOW)


def test_deleting_the_link_key_revokes_every_link(links):
    link = links.mint(GATE, "approve", "alice", ttl=600, now=NOW)
    links.key_path.unlink()
    with refused("bad-link"):
        links.peek(link, NOW)


@pytest.mark.parametrize(
    "bad", ["", ".", "abc", "abc.", ".abc", "a.b.c", "é.x", "x" * 3000, None, 42]
)
def test_malformed_links_are_refused(links, bad):
    links.mint(GATE, "approve", "alice", ttl=60, now=NOW)
    with pytest.raises(AuthError):
        links.redeem(bad, NOW)


@pytest.mark.parametrize(
    "gate, action, user, ttl",
    [
        ("../etc", "approve", "alice", 60),
        (GATE, "decide", "alice", 60),
        (GATE, "approve", "bad user", 60),
        (GATE, "approve", "alice", 0),
        (GATE, "approve", "alice", float("inf")),
    ],
)
def test_mint_refuses_bad_arguments(links, gate, action, user, ttl):
    with pytest.raises(InvalidInput):
        links.mint(gate, action, user, ttl=ttl, now=NOW)


def test_corrupt_used_links_file_fails_closed(links):
    link = links.mint(GATE, "approve", "alice", ttl=600, now=NOW)
    links.used_path.write_text("{half a line\n")
    os.chmod(links.used_path, 0o600)
    with pytest.raises(AuthFileError, match="line 1 is corrupt"):
        links.redeem(link, NOW)


def test_corrupt_link_key_is_reported(links):
    links.key_path.write_text("short\n")
    os.chmod(links.key_path, 0o600)
    with pytest.raises(AuthFileError, match="not a link key"):
        links.mint(GATE, "approve", "alice", ttl=60, now=NOW)


@pytest.mark.parametrize("shared_signer", [True, False])
def test_concurrent_redeems_of_one_link_succeed_exactly_once(root, links, shared_signer):
    link = links.mint(GATE, "approve", "alice", ttl=600, now=NOW)
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def redeem() -> None:
        signer = links if shared_signer else LinkSigner(root, "private")
        barrier.wait()
        try:
            signer.redeem(link, NOW)
            outcomes.append("ok")
        except AuthError as e:
            outcomes.append(e.reason)

    threads = [threading.Thread(target=redeem) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok"] + ["used-link"] * 19


def test_concurrent_first_use_makes_one_link_key(root):
    barrier = threading.Barrier(10)
    minted: list[tuple[LinkSigner, str]] = []

    def mint() -> None:
        signer = LinkSigner(root, "private")
        barrier.wait()
        minted.append((signer, signer.mint(GATE, "approve", "alice", ttl=60, now=NOW)))

    threads = [threading.Thread(target=mint) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    checker = LinkSigner(root, "private")
    assert len(minted) == 10
    assert all(checker.peek(link, NOW).user == "alice" for _, link in minted)


# -- failed attempts ------------------------------------------------------------------


def test_limiter_refuses_after_max_failures_until_the_window_passes():
    limiter = FailureLimiter(max_failures=3, window=60)
    for t in (0, 10, 20):
        limiter.check("10.0.0.1", NOW + t)
        limiter.record_failure("10.0.0.1", NOW + t)
    with pytest.raises(TooManyFailures, match="retry in 30 s") as err:
        limiter.check("10.0.0.1", NOW + 30)
    assert err.value.retry_after == 30 and err.value.reason == "too-many-failures"
    assert isinstance(err.value, AuthError)
    limiter.check("10.0.0.2", NOW + 30)  # others are not affected
    limiter.check("10.0.0.1", NOW + 60)  # the first failure has left the window


def test_limiter_forgets_stale_clients_and_caps_memory():
    limiter = FailureLimiter(max_failures=2, window=60, max_clients=100)
    for n in range(50):
        limiter.record_failure(f"client-{n}", NOW)
    assert len(limiter) == 50
    limiter.record_failure("late", NOW + 61)
    assert len(limiter) == 1
    for n in range(500):
        limiter.record_failure(f"flood-{n}", NOW + 62)
    assert len(limiter) == 100
    for _ in range(10):
        limiter.record_failure("flood-499", NOW + 63)
    assert len(limiter._failures["flood-499"]) == 2  # at most max_failures kept


def test_limiter_is_thread_safe():
    limiter = FailureLimiter(max_failures=1000, window=60, max_clients=50)
    errors: list[BaseException] = []

    def hammer(n: int) -> None:
        try:
            for i in range(300):
                limiter.record_failure(f"c{(n * 7 + i) % 80}", NOW + i / 100)
                limiter.check(f"c{i % 80}", NOW + i / 100)
        except TooManyFailures:
            pass
        except Exception as e:  # any other error fails the test
            errors.append(e)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(limiter) <= 50


@pytest.mark.parametrize("args", [(0, 60), (3, 0), (3, float("nan"))])
def test_limiter_refuses_nonsense_limits(args):
    with pytest.raises(InvalidInput):
        FailureLimiter(*args)


# -- properties -----------------------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None)


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory):
    return tmp_path_factory.mktemp("auth-properties") / "gates"


@PROPERTY
@given(body=st.binary(max_size=4096), timestamp=st.integers(0, 10**11))
def test_any_body_round_trips(body, timestamp):
    verify(SECRET, sign_request(SECRET, body, timestamp, HOOK), body, now=timestamp)


@PROPERTY
@given(body=st.binary(min_size=1, max_size=512), data=st.data())
def test_any_single_byte_change_of_the_body_is_refused(body, data):
    index = data.draw(st.integers(0, len(body) - 1))
    delta = data.draw(st.integers(1, 255))
    changed = body[:index] + bytes([(body[index] + delta) % 256]) + body[index + 1 :]
    with refused("bad-signature"):
        verify(SECRET, sign_request(SECRET, body, int(NOW), HOOK), changed, now=NOW)


@PROPERTY
@given(body=st.binary(max_size=256), data=st.data())
def test_any_single_character_change_of_the_signature_is_refused(body, data):
    headers = sign_request(SECRET, body, int(NOW), HOOK)
    for name in (SIGNATURE_HEADER, TIMESTAMP_HEADER):
        value = headers[name]
        index = data.draw(st.integers(0, len(value) - 1))
        char = data.draw(st.characters().filter(lambda c, old=value[index]: c != old))
        changed = {**headers, name: value[:index] + char + value[index + 1 :]}
        with pytest.raises(AuthError):
            verify(SECRET, changed, body, now=NOW)


@PROPERTY
@given(stamp=st.text(max_size=20), signature=st.text(max_size=80), sender=st.text(max_size=20))
def test_arbitrary_headers_only_ever_raise_auth_errors(shared_root, stamp, signature, sender):
    headers = {SENDER_HEADER: sender, TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature}
    with pytest.raises(AuthError):
        verify(SECRET, headers, b"body", now=NOW)
    with pytest.raises(AuthError):
        WebhookSecrets(shared_root, "private").authenticate(headers, b"body", target=HOOK, now=NOW)


@PROPERTY
@given(text=st.text(max_size=120) | st.from_regex(r"sgt_[A-Za-z0-9_-]{43}", fullmatch=True))
def test_arbitrary_strings_never_verify_as_tokens(shared_root, text):
    store = TokenStore(shared_root, "private")
    if not store.list():
        store.create("alice")
    with pytest.raises(AuthError):
        store.verify(text)


@PROPERTY
@given(text=st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_-]{1,200}\.[A-Za-z0-9_-]{43}"))
def test_arbitrary_strings_never_redeem_as_links(shared_root, text):
    signer = LinkSigner(shared_root, "private")
    with pytest.raises(AuthError):
        signer.peek(text, NOW)
    with pytest.raises(AuthError):
        signer.redeem(text, NOW)


@PROPERTY
@given(data=st.data())
def test_any_single_character_change_of_a_link_is_refused(shared_root, data):
    signer = LinkSigner(shared_root, "private")
    link = signer.mint(GATE, "approve", "alice", ttl=600, now=NOW)
    index = data.draw(st.integers(0, len(link) - 1))
    char = data.draw(st.characters().filter(lambda c: c != link[index]))
    with pytest.raises(AuthError):
        signer.peek(link[:index] + char + link[index + 1 :], NOW)
