"""Signed audit entries: an ed25519 key per user, public keys registered by the store's
owner (``pip install 'snakemake-executor-plugin-hybrid[signing]'``, for ``cryptography``).

- A user's private key: ``$SNAKEMAKE_GATE_SIGNING_KEY``, else
  ``$XDG_CONFIG_HOME/snakemake-gate/signing.key`` (``~/.config/...``): one line
  ``ed25519 <64 hex digits>``, mode 0600, this user's alone (checked like ssh does).
- The public keys: ``<store>/keys/keys.json``, written only by the store's owner (the
  user who owns its directory) and never writable by the group, whatever the share
  mode: members may read it (to verify) but not add a key in someone else's name.

Whoever has a key signs every audit entry they write: the entry names ``signer`` (the
OS user) and ``key`` (its id), and the line ends with ``"sig"``, the signature of the
line without it. ``audit --verify`` checks them against the registered keys
(``verify.py``). ``cryptography`` is imported only when a key is used.
"""

import base64
import hashlib
import json
import os
import pwd
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import ownerfiles
from .errors import GateError, InvalidInput
from .storefs import StoreTree, UnsafeFile
from .text import json_text

ENV_KEY = "SNAKEMAKE_GATE_SIGNING_KEY"
KEYS = (ownerfiles.DIRECTORY, "keys.json")
KEYS_SCHEMA = 1
EXTRA = "pip install 'snakemake-executor-plugin-hybrid[signing]'"
_SUFFIX = b',"sig":"'


class SigningError(GateError):
    """A key that cannot be used, or a registry that cannot be trusted: the fix is named."""


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ModuleNotFoundError:
        raise SigningError(f"signed audit entries need 'cryptography': {EXTRA}") from None
    return ed25519


def current_user() -> str:
    """The OS user of this process: who signs what it writes."""
    return pwd.getpwuid(os.geteuid()).pw_name


def registered(tree: StoreTree) -> bool:
    """Whether the store has a key registry (its entries are to be signed); ``keys/``
    alone is not one (it holds the approver groups too)."""
    try:
        with tree.dir(KEYS[0]) as keys:
            os.stat(KEYS[1], dir_fd=keys, follow_symlinks=False)
    except FileNotFoundError:
        return False
    except UnsafeFile:  # a link or another file in its place: 'audit --verify' says what
        return True
    return True


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def key_path() -> Path:
    """Where this user's private key is (or goes)."""
    if os.environ.get(ENV_KEY):
        return Path(os.environ[ENV_KEY]).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "snakemake-gate" / "signing.key"


@dataclass(frozen=True)
class Signer:
    """This process's user and private key: signs audit lines."""

    user: str
    key: Any  # an Ed25519PrivateKey
    id: str

    @property
    def public(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        raw = serialization.Encoding.Raw
        return bytes(self.key.public_key().public_bytes(raw, serialization.PublicFormat.Raw))

    def seal(self, line: bytes) -> bytes:
        """``line`` (compact JSON object and a newline) with its signature added last."""
        signature = base64.b64encode(self.key.sign(line[:-1])).decode()
        return line[:-2] + _SUFFIX + signature.encode() + b'"}\n'


def make_signer(user: str) -> Signer:
    """This user's signer, its key made first if they have none."""
    return load_signer(user) or _create(key_path(), user)


def load_signer(user: str) -> Signer | None:
    """This user's signer (None: they have no key)."""
    path = key_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise SigningError(f"cannot read the signing key {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise SigningError(
                f"{path} must be a regular file of yours that only you may read "
                f"(mode {stat.S_IMODE(info.st_mode):o}): 'chmod 600 {path}', or a new key"
            )
        text = f.read(200).decode("ascii", "replace").split()
    try:
        kind, seed = text
        private = _ed25519().Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
    except ValueError:
        raise SigningError(f"{path} is not 'ed25519 <64 hex digits>'") from None
    if kind != "ed25519":
        raise SigningError(f"{path}: unknown key type {kind!r}")
    signer = Signer(user, private, "")
    return Signer(user, private, key_id(signer.public))


def _create(path: Path, user: str) -> Signer:
    ed25519 = _ed25519()
    seed = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"ed25519 {seed.hex()}\n")
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    signer = Signer(user, private, "")
    return Signer(user, private, key_id(signer.public))


def split(line: bytes) -> tuple[bytes, bytes] | None:
    """A sealed line as (what was signed, the signature); None if it is not sealed."""
    body = line.rstrip(b"\n")
    at = body.rfind(_SUFFIX)
    if at < 0 or not body.endswith(b'"}'):
        return None
    try:
        signature = base64.b64decode(body[at + len(_SUFFIX) : -2], validate=True)
    except ValueError:
        return None
    return body[:at] + b"}", signature


def valid(public: bytes, signed: bytes, signature: bytes) -> bool:
    ed25519 = _ed25519()
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, signed)
    except Exception:  # InvalidSignature, or a malformed key
        return False
    return True


# -- the registry of public keys ----------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    user: str
    id: str
    public: bytes
    server: bool  # may sign entries that name the users it authenticated


@dataclass(frozen=True)
class Registry:
    since: int  # entries from this sequence number on must be signed
    keys: dict[str, PublicKey]  # by id


def read_registry(tree: StoreTree) -> Registry | None:
    """The registered keys (None: the store's entries are not signed), checked to be the
    owner's alone; SigningError (naming the fix) if they cannot be trusted."""
    shown = tree.shown(*KEYS)
    try:
        raw = ownerfiles.read(tree, KEYS[1], 1 << 20)
    except ownerfiles.OwnerFileError as e:
        raise SigningError(str(e)) from None
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        keys = {
            entry["id"]: PublicKey(
                user, entry["id"], base64.b64decode(entry["public"]), bool(entry["server"])
            )
            for user, entries in data["keys"].items()
            for entry in entries
        }
        return Registry(int(data["since"]), keys)
    except (ValueError, KeyError, TypeError) as e:
        raise SigningError(f"{shown} is not a key registry: {e}") from None


def check_registrar(tree: StoreTree, user: str, public: bytes) -> None:
    """Refuse (naming the fix) anyone but the store's owner, and a key that is none."""
    command = f"snakemake-gate key add {user} {base64.b64encode(public).decode()}"
    try:
        ownerfiles.check_writer(tree, "register keys", command)
    except ownerfiles.OwnerFileError as e:
        raise SigningError(str(e)) from None
    if len(public) != 32:
        raise InvalidInput("an ed25519 public key is 32 bytes (44 characters of base64)")


def register(
    tree: StoreTree, user: str, public: bytes, server: bool, next_seq: int, share: str = ""
) -> tuple[str, list[str]]:
    """Add ``user``'s public key (the owner only): its id, and what else was done (a
    group-write store made sticky). Signing is required from entry ``next_seq`` on when
    this is the first key."""
    check_registrar(tree, user, public)
    current = read_registry(tree) or Registry(next_seq, {})
    entries: dict[str, list[dict[str, Any]]] = {}
    for key in current.keys.values():
        record = {"id": key.id, "public": base64.b64encode(key.public).decode()}
        entries.setdefault(key.user, []).append({**record, "server": key.server})
    new = {"id": key_id(public), "public": base64.b64encode(public).decode(), "server": server}
    entries.setdefault(user, [])
    entries[user] = [e for e in entries[user] if e["id"] != new["id"]] + [new]
    data = {"schema": KEYS_SCHEMA, "since": current.since, "keys": entries}
    done = ownerfiles.write(tree, KEYS[1], json_text(data).encode(), share)
    return str(new["id"]), done
