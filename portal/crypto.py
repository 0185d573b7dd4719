"""Every cryptographic operation of the portal, and the only module that imports nacl, argon2,
hashlib, hmac or secrets (DESIGN.md section 3).

Keys cross this module's boundary as plain ``bytes`` so that callers never touch a primitive.

* Case key: 32 random bytes; each content item is XChaCha20-Poly1305 encrypted with it, with the
  case id and the item's kind bound as associated data, so ciphertext cannot be moved between
  cases or between fields. A thread message binds (``bound_ad``) every column that gives it
  meaning: its row, visibility, author kind, author and times.
* Staff-only key: a second random key per case for internal notes, sealed to staff holders only
  (never to the reporter's key), so a receipt plus a database copy does not read them.
* Staff keys: an X25519 key pair per staff user; the private key is stored wrapped under a key
  derived from the password (Argon2id, its own salt) and, a second time, under a random recovery
  key shown once.
* Access: the case key sealed (libsodium sealed box) to a public key.
* Receipt: 100 random bits shown as 20 Crockford base32 symbols. Lookup id = HMAC-SHA256(pepper,
  normalised receipt); the reporter's private key = Argon2id(receipt, per-case salt).
* Backups: a key derived from the operator's passphrase with Argon2id (salt and costs in the
  file's header), then libsodium's secretstream (XChaCha20-Poly1305 in chunks, each bound to the
  header and to its place; the last one tagged final, so a truncated file is detected).
* TOTP (RFC 6238 through pyotp): 160-bit secrets, 30-second steps, 6 digits, SHA-1, which is what
  every authenticator app reads from an ``otpauth://`` URI.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import argon2
import nacl.bindings
import nacl.exceptions
import nacl.public
import pyotp
from argon2.low_level import Type, hash_secret_raw

from portal.runtime.slots import ProcessPool

KEY_BYTES = 32
SALT_BYTES = 16
_NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

# Crockford's base32: no I, L, O or U, so what is read aloud or copied by hand survives.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
RECEIPT_SYMBOLS = 20  # 20 x 5 bits = 100 bits, above the 90 bits the design asks for
RECEIPT_BITS = RECEIPT_SYMBOLS * 5
RECOVERY_SYMBOLS = 32  # 160 bits
TEMPORARY_PASSWORD_SYMBOLS = 20  # 100 bits
_GROUP = 4


@dataclass(frozen=True)
class Argon2Cost:
    """Argon2id cost parameters (RFC 9106 section 4). The settings hold the numbers
    (``Settings.kdf_cost``, ``password_cost``); the type lives here, beside the only code that
    runs Argon2, so this module imports nothing of the settings."""

    time_cost: int
    memory_kib: int
    parallelism: int

    def encode(self) -> str:
        """How the costs are stored next to a salt, so changing the settings later does not
        lock out receipts and passwords derived under the old costs."""
        return f"argon2id:t={self.time_cost},m={self.memory_kib},p={self.parallelism}"

    @classmethod
    def decode(cls, text: str) -> Argon2Cost:
        kind, _, params = text.partition(":")
        values = dict(item.split("=", 1) for item in params.split(","))
        if kind != "argon2id" or set(values) != {"t", "m", "p"}:
            raise ValueError(f"unknown key derivation {text!r}")
        return cls(int(values["t"]), int(values["m"]), int(values["p"]))


class DecryptionFailed(Exception):
    """Ciphertext did not authenticate under the key and associated data given."""


class MalformedSecret(ValueError):
    """A receipt or recovery key is not of the expected shape (length or alphabet)."""


class Argon2Busy(Exception):
    """Every slot of the Argon2 pool stayed taken for the whole wait: the process is already
    running as many Argon2 computations as it may hold in memory. Nothing was computed."""


# --- the Argon2 pool -----------------------------------------------------------------------------
#
# Every Argon2 computation (password hash and verification, key derivation from a password, a
# receipt or a backup passphrase) takes a slot of one process-wide bounded semaphore first, so a
# burst of log-ins or receipts cannot hold more than ``size`` x the Argon2 memory cost at once.
# The bound is per process: gunicorn's workers each have their own pool.


#: This process's Argon2 pool. Until ``configure_argon2_pool`` runs (``create_app`` calls it):
#: one slot per CPU, 10 s wait.
ARGON2_POOL = ProcessPool(os.cpu_count() or 1, 10.0)


def configure_argon2_pool(size: int, wait_seconds: float) -> None:
    """Set this process's bound on concurrent Argon2 computations and how long a caller waits
    for a slot. Computations already running keep (and give back) the slot they hold."""
    if size < 1 or wait_seconds < 0:
        raise ValueError("the Argon2 pool needs at least one slot and a wait of 0 s or more")
    ARGON2_POOL.configure(size, wait_seconds)


def argon2_pool_size() -> int:
    return ARGON2_POOL.size


@contextmanager
def _argon2_slot() -> Iterator[None]:
    # The pool of the moment is bound here: the slot goes back to the semaphore it came from,
    # even if the pool is reconfigured meanwhile.
    with ARGON2_POOL.slot(Argon2Busy):
        yield


# --- random values -----------------------------------------------------------------------------


def random_bytes(n: int = KEY_BYTES) -> bytes:
    return secrets.token_bytes(n)


def random_id() -> str:
    """A random 128-bit identifier (hex). Used for rows whose order must reveal nothing."""
    return secrets.token_hex(16)


def random_sort_key() -> int:
    """A random tie-breaker for lists, so equal days never fall back to arrival order."""
    return secrets.randbits(62)


def random_token() -> str:
    return secrets.token_urlsafe(32)


def _symbols(count: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(count))


def _grouped(symbols: str) -> str:
    return "-".join(symbols[i : i + _GROUP] for i in range(0, len(symbols), _GROUP))


def new_handle() -> str:
    """A short random case handle for staff (40 bits; uniqueness is checked by the database)."""
    return _grouped(_symbols(8))


def is_handle(text: str) -> bool:
    return len(text) == 9 and text[4] == "-" and all(ch in _ALPHABET for ch in text[:4] + text[5:])


# --- receipts and recovery keys ------------------------------------------------------------------


def new_receipt() -> str:
    """A fresh receipt, grouped for reading: ``XXXX-XXXX-XXXX-XXXX-XXXX``."""
    return _grouped(_symbols(RECEIPT_SYMBOLS))


def _normalise_symbols(text: str, expected: int) -> str:
    cleaned = "".join(ch for ch in text.upper() if not ch.isspace() and ch != "-")
    cleaned = cleaned.translate(_CONFUSABLE)
    if len(cleaned) != expected or any(ch not in _ALPHABET for ch in cleaned):
        raise MalformedSecret(f"expected {expected} letters and digits")
    return cleaned


def normalise_receipt(text: str) -> str:
    """Accept a receipt however it was copied: any case, spaces, dashes, O for 0, I or L for 1."""
    return _normalise_symbols(text, RECEIPT_SYMBOLS)


def format_receipt(normalised: str) -> str:
    return _grouped(normalised)


def receipt_lookup_id(pepper: bytes, normalised_receipt: str) -> bytes:
    return hmac.new(
        pepper, b"receipt-lookup:" + normalised_receipt.encode(), hashlib.sha256
    ).digest()


def _argon2_key(secret: bytes, salt: bytes, cost: Argon2Cost) -> bytes:
    with _argon2_slot():
        return hash_secret_raw(
            secret=secret,
            salt=salt,
            time_cost=cost.time_cost,
            memory_cost=cost.memory_kib,
            parallelism=cost.parallelism,
            hash_len=KEY_BYTES,
            type=Type.ID,
        )


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def derive_reporter_private_key(normalised_receipt: str, salt: bytes, cost: Argon2Cost) -> bytes:
    """The reporter's X25519 private key, derived from the receipt; never stored."""
    return _argon2_key(b"reporter-key:" + normalised_receipt.encode(), salt, cost)


