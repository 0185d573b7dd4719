"""Attachments: check and clean what a reporter sends, encrypt it in chunks under the case key,
store it in the database, list it, and read it back one chunk at a time (issue 5).

Nothing of a file reaches a disk in the clear: the upload is held in memory
(``portal.web.uploads``), cleaned in memory (``sanitize.clean_attachment``), and each chunk is
encrypted before it is added to the session. The database holds the ciphertext, so every app
server can read it.

Each attachment has an encrypted metadata item (name, type, size, whether it was cleaned, how
many chunks, the message it came with) bound to its case and id, and its content in chunks of
``CHUNK_BYTES`` bound to the case, the attachment, their place and whether each is the last.
A chunk moved to another attachment or case, reordered, dropped or added fails to decrypt or
does not match the count, and reading stops with ``AttachmentDamaged``.

Cleaning a large picture holds hundreds of MiB while it runs, so a process cleans at most
``attachment_max_concurrent`` forms' files at once (``cleaning_slot``), as it runs at most so
many Argon2 computations: a burst of uploads to a threaded worker waits for its turn, or is
told the portal is busy, instead of exhausting the memory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import PortalError
from portal.models import Attachment, AttachmentChunk, MessageAuthor
from portal.runtime.slots import ProcessPool
from portal.services.attachments import sanitize
from portal.services.attachments.sanitize import detect as sanitize_detect
from portal.services.attachments.sanitize.core import (
    CannotClean,
    CleanFailure,
    FileKind,
    TypeNotAllowed,
    TypeRefusal,
)
from portal.services.configuration import policy
from portal.settings import Settings

#: Plaintext bytes in one encrypted chunk: a download holds one chunk in memory at a time.
CHUNK_BYTES = 256 * 1024
#: What a file kept as it is, of unknown content, is served as.
UNCLEANED_TYPE = "application/octet-stream"

META = "attachment"
CHUNK = "attachment-chunk"

#: Formats of an attachment's metadata ciphertext (``Attachment.ad_version``).
META_LEGACY = 0  # bound to the case and the attachment only
META_BOUND = 1  # also to the clear columns that mean something: who sent it, and the day

#: Failures that do not make a file unfit, only uncleanable: with the policy's switch on, the
#: reporter may send such a file as it is. Empty and oversize files are refused whatever.
_KEEPABLE_FAILURES = frozenset(
    {
        CleanFailure.CORRUPT,
        CleanFailure.ENCRYPTED,
        CleanFailure.TOO_MANY_PIXELS,
        CleanFailure.ANIMATED,
        CleanFailure.ARCHIVE_TOO_LARGE,
        CleanFailure.NOT_UTF8,
    }
)
_OFFICE = frozenset({FileKind.DOCX, FileKind.XLSX, FileKind.PPTX})
_LEGACY_OFFICE_EXTENSIONS = frozenset({"doc", "xls", "ppt"})


@dataclass(frozen=True)
class Rules:
    """What may be attached: deployment settings (size, count, types) and the policy switch."""

    max_bytes: int
    max_count: int
    kinds: frozenset[FileKind]
    keep_uncleaned: bool

    @property
    def enabled(self) -> bool:
        return self.max_count > 0 and bool(self.kinds)

    @property
    def extensions(self) -> list[str]:
        """File name extensions of the allowed types, for the form's ``accept`` hint."""
        return sorted({f".{ext}" for kind in self.kinds for ext in kind.info.extensions})


def rules(session: Session, settings: Settings) -> Rules:
    names = settings.attachment_type_names
    return Rules(
        max_bytes=settings.attachment_max_bytes,
        max_count=settings.attachment_max_count,
        kinds=frozenset(kind for kind in FileKind if kind.value in names),
        keep_uncleaned=policy.values(session).attachments_keep_uncleaned,
    )


@dataclass(frozen=True)
class Upload:
    """A file as the browser sent it. ``filename`` is never logged or stored as sent."""

    filename: str
    declared_type: str
    data: bytes


@dataclass(frozen=True)
class PreparedFile:
    """A file ready to be encrypted: cleaned, or kept as it is after the reporter's consent."""

    filename: str
    content_type: str
    data: bytes
    cleaned: bool


