"""Encrypted backups of the whole portal: the database and the instance secrets, in one file.

The file is useless without its passphrase. Its layout (``docs/operations.md`` describes it for
operators):

* a 41-byte header in the clear: ``PORTALBK``, the format version, the chunk size, the Argon2id
  costs and the salt that turn the passphrase into the key (``crypto.backup_key``);
* the 24-byte header of libsodium's secretstream;
* the encrypted chunks (``crypto.BackupSealer``): each holds ``chunk_bytes`` of plaintext (the
  last one fewer) plus 17 bytes, is authenticated together with the clear header and its own
  place in the stream, and the last one is tagged final. A changed byte, a swapped or missing
  chunk, a truncated file or bytes added at the end are all refused.

The plaintext is a sequence of named entries in a fixed order: ``manifest.json`` (format,
database kind, migration revision, when it was made, and the audit log's anchor: the sealed
head of the chain the copy holds, so every backup is also an anchor kept outside the database),
one ``secret/<name>`` per instance secret,
``database`` (an SQLite database copied with the online backup API, or a ``pg_dump`` custom
archive), then an end marker. Each entry is its name (1 byte length + UTF-8) followed by blocks
(4-byte big-endian length + bytes) and a zero-length block.

Restoring reads and authenticates the whole file before the target changes, and the target must
be empty (no tables, no secret files) unless the operator forces it. A wrong passphrase, a
damaged or a truncated file therefore change nothing.
"""