def public_key_of(private_key: bytes) -> bytes:
    return bytes(nacl.public.PrivateKey(private_key).public_key)


def new_recovery_key() -> str:
    return _grouped(_symbols(RECOVERY_SYMBOLS))


def normalise_recovery_key(text: str) -> str:
    return _normalise_symbols(text, RECOVERY_SYMBOLS)


def new_temporary_password(min_chars: int = 0) -> str:
    """A one-time password an admin hands to the owner of a new or reset account: 100+ random
    bits in grouped Crockford base32 (easy to read out or copy by hand), and at least
    ``min_chars`` characters long. Its owner must replace it at the first log-in."""
    count = TEMPORARY_PASSWORD_SYMBOLS
    while len(_grouped("0" * count)) < min_chars:
        count += _GROUP
    return _grouped(_symbols(count))


def _recovery_wrapping_key(normalised_recovery: str) -> bytes:
    # The recovery key carries 160 random bits, so a keyed hash is enough; no stretching needed.
    return hashlib.blake2b(
        normalised_recovery.encode(), digest_size=KEY_BYTES, person=b"portal-recovery"
    ).digest()


# --- authenticated encryption ------------------------------------------------------------------


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encrypt(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, associated, nonce, key
    )
    return nonce + sealed


def decrypt(key: bytes, blob: bytes, associated: bytes) -> bytes:
    nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
    try:
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed, associated, nonce, key
        )
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise DecryptionFailed from exc


