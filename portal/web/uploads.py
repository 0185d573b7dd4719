"""Uploads held in memory only.

Werkzeug spools a multipart file part to a temporary file on disk once the request is larger
than 500 KB. An attachment there would be plaintext on disk before it is cleaned and encrypted,
and a deleted temporary file can still be read back from the disk. This request class keeps
every file part in memory instead; ``MAX_CONTENT_LENGTH`` (count x size of the attachments plus
the form, see ``Settings.max_request_bytes``) bounds how much memory one request may take.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Request
from werkzeug.datastructures import FileStorage

from portal.services.attachments.store import Upload


class InMemoryRequest(Request):
    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()


def chosen(files: list[FileStorage] | None) -> list[FileStorage]:
    """The file parts that carry a file: a file input left empty still sends a part with an
    empty name and no content."""
    return [f for f in files or () if isinstance(f, FileStorage) and (f.filename or "").strip()]


def content_of(file: FileStorage) -> bytes:
    """A file part's bytes. From the in-memory stream, ``getvalue`` hands out the stream's own
    buffer (trimmed to size, not copied), where ``read`` would make a second copy of every file
    for as long as the request lasts. Either gives the whole part: the parser leaves the stream
    at its start."""
    stream = file.stream
    if isinstance(stream, io.BytesIO):
        return stream.getvalue()
    data: bytes = file.read()
    return data


def uploads_of(files: list[FileStorage] | None) -> list[Upload]:
    return [
        Upload(filename=f.filename or "", declared_type=f.content_type or "", data=content_of(f))
        for f in chosen(files)
    ]
