"""The encrypted container: its clear header, the secretstream chunks, the named entries; and
the passphrase that opens it."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from portal import crypto
from portal.crypto import Argon2Cost
from portal.ops.backup.errors import BackupDamaged, NotABackup, WeakPassphrase, WrongPassphrase

MAGIC = b"PORTALBK"
FORMAT_VERSION = 1
#: Plaintext bytes per encrypted chunk: what a backup or a restore holds in memory at a time.
CHUNK_BYTES = 1024 * 1024
MIN_CHUNK_BYTES = 1024
MAX_CHUNK_BYTES = 16 * 1024 * 1024
#: A passphrase shorter than this, or with fewer different characters, is refused.
PASSPHRASE_MIN_CHARS = 16
PASSPHRASE_MIN_DISTINCT = 8
#: The largest Argon2 costs a header may ask for: a damaged header must not make a restore
#: allocate terabytes or run for days.
MAX_KDF_MEMORY_KIB = 4 * 1024 * 1024
MAX_KDF_TIME_COST = 64
MAX_KDF_PARALLELISM = 64

_HEADER = struct.Struct(">8sBIIII16s")
_BLOCK = struct.Struct(">I")
_MAX_SMALL_ENTRY = 64 * 1024
_COPY_BYTES = 1024 * 1024


def check_passphrase(passphrase: str) -> None:
    """Refuse a passphrase that an offline guesser would find quickly: the file can be copied
    and attacked for as long as the thief likes."""
    if not passphrase.strip():
        raise WeakPassphrase("the passphrase is empty")
    if len(passphrase) < PASSPHRASE_MIN_CHARS:
        raise WeakPassphrase(
            f"the passphrase has {len(passphrase)} characters; it needs at least"
            f" {PASSPHRASE_MIN_CHARS} (several random words are easiest)"
        )
    if len(set(passphrase)) < PASSPHRASE_MIN_DISTINCT:
        raise WeakPassphrase(
            f"the passphrase uses {len(set(passphrase))} different characters; it needs at least"
            f" {PASSPHRASE_MIN_DISTINCT}"
        )


@dataclass(frozen=True)
class _Header:
    chunk_bytes: int
    cost: Argon2Cost
    salt: bytes

    def pack(self) -> bytes:
        return _HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            self.chunk_bytes,
            self.cost.time_cost,
            self.cost.memory_kib,
            self.cost.parallelism,
            self.salt,
        )

    @classmethod
    def read(cls, fh: BinaryIO) -> tuple[_Header, bytes]:
        raw = fh.read(_HEADER.size)
        if len(raw) < len(MAGIC) or raw[: len(MAGIC)] != MAGIC:
            raise NotABackup("this is not a portal backup file")
        if len(raw) < _HEADER.size:
            raise BackupDamaged("the backup file is truncated: it ends inside its header")
        _, version, chunk, t, m, p, salt = _HEADER.unpack(raw)
        if version != FORMAT_VERSION:
            raise NotABackup(
                f"this backup has format version {version}; this portal reads version"
                f" {FORMAT_VERSION} (use the portal version that made it)"
            )
        if not (MIN_CHUNK_BYTES <= chunk <= MAX_CHUNK_BYTES) or not (
            1 <= t <= MAX_KDF_TIME_COST and 8 <= m <= MAX_KDF_MEMORY_KIB
        ):
            raise BackupDamaged("the backup file's header is damaged (impossible parameters)")
        if not 1 <= p <= MAX_KDF_PARALLELISM:
            raise BackupDamaged("the backup file's header is damaged (impossible parameters)")
        return cls(chunk, Argon2Cost(t, m, p), salt), raw


class _Writer:
    """Entries in, encrypted chunks out."""

    def __init__(self, out: BinaryIO, passphrase: str, cost: Argon2Cost, chunk_bytes: int):
        header = _Header(chunk_bytes, cost, crypto.new_salt())
        packed = header.pack()
        self._sealer = crypto.BackupSealer(crypto.backup_key(passphrase, header.salt, cost), packed)
        self._out = out
        self._chunk = chunk_bytes
        self._buffer = bytearray()
        out.write(packed + self._sealer.header)

    def _write(self, data: bytes) -> None:
        self._buffer += data
        # Strictly more than a chunk: what remains at the end (at least the end marker) is the
        # final chunk, so the final tag always sits on a chunk that carries data.
        while len(self._buffer) > self._chunk:
            self._out.write(self._sealer.seal(bytes(self._buffer[: self._chunk]), final=False))
            del self._buffer[: self._chunk]

    def _name(self, name: str) -> None:
        encoded = name.encode()
        self._write(bytes([len(encoded)]) + encoded)

    def _block(self, data: bytes) -> None:
        for start in range(0, len(data), _COPY_BYTES):
            piece = data[start : start + _COPY_BYTES]
            self._write(_BLOCK.pack(len(piece)) + piece)

    def entry(self, name: str, data: bytes) -> None:
        self._name(name)
        if data:
            self._block(data)
        self._write(_BLOCK.pack(0))

    @contextmanager
    def entry_stream(self, name: str) -> Iterator[Callable[[bytes], None]]:
        self._name(name)

        def sink(data: bytes) -> None:
            if data:
                self._block(data)

        yield sink
        self._write(_BLOCK.pack(0))

    def close(self) -> None:
        self._write(b"\0")  # the end marker: an entry without a name
        self._out.write(self._sealer.seal(bytes(self._buffer), final=True))
        self._buffer.clear()


class _Reader:
    """Encrypted chunks in, authenticated plaintext out; every failure is a named error."""

    def __init__(self, fh: BinaryIO, passphrase: str) -> None:
        header, packed = _Header.read(fh)
        stream_header = fh.read(crypto.BACKUP_STREAM_HEADER_BYTES)
        if len(stream_header) < crypto.BACKUP_STREAM_HEADER_BYTES:
            raise BackupDamaged("the backup file is truncated: it ends inside its header")
        key = crypto.backup_key(passphrase, header.salt, header.cost)
        try:
            self._opener = crypto.BackupOpener(key, stream_header, packed)
        except crypto.DecryptionFailed as exc:  # pragma: no cover - any 24 bytes are accepted
            raise BackupDamaged("the backup file's header is damaged") from exc
        self._fh = fh
        self._sealed_bytes = header.chunk_bytes + crypto.BACKUP_CHUNK_OVERHEAD
        self._buffer = bytearray()
        self._chunks = 0
        self.final = False

    def _next_chunk(self) -> None:
        if self.final:
            raise BackupDamaged("the backup file is damaged: its content ends too early")
        sealed = self._fh.read(self._sealed_bytes)
        if not sealed:
            raise BackupDamaged(
                "the backup file is truncated: it ends before its final chunk"
                f" (after {self._chunks} chunks)"
            )
        try:
            chunk, self.final = self._opener.open(sealed)
        except crypto.DecryptionFailed as exc:
            if self._chunks == 0:
                raise WrongPassphrase(
                    "wrong passphrase (or the start of the file is damaged)"
                ) from exc
            short = len(sealed) < self._sealed_bytes
            raise BackupDamaged(
                f"the backup file is {'truncated or ' if short else ''}damaged: chunk"
                f" {self._chunks + 1} does not authenticate"
            ) from exc
        self._chunks += 1
        if self.final and self._fh.read(1):
            raise BackupDamaged("the backup file is damaged: it has data after its final chunk")
        self._buffer += chunk

    def read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._next_chunk()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def name(self) -> str:
        length = self.read(1)[0]
        try:
            return self.read(length).decode()
        except UnicodeDecodeError as exc:  # pragma: no cover - authenticated, so our own bug
            raise BackupDamaged("the backup file's content is malformed") from exc

    def blocks(self, limit: int | None = None) -> Iterator[bytes]:
        total = 0
        while True:
            (length,) = _BLOCK.unpack(self.read(_BLOCK.size))
            if length == 0:
                return
            total += length
            if length > _COPY_BYTES or (limit is not None and total > limit):
                raise BackupDamaged("the backup file's content is malformed (entry too large)")
            yield self.read(length)

    def entry(self, expected: str) -> bytes:
        found = self.name()
        if found != expected:
            raise BackupDamaged(f"the backup file's content is malformed ({found!r} out of place)")
        return b"".join(self.blocks(_MAX_SMALL_ENTRY))

    def finish(self) -> None:
        if self.name() != "" or self._buffer:
            raise BackupDamaged("the backup file's content is malformed (data after the end)")
        if not self.final:
            self._next_chunk()
            if not self.final or self._buffer:
                raise BackupDamaged("the backup file's content is malformed (data after the end)")