def case_item_ad(case_id: str, kind: str, item_id: str = "") -> bytes:
    """Associated data binding an item to its case, its kind and (for messages) its own id."""
    return f"portal-case-item|{case_id}|{kind}|{item_id}".encode()


def staff_key_tag(case_key: bytes, case_id: str, staff_key: bytes) -> bytes:
    """A check value that ties a case's staff-only key to its case key: HMAC-SHA256 under the
    case key. Without the case key, a staff-only key of one's own choosing sealed to the
    holders (a sealed box says nothing of who sealed it) gets no tag that verifies; with the
    case key alone the tag does not give the staff-only key away (HMAC is a pseudo-random
    function of its 256-bit random input)."""
    label = bound_ad("staff-key", 1, [case_id])
    return hmac.new(case_key, label + staff_key, hashlib.sha256).digest()


def bound_ad(domain: str, version: int, fields: Sequence[str | None]) -> bytes:
    """Associated data that binds a ciphertext to every column that gives it meaning.

    Unambiguous by construction: a fixed prefix, then the domain, the format version and each
    field, each one either ``0x00`` (none) or ``0x01`` + a 4-byte big-endian length + UTF-8. So
    no two different field lists encode alike (no separator can be smuggled into a value, and
    none is distinct from the empty string), and formats of different versions never collide.
    """
    out = bytearray(b"portal-ad\x00")
    for value in (domain, str(version), *fields):
        if value is None:
            out += b"\x00"
            continue
        encoded = value.encode()
        out += b"\x01" + len(encoded).to_bytes(4, "big") + encoded
    return bytes(out)


# --- public-key sealing ------------------------------------------------------------------------


def new_keypair() -> tuple[bytes, bytes]:
    """(private, public) X25519 key pair."""
    private = nacl.public.PrivateKey.generate()
    return bytes(private), bytes(private.public_key)


def seal(public_key: bytes, data: bytes) -> bytes:
    return bytes(nacl.public.SealedBox(nacl.public.PublicKey(public_key)).encrypt(data))


def unseal(private_key: bytes, sealed: bytes) -> bytes:
    try:
        return bytes(nacl.public.SealedBox(nacl.public.PrivateKey(private_key)).decrypt(sealed))
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise DecryptionFailed from exc


#: Symbols of a key fingerprint: 16 x 5 = 80 bits, read aloud as four groups of four.
FINGERPRINT_SYMBOLS = 16


def key_fingerprint(public_key: bytes) -> str:
    """A short fingerprint of a staff public key, ``XXXX-XXXX-XXXX-XXXX`` in Crockford base32,
    for a colleague to compare with what its owner reads out from their own account page before
    sealing case keys to it. 80 bits of SHA-256: making a second key pair with the same
    fingerprint costs about 2^80 key generations."""
    digest = hashlib.sha256(b"portal-staff-key-fingerprint|" + public_key).digest()
    number = int.from_bytes(digest[:10], "big")  # 80 bits
    symbols = "".join(
        _ALPHABET[(number >> (5 * (FINGERPRINT_SYMBOLS - 1 - i))) & 31]
        for i in range(FINGERPRINT_SYMBOLS)
    )
    return _grouped(symbols)