@dataclass(frozen=True)
class RefusedFile:
    filename: str  # as sent, to name it in the message to the reporter who sent it
    reason: str  # a CleanFailure or TypeRefusal value
    # The policy allows sending it as it is, but the reporter has not ticked the warning yet.
    may_keep_as_is: bool


class AttachmentsRefused(PortalError):
    """Nothing is sent: too many files (``too_many`` is the number chosen), or some files are
    refused (``refused``). The messages word the reasons; the exception holds no content."""

    def __init__(self, refused: Sequence[RefusedFile] = (), too_many: int | None = None) -> None:
        super().__init__(f"{len(refused)} file(s) refused" if refused else "too many files")
        self.refused = list(refused)
        self.too_many = too_many


class NoSuchAttachment(PortalError):
    pass


class AttachmentDamaged(PortalError):
    """Stored chunks do not decrypt, or are missing, reordered or extra."""


class AttachmentsBusy(PortalError):
    """Every cleaning slot of this process stayed taken for the whole wait: nothing of the
    form was cleaned or stored."""


# --- the cleaning pool -----------------------------------------------------------------------

#: This process's cleaning pool. Until ``configure_cleaning_pool`` runs (``create_app`` calls
#: it): one slot per CPU, 10 s.
CLEANING_POOL = ProcessPool(os.cpu_count() or 1, 10.0)


def configure_cleaning_pool(size: int, wait_seconds: float) -> None:
    """Set this process's bound on forms whose files are cleaned at once, and how long a form
    waits for a slot. Forms already being cleaned keep (and give back) the slot they hold."""
    if size < 1 or wait_seconds < 0:
        raise ValueError("the cleaning pool needs at least one slot and a wait of 0 s or more")
    CLEANING_POOL.configure(size, wait_seconds)


def cleaning_pool_size() -> int:
    return CLEANING_POOL.size


@contextmanager
def cleaning_slot(uploads: Sequence[Upload], rules: Rules) -> Iterator[None]:
    """Hold one of this process's cleaning slots for the ``with`` block, in which the form's
    files are cleaned (``prepare``), encrypted and stored; ``AttachmentsBusy`` when none frees
    within the wait. A form without files takes none, and neither does one with more files
    than allowed: ``prepare`` refuses it before cleaning anything, and the reporter hears
    that rather than "busy"."""
    if not uploads or len(uploads) > rules.max_count:
        yield
        return
    with CLEANING_POOL.slot(AttachmentsBusy):
        yield


