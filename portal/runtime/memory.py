"""How this process's memory allocator treats large blocks (uploads, decoded pictures).

Cleaning an attachment allocates pixel buffers of tens of MiB (Pillow allocates a picture in
blocks of up to 16 MiB) and an upload's bytes are up to ``attachment_max_bytes`` each. glibc's
``malloc`` serves such blocks with their own ``mmap`` at first, but after the first one is
freed it raises its threshold above that size, and later ones come from the arenas instead.
Each thread of a threaded worker (gunicorn's gthread) has an arena of its own, and an arena
keeps freed memory for its thread. So a worker whose threads take turns cleaning (the cleaning
pool, ``attachment_max_concurrent = 1``) still grew to one cleaning's peak per thread:
measured, three maximal forms sent at once to three threads peaked at 1.1 GiB with one slot
as with three; with this, 0.6 GiB with one slot (docs/benchmarks.md, "Attachments", the
burst). A fixed threshold keeps
every large block in its own mapping, given back to the system when it is freed, so the pool
bounds what the process holds.
"""

from __future__ import annotations

import ctypes
import platform

#: ``mallopt`` parameter number of the mmap threshold (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
#: Blocks of at least this many bytes get their own mapping. Python's own objects are far
#: smaller; mapping a block costs a system call and zeroed pages, little next to decoding it.
LARGE_BLOCK_BYTES = 4 * 1024 * 1024


def map_large_blocks(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Have glibc give every block of ``threshold`` bytes or more its own mapping, released
    when freed (and keep that threshold: setting it turns glibc's adjustment off). True if set;
    False on another C library, where nothing is changed."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this interpreter runs on
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