def fingerprint_matches(public_key: bytes, typed: str) -> bool:
    """Whether ``typed`` (any case, spaces or dashes, O for 0, I or L for 1) is the fingerprint
    of ``public_key``. Something that is not a fingerprint at all matches nothing."""
    try:
        normalised = _normalise_symbols(typed, FINGERPRINT_SYMBOLS)
    except MalformedSecret:
        return False
    expected = key_fingerprint(public_key).replace("-", "")
    return constant_time_equal(normalised.encode(), expected.encode())


# --- staff key material ------------------------------------------------------------------------

_STAFF_KEY_AD = b"portal-staff-private-key"


@dataclass(frozen=True)
class StaffKeys:
    public_key: bytes
    password_salt: bytes
    key_by_password: bytes
    key_by_recovery: bytes
    recovery_key: str  # shown once to the new staff user, never stored


def new_staff_keys(password: str, cost: Argon2Cost) -> StaffKeys:
    private, public = new_keypair()
    salt, by_password = wrap_with_password(private, password, cost)
    recovery, by_recovery = wrap_with_new_recovery_key(private)
    return StaffKeys(
        public_key=public,
        password_salt=salt,
        key_by_password=by_password,
        key_by_recovery=by_recovery,
        recovery_key=recovery,
    )


class SharedPasswordKeys:
    """Keys for several staff accounts made with one published password (the demo accounts',
    printed in the README): its verification hash and the key it wraps private keys under are
    computed once, at full cost, so every account made from here shares one salt. Logging into
    any of them still costs a full verification and a full derivation. Never for real accounts:
    a shared salt lets one guess be tried against all of them at once, which gives nothing away
    only when the password is public anyway."""

    def __init__(self, password: str, kdf_cost: Argon2Cost, password_cost: Argon2Cost) -> None:
        self._password = password.encode()
        self.kdf_cost = kdf_cost
        self.password_hash = hash_password(password, password_cost)
        self.salt = new_salt()
        self._wrapping_key = _argon2_key(self._password, self.salt, kdf_cost)

    def holds(self, password: str) -> bool:
        return hmac.compare_digest(password.encode(), self._password)

    def new_staff_keys(self) -> StaffKeys:
        private, public = new_keypair()
        recovery, by_recovery = wrap_with_new_recovery_key(private)
        return StaffKeys(
            public_key=public,
            password_salt=self.salt,
            key_by_password=encrypt(self._wrapping_key, private, _STAFF_KEY_AD),
            key_by_recovery=by_recovery,
            recovery_key=recovery,
        )

    def private_key(self, key_by_password: bytes) -> bytes:
        """A private key wrapped by ``new_staff_keys``, unwrapped with the key at hand."""
        return decrypt(self._wrapping_key, key_by_password, _STAFF_KEY_AD)


def wrap_with_password(private_key: bytes, password: str, cost: Argon2Cost) -> tuple[bytes, bytes]:
    """(new salt, the private key wrapped under a key derived from ``password`` with it)."""
    salt = new_salt()
    return salt, encrypt(_argon2_key(password.encode(), salt, cost), private_key, _STAFF_KEY_AD)


def wrap_with_new_recovery_key(private_key: bytes) -> tuple[str, bytes]:
    """(a new recovery key to show once, the private key wrapped under it)."""
    recovery = new_recovery_key()
    wrapped = encrypt(
        _recovery_wrapping_key(normalise_recovery_key(recovery)), private_key, _STAFF_KEY_AD
    )
    return recovery, wrapped


def unwrap_with_password(password: str, salt: bytes, wrapped: bytes, cost: Argon2Cost) -> bytes:
    return decrypt(_argon2_key(password.encode(), salt, cost), wrapped, _STAFF_KEY_AD)