def _extension(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[1].lower() if "." in base.strip(".") else ""


def _named_as_allowed(filename: str, kinds: frozenset[FileKind]) -> bool:
    """Whether the name claims a type the portal accepts (a kept file is not examined further,
    so its name is the only type it has)."""
    extension = _extension(filename)
    if extension in _LEGACY_OFFICE_EXTENSIONS:
        return bool(kinds & _OFFICE)
    return any(extension in kind.info.extensions for kind in kinds)


def prepare(
    uploads: Sequence[Upload], rules: Rules, *, keep_uncleaned: bool = False
) -> list[PreparedFile]:
    """Clean every upload, or refuse them all: a form is sent with all its files or not at
    all. ``keep_uncleaned`` is the reporter's ticked warning; it counts only where the policy
    allows it and only for files that could not be cleaned (never for a wrong or unsafe type,
    an empty or an oversize file)."""
    if len(uploads) > rules.max_count:
        raise AttachmentsRefused(too_many=len(uploads))
    prepared: list[PreparedFile] = []
    refused: list[RefusedFile] = []
    for upload in uploads:
        try:
            cleaned = sanitize.clean_attachment(
                upload.filename,
                upload.declared_type,
                upload.data,
                max_bytes=rules.max_bytes,
                allowed=rules.kinds,
            )
        except CannotClean as error:
            reason: str = error.reason.value
            keepable = error.reason in _KEEPABLE_FAILURES
        except TypeNotAllowed as error:
            reason = error.reason.value
            keepable = error.reason is TypeRefusal.LEGACY_OFFICE
        else:
            prepared.append(
                PreparedFile(cleaned.filename, cleaned.content_type, cleaned.data, cleaned=True)
            )
            continue
        keepable = (
            keepable and rules.keep_uncleaned and _named_as_allowed(upload.filename, rules.kinds)
        )
        if keepable and keep_uncleaned:
            prepared.append(
                PreparedFile(
                    sanitize_detect.safe_filename_as_is(upload.filename),
                    UNCLEANED_TYPE,
                    upload.data,
                    cleaned=False,
                )
            )
        else:
            refused.append(RefusedFile(upload.filename, reason, may_keep_as_is=keepable))
    if refused:
        raise AttachmentsRefused(refused)
    return prepared


# --- storing and reading ---------------------------------------------------------------------


@dataclass(frozen=True)
class AttachmentInfo:
    id: str
    filename: str
    content_type: str
    size: int
    cleaned: bool
    day: dt.date
    author: MessageAuthor
    message_id: str | None  # the thread entry it came with; None: sent with the concern
    chunks: int


def _meta_ad(case_id: str, attachment_id: str) -> bytes:
    """The legacy format's associated data (``META_LEGACY``)."""
    return crypto.case_item_ad(case_id, META, attachment_id)


def _bound_meta_ad(case_id: str, attachment_id: str, author: str, day: dt.date) -> bytes:
    """The bound format's (``META_BOUND``): who sent the file decides who sees it listed."""
    return crypto.bound_ad(META, META_BOUND, [case_id, attachment_id, author, day.isoformat()])


def _row_ad(row: Attachment, legacy_ok: bool) -> bytes | None:
    if row.ad_version == META_BOUND:
        return _bound_meta_ad(row.case_id, row.id, row.author, row.created_on)
    if row.ad_version == META_LEGACY and legacy_ok:
        return _meta_ad(row.case_id, row.id)
    return None


def _chunk_ad(case_id: str, attachment_id: str, seq: int, last: bool) -> bytes:
    return crypto.case_item_ad(
        case_id, CHUNK, f"{attachment_id}:{seq}:{'last' if last else 'more'}"
    )


def store(
    session: Session,
    case_id: str,
    case_key: bytes,
    files: Sequence[PreparedFile],
    *,
    author: MessageAuthor,
    today: dt.date,
    message_id: str | None = None,
) -> list[str]:
    """Encrypt and add ``files`` to the case; return their ids. Reporter files carry the day
    only, like every reporter event."""
    ids = []
    for file in files:
        attachment_id = crypto.random_id()
        # Cut one chunk at a time as it is encrypted: a list of all the pieces first would be
        # a second copy of the whole file.
        chunks = max(1, -(-len(file.data) // CHUNK_BYTES))
        meta = {
            "name": file.filename,
            "type": file.content_type,
            "size": len(file.data),
            "cleaned": file.cleaned,
            "chunks": chunks,
            "message": message_id,
        }
        blob = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode()
        ad = _bound_meta_ad(case_id, attachment_id, author.value, today)
        session.add(
            Attachment(
                id=attachment_id,
                case_id=case_id,
                author=author.value,
                created_on=today,
                meta_ciphertext=crypto.encrypt(case_key, blob, ad),
                ad_version=META_BOUND,
            )
        )
        session.flush()
        last = chunks - 1
        for seq in range(chunks):
            piece = file.data[seq * CHUNK_BYTES : (seq + 1) * CHUNK_BYTES]
            session.add(
                AttachmentChunk(
                    attachment_id=attachment_id,
                    seq=seq,
                    ciphertext=crypto.encrypt(
                        case_key, piece, _chunk_ad(case_id, attachment_id, seq, seq == last)
                    ),
                )
            )
        session.flush()
        ids.append(attachment_id)
    return ids


def _info(case_key: bytes, row: Attachment, *, legacy_ok: bool = False) -> AttachmentInfo:
    """The row's metadata, verified against its clear columns; ``legacy_ok``: a legacy row is
    accepted (only in a case not migrated yet, see ``thread.is_bound``)."""
    ad = _row_ad(row, legacy_ok)
    if ad is None:
        raise AttachmentDamaged(row.id)
    try:
        meta = json.loads(crypto.decrypt(case_key, row.meta_ciphertext, ad))
        author = MessageAuthor(row.author)
    except (crypto.DecryptionFailed, ValueError) as exc:
        raise AttachmentDamaged(row.id) from exc
    return AttachmentInfo(
        id=row.id,
        filename=str(meta["name"]),
        content_type=str(meta["type"]),
        size=int(meta["size"]),
        cleaned=bool(meta["cleaned"]),
        day=row.created_on,
        author=author,
        message_id=meta["message"],
        chunks=int(meta["chunks"]),
    )


def list_checked(
    session: Session, case_id: str, case_key: bytes, *, legacy_ok: bool = False
) -> tuple[list[AttachmentInfo], int]:
    """The case's attachments, by day then name (never in the order they were stored), and how
    many were left out because their metadata does not verify against their columns."""
    rows = session.scalars(select(Attachment).where(Attachment.case_id == case_id))
    infos: list[AttachmentInfo] = []
    refused = 0
    for row in rows:
        try:
            infos.append(_info(case_key, row, legacy_ok=legacy_ok))
        except AttachmentDamaged:
            refused += 1
    return sorted(infos, key=lambda a: (a.day, a.filename.casefold(), a.id)), refused


def list_for_case(
    session: Session, case_id: str, case_key: bytes, *, legacy_ok: bool = False
) -> list[AttachmentInfo]:
    """The case's attachments that verify (see ``list_checked``)."""
    return list_checked(session, case_id, case_key, legacy_ok=legacy_ok)[0]


def legacy_metadata(
    session: Session, case_id: str, case_key: bytes
) -> list[tuple[Attachment, bytes]] | None:
    """The case's attachments still in the legacy format, with their metadata plaintext, to be
    sealed again by ``reseal``; None when one of them does not open (tampered with)."""
    found = []
    rows = session.scalars(
        select(Attachment).where(
            Attachment.case_id == case_id, Attachment.ad_version == META_LEGACY
        )
    )
    for row in rows:
        try:
            MessageAuthor(row.author)
            found.append(
                (row, crypto.decrypt(case_key, row.meta_ciphertext, _meta_ad(case_id, row.id)))
            )
        except (crypto.DecryptionFailed, ValueError):
            return None
    return found


def reseal(case_key: bytes, legacy: list[tuple[Attachment, bytes]]) -> None:
    """Seal legacy metadata again in the bound format (the chunks are unchanged: they are
    bound to their case, attachment and place already)."""
    for row, plaintext in legacy:
        ad = _bound_meta_ad(row.case_id, row.id, row.author, row.created_on)
        row.meta_ciphertext = crypto.encrypt(case_key, plaintext, ad)
        row.ad_version = META_BOUND


def open_one(
    session: Session,
    case_id: str,
    case_key: bytes,
    attachment_id: str,
    *,
    legacy_ok: bool = False,
) -> AttachmentInfo:
    """One attachment of the case, its metadata checked against its columns and its stored
    chunks."""
    row = session.get(Attachment, attachment_id) if len(attachment_id) <= 32 else None
    if row is None or row.case_id != case_id:
        raise NoSuchAttachment(attachment_id)
    info = _info(case_key, row, legacy_ok=legacy_ok)
    stored = session.scalar(
        select(func.count())
        .select_from(AttachmentChunk)
        .where(AttachmentChunk.attachment_id == attachment_id)
    )
    if stored != info.chunks:
        raise AttachmentDamaged(attachment_id)
    return info


def read_chunks(
    session: Session, case_id: str, case_key: bytes, info: AttachmentInfo
) -> Iterator[bytes]:
    """The plaintext, one chunk at a time (only ciphertext columns are loaded, so the session
    keeps no chunk once it is passed on)."""
    last = info.chunks - 1
    for seq in range(info.chunks):
        blob = session.scalar(
            select(AttachmentChunk.ciphertext).where(
                AttachmentChunk.attachment_id == info.id, AttachmentChunk.seq == seq
            )
        )
        if blob is None:
            raise AttachmentDamaged(info.id)
        try:
            yield crypto.decrypt(case_key, blob, _chunk_ad(case_id, info.id, seq, seq == last))
        except crypto.DecryptionFailed as exc:
            raise AttachmentDamaged(info.id) from exc