def unwrap_with_recovery(recovery_key: str, wrapped: bytes) -> bytes:
    return decrypt(
        _recovery_wrapping_key(normalise_recovery_key(recovery_key)), wrapped, _STAFF_KEY_AD
    )


# --- password verification hashes ---------------------------------------------------------------


def _hasher(cost: Argon2Cost) -> argon2.PasswordHasher:
    return argon2.PasswordHasher(
        time_cost=cost.time_cost,
        memory_cost=cost.memory_kib,
        parallelism=cost.parallelism,
        type=Type.ID,
    )


def hash_password(password: str, cost: Argon2Cost) -> str:
    with _argon2_slot():
        return _hasher(cost).hash(password)


def verify_password(password_hash: str, password: str, cost: Argon2Cost) -> bool:
    try:
        with _argon2_slot():
            return _hasher(cost).verify(password_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def is_password_hash(text: str) -> bool:
    """Whether ``text`` is an Argon2id hash in its encoded form (so a plain code put into the
    settings by mistake is refused at start-up rather than compared)."""
    try:
        return argon2.extract_parameters(text).type is Type.ID
    except argon2.exceptions.InvalidHashError:
        return False


def burn_password_time(cost: Argon2Cost) -> None:
    """Spend the time of one verification, so an unknown e-mail answers as slowly as a known one."""
    _argon2_key(b"no-such-account", b"\0" * SALT_BYTES, cost)


def burn_receipt_time(cost: Argon2Cost) -> None:
    """Spend the time of one receipt derivation, so an unknown receipt reveals nothing by timing."""
    _argon2_key(b"no-such-receipt", b"\0" * SALT_BYTES, cost)


# --- keyed hashes for tokens and rate limits ----------------------------------------------------


#: What every insights API token starts with, so a leaked one is recognisable (secret scanners,
#: logs) and a typo'd paste is refused before any lookup.
API_TOKEN_PREFIX = "pti_"  # noqa: S105  # nosec B105  # a public prefix, not a secret


def new_api_token() -> str:
    """A personal API token: 32 random bytes, URL-safe base64 without padding, with a prefix."""
    return API_TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def token_digest(token: str) -> bytes:
    """What the database keeps of a bearer token: its SHA-256, so a copy of the table is useless."""
    return hashlib.sha256(token.encode()).digest()


def subkey(secret: bytes, purpose: str) -> bytes:
    """An independent key for one purpose, derived from an instance secret."""
    return hashlib.blake2b(purpose.encode(), key=secret[:64], digest_size=KEY_BYTES).digest()


def keyed_digest(key: bytes, value: str) -> str:
    """HMAC-SHA256 of a value (e.g. a client address for a rate limit), hex."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def chain_hash(key: bytes, prev_hash: bytes, payload: bytes) -> bytes:
    """One link of the audit chain: HMAC-SHA256 under the audit key over the previous link and
    this entry. Without the key, an edited log cannot be given a chain that verifies."""
    return hmac.new(key, b"portal-audit|" + prev_hash + payload, hashlib.sha256).digest()


def audit_head_mac(key: bytes, fields: bytes) -> bytes:
    """The seal of the audit chain's head (its count, last hash and roll-up day): HMAC-SHA256
    under the audit key, domain-separated from the links, so that whoever has only the
    database cannot move the head back after cutting the log's tail."""
    return hmac.new(key, b"portal-audit-head|" + fields, hashlib.sha256).digest()


#: Bytes of an anchor's MAC: 128 bits, short enough to copy from a mail.
AUDIT_ANCHOR_MAC_BYTES = 16


def audit_anchor_mac(key: bytes, fields: bytes) -> bytes:
    """The MAC of a published anchor (count, hash, day): proves the anchor was made by a holder
    of the audit key, not typed in by whoever wants a verification to fail or pass."""
    mac = hmac.new(key, b"portal-audit-anchor|" + fields, hashlib.sha256).digest()
    return mac[:AUDIT_ANCHOR_MAC_BYTES]


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


# --- backup files --------------------------------------------------------------------------------

BACKUP_STREAM_HEADER_BYTES = nacl.bindings.crypto_secretstream_xchacha20poly1305_HEADERBYTES
#: What each encrypted chunk of a backup adds to its plaintext (the tag byte and the MAC).
BACKUP_CHUNK_OVERHEAD = nacl.bindings.crypto_secretstream_xchacha20poly1305_ABYTES
_TAG_MESSAGE = nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def backup_key(passphrase: str, salt: bytes, cost: Argon2Cost) -> bytes:
    """The key of a backup file, from the operator's passphrase (Argon2id, the file's own salt)."""
    return _argon2_key(b"portal-backup:" + passphrase.encode(), salt, cost)


class BackupSealer:
    """Encrypts a backup as a stream of chunks. Every chunk is authenticated together with
    ``associated`` (the file's header); the chunk passed with ``final=True`` closes the stream."""

    def __init__(self, key: bytes, associated: bytes) -> None:
        self._state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
        self.header = nacl.bindings.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, key
        )
        self._associated = associated

    def seal(self, chunk: bytes, *, final: bool) -> bytes:
        return nacl.bindings.crypto_secretstream_xchacha20poly1305_push(
            self._state, chunk, self._associated, _TAG_FINAL if final else _TAG_MESSAGE
        )


class BackupOpener:
    """Decrypts what ``BackupSealer`` wrote, chunk by chunk, in order. A chunk that was changed,
    moved, or taken from another file raises DecryptionFailed; ``open`` says whether the chunk
    was the final one."""

    def __init__(self, key: bytes, stream_header: bytes, associated: bytes) -> None:
        self._state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
        try:
            nacl.bindings.crypto_secretstream_xchacha20poly1305_init_pull(
                self._state, stream_header, key
            )
        except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
            raise DecryptionFailed from exc
        self._associated = associated

    def open(self, sealed: bytes) -> tuple[bytes, bool]:
        try:
            chunk, tag = nacl.bindings.crypto_secretstream_xchacha20poly1305_pull(
                self._state, sealed, self._associated
            )
        except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
            raise DecryptionFailed from exc
        if tag not in (_TAG_MESSAGE, _TAG_FINAL):
            raise DecryptionFailed
        return chunk, tag == _TAG_FINAL


# --- TOTP second factor -------------------------------------------------------------------------

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
TOTP_SECRET_BYTES = 20  # 160 bits, as RFC 4226 section 4 recommends
#: Codes of one step either side of the server's clock are accepted (RFC 6238 section 5.2).
TOTP_DRIFT_STEPS = 1
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def new_totp_secret() -> str:
    """A fresh TOTP secret in RFC 4648 base32 without padding (32 symbols)."""
    return base64.b32encode(secrets.token_bytes(TOTP_SECRET_BYTES)).decode().rstrip("=")


def normalise_totp_secret(text: str) -> str:
    """Accept a secret however it was copied: any case, spaces and dashes ignored."""
    cleaned = "".join(ch for ch in text.upper() if not ch.isspace() and ch != "-").rstrip("=")
    if len(cleaned) < 16 or any(ch not in _B32 for ch in cleaned):
        raise MalformedSecret("a TOTP secret has at least 16 base32 letters and digits (A-Z, 2-7)")
    if len(cleaned) % 8 in (1, 3, 6):  # lengths base32 cannot produce
        raise MalformedSecret("that is not a complete base32 TOTP secret")
    return cleaned


def group_totp_secret(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def totp_step(at: dt.datetime) -> int:
    return int(at.timestamp()) // TOTP_STEP_SECONDS


def totp_code(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS).generate_otp(step)


def totp_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def totp_matching_step(
    secret: str, code: str, at: dt.datetime, after_step: int | None
) -> int | None:
    """The time step whose code ``code`` is, within the allowed drift and strictly after
    ``after_step`` (the last step accepted for this secret: a code is good once); else None.
    Every candidate is compared in constant time."""
    current = totp_step(at)
    found = None
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        matches = hmac.compare_digest(totp_code(secret, step).encode(), code.encode())
        if matches and (after_step is None or step > after_step) and found is None:
            found = step
    return found
