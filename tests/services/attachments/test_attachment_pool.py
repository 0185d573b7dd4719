"""The attachment cleaning pool: a process-wide bound on forms whose files are cleaned,
encrypted and stored at once, so a burst of uploads cannot exhaust memory (cleaning a large
picture holds hundreds of MiB); and the 503 "busy" answer that keeps what was typed and stores
nothing."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from portal.app import create_app
from portal.instance import InstanceSecrets
from portal.models import Attachment, AttachmentChunk, Case, Message
from portal.runtime import memory
from portal.runtime.capacity import Capacity, auto_attachment_pool_size
from portal.services.attachments import sanitize
from portal.services.attachments import store as attachments
from portal.services.attachments.sanitize import core as sanitize_core
from portal.services.attachments.sanitize import images as sanitize_images
from portal.services.attachments.sanitize import ooxml as sanitize_ooxml
from portal.services.attachments.store import AttachmentsBusy, AttachmentsRefused, Rules, Upload
from portal.settings import (
    ATTACHMENT_MAX_CONCURRENT_CEILING,
    CLEANING_OFFICE_BYTES,
    CLEANING_PICTURE_BYTES,
    TEST_ARGON2,
    Settings,
    SettingsError,
    attachment_form_memory_bytes,
    load_settings,
)
from tests.support.concurrency import Gauge  # counts calls running at once
from tests.support.factories import DatabaseUnderTest, Portal, cheap_settings
from tests.support.pages import csrf_token, open_followup
from tests.support.pages import report_form as base_report_form

MIB = 1024**2
GIB = 1024**3
TEXT = b"What the supervisor said on the night shift, word for word.\n"
FILE_NAME = "notes-from-the-night-shift.txt"
DESCRIPTION = "The night-shift supervisor signs the safety checks without doing them."
MESSAGE = "Here are my notes, as promised; they are long and must not be lost."
RULES = Rules(
    max_bytes=MIB, max_count=2, kinds=frozenset(sanitize_core.FileKind), keep_uncleaned=False
)
UPLOAD = Upload(FILE_NAME, "text/plain", TEXT)


@pytest.fixture(autouse=True)
def _restore_pool() -> Iterator[None]:
    """Whatever a test configures, the process's pool is put back afterwards."""
    size, wait = attachments.CLEANING_POOL.size, attachments.CLEANING_POOL.wait_seconds
    yield
    attachments.CLEANING_POOL.configure(size, wait)


@pytest.fixture
def settings(database: DatabaseUnderTest, tmp_path: Path) -> Settings:
    return cheap_settings(
        tmp_path / "instance", database.url, attachment_max_bytes=MIB, attachment_max_count=2
    )


def _gauged_cleaning(monkeypatch: pytest.MonkeyPatch, gauge: Gauge) -> None:
    """Every file cleaned goes through the gauge first, then the real cleaner."""
    clean = sanitize.clean_attachment

    def gauged(*args: object, **kwargs: object) -> sanitize_core.CleanedFile:
        gauge.run()
        return clean(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sanitize, "clean_attachment", gauged)


def _clean_in_a_slot(uploads: list[Upload]) -> None:
    with attachments.cleaning_slot(uploads, RULES):
        attachments.prepare(uploads, RULES)


# --- the pool ----------------------------------------------------------------------------------


def test_concurrent_forms_never_clean_more_than_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gauge = Gauge()
    _gauged_cleaning(monkeypatch, gauge)
    attachments.configure_cleaning_pool(2, 10)
    # Eight forms of two files each, from eight threads (a threaded worker's requests).
    threads = [
        threading.Thread(target=_clean_in_a_slot, args=([UPLOAD, UPLOAD],)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gauge.calls == 16
    # A slot holds a whole form: its two files are cleaned one after the other, and two forms
    # did run together (the pool is not a lock), never three.
    assert gauge.most == 2


def test_a_full_pool_refuses_after_the_wait_and_cleans_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gauge = Gauge(seconds=0)
    _gauged_cleaning(monkeypatch, gauge)
    attachments.configure_cleaning_pool(1, 0.2)
    with attachments.cleaning_slot([UPLOAD], RULES):  # the only slot ("another request")
        started = time.monotonic()
        with pytest.raises(AttachmentsBusy):
            _clean_in_a_slot([UPLOAD])
        waited = time.monotonic() - started
    assert 0.2 <= waited < 5
    assert gauge.calls == 0
    _clean_in_a_slot([UPLOAD])  # the slot is free again
    assert gauge.calls == 1


def test_no_wait_means_busy_at_once() -> None:
    attachments.configure_cleaning_pool(1, 0)
    with attachments.cleaning_slot([UPLOAD], RULES):
        started = time.monotonic()
        with pytest.raises(AttachmentsBusy):
            _clean_in_a_slot([UPLOAD])
        assert time.monotonic() - started < 0.1


def test_a_form_without_files_or_with_too_many_takes_no_slot() -> None:
    """Nothing is cleaned for either, so neither waits; too many files are refused as such,
    not as "busy"."""
    attachments.configure_cleaning_pool(1, 0)
    with attachments.cleaning_slot([UPLOAD], RULES):
        with attachments.cleaning_slot([], RULES):
            assert attachments.prepare([], RULES) == []
        too_many = [UPLOAD] * 3
        with pytest.raises(AttachmentsRefused) as refused:
            _clean_in_a_slot(too_many)
        assert refused.value.too_many == 3


def test_a_refused_or_failed_form_gives_its_slot_back() -> None:
    attachments.configure_cleaning_pool(1, 0)
    with pytest.raises(AttachmentsRefused):
        _clean_in_a_slot([Upload("thing.bin", "", b"\0\1\2 not a file we clean")])
    with pytest.raises(RuntimeError), attachments.cleaning_slot([UPLOAD], RULES):
        raise RuntimeError("the database went away while storing")
    _clean_in_a_slot([UPLOAD])  # not busy: both slots came back


def test_reconfiguring_keeps_running_cleanings_balanced() -> None:
    attachments.configure_cleaning_pool(1, 0)
    with attachments.cleaning_slot([UPLOAD], RULES):
        attachments.configure_cleaning_pool(2, 0)  # a new semaphore; the held slot is the old one's
    # The old slot went back to the old semaphore (a BoundedSemaphore would raise otherwise),
    # and the new pool has both of its slots.
    first = attachments.cleaning_slot([UPLOAD], RULES)
    second = attachments.cleaning_slot([UPLOAD], RULES)
    with first, second, pytest.raises(AttachmentsBusy):
        _clean_in_a_slot([UPLOAD])
    assert attachments.cleaning_pool_size() == 2


def test_configure_refuses_an_empty_pool() -> None:
    with pytest.raises(ValueError):
        attachments.configure_cleaning_pool(0, 10)
    with pytest.raises(ValueError):
        attachments.configure_cleaning_pool(1, -1)


def test_apps_in_one_process_share_one_bound(tmp_path: Path, secrets: InstanceSecrets) -> None:
    """The bound is the process's, not an app's: every app built in it cleans in the same pool
    (the last one built sets its size), so a second app does not double what may be held."""

    def build(size: int) -> Flask:
        settings = Settings(
            instance_path=tmp_path, attachment_max_concurrent=size, attachment_wait_seconds=0
        )
        return create_app(settings.with_argon2(TEST_ARGON2), secrets=secrets)

    build(3)
    assert attachments.cleaning_pool_size() == 3
    build(1)
    assert attachments.cleaning_pool_size() == 1
    assert attachments.CLEANING_POOL.wait_seconds == 0
    with attachments.cleaning_slot([UPLOAD], RULES), pytest.raises(AttachmentsBusy):
        _clean_in_a_slot([UPLOAD])


_OTHER_PROCESS = """
import sys
from portal.services.attachments import store as attachments
from portal.services.attachments.sanitize import core as sanitize_core
attachments.configure_cleaning_pool(1, 0)
rules = attachments.Rules(1024, 1, frozenset(sanitize_core.FileKind), False)
with attachments.cleaning_slot([attachments.Upload("a.txt", "text/plain", b"words")], rules):
    print("cleaned in its own slot")
"""


def test_another_process_has_its_own_bound() -> None:
    """gunicorn's workers are processes: each has its own pool, so one worker's burst does not
    make another worker's reporters wait (docs/deploy.md counts workers x the bound)."""
    attachments.configure_cleaning_pool(1, 0)
    with attachments.cleaning_slot([UPLOAD], RULES):  # this process's only slot is taken
        other = subprocess.run(
            [sys.executable, "-c", _OTHER_PROCESS], capture_output=True, text=True, timeout=60
        )
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == "cleaned in its own slot"


_TAKING_TURNS = """
import sys, threading
from pathlib import Path
from PIL import Image
from portal.runtime import memory
from portal.runtime.capacity import Capacity, auto_attachment_pool_size

if sys.argv[1] == "mapped":
    assert memory.map_large_blocks()
def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
turn, ready = threading.Lock(), threading.Barrier(3)
def clean():  # a picture decoded in a thread of its own, one thread at a time (one slot)
    ready.wait()
    with turn:
        Image.new("RGB", (3000, 2000), (1, 2, 3)).close()
Image.new("RGB", (3000, 2000), (1, 2, 3)).close()  # one large block freed: glibc adapts
Path("/proc/self/clear_refs").write_text("5")
before = status("VmRSS")
threads = [threading.Thread(target=clean) for _ in range(3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print((status("VmHWM") - before) / (3000 * 2000 * 4))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc (Linux)")
def test_threads_taking_turns_hold_one_picture_at_a_time_not_one_each() -> None:
    """The pool lets one thread clean at a time, but glibc gives each thread an arena that
    keeps what it freed: without large blocks mapped on their own, three threads taking turns
    held three pictures' memory, as much as three at once."""
    peaks = {}
    # glibc's own defaults, whatever MALLOC_* tuning this shell may have.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    for how in ("mapped", "default"):
        run = subprocess.run(
            [sys.executable, "-c", _TAKING_TURNS, how],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        if run.returncode != 0 and "clear_refs" in run.stderr:
            pytest.skip("this system does not let a process reset its peak memory")
        assert run.returncode == 0, run.stderr
        peaks[how] = float(run.stdout)
    assert peaks["mapped"] < 1.5  # one picture's memory at the peak
    assert peaks["default"] > 2.5  # three: what the portal no longer leaves to glibc


def test_create_app_maps_large_blocks(
    tmp_path: Path, secrets: InstanceSecrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def map_large_blocks() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(memory, "map_large_blocks", map_large_blocks)
    create_app(Settings(instance_path=tmp_path).with_argon2(TEST_ARGON2), secrets=secrets)
    assert calls == [1]


# --- settings ------------------------------------------------------------------------------------


def test_the_memory_estimate_of_one_form() -> None:
    """Each file as sent and as cleaned, plus the largest cleaning at work: an Office file
    unpacked and written again with a 40-megapixel picture inside, decoded and copied at 4 bytes
    a pixel. The constants follow the cleaner's own limits."""
    assert CLEANING_PICTURE_BYTES == 2 * 4 * sanitize_images.MAX_IMAGE_PIXELS
    assert CLEANING_OFFICE_BYTES == 2 * sanitize_ooxml.MAX_ZIP_UNCOMPRESSED
    defaults = Settings()
    assert defaults.attachment_form_bytes == attachment_form_memory_bytes(10 * MIB, 5)
    assert defaults.attachment_form_bytes == 100 * MIB + 128 * MIB + 320_000_000
    assert round(defaults.attachment_form_bytes / MIB) == 533  # as the docs say
    assert attachment_form_memory_bytes(10 * MIB, 0) == 0  # attachments off


def test_automatic_bound_comes_from_memory_and_cpus() -> None:
    form = attachment_form_memory_bytes(10 * MIB, 5)  # 533 MiB
    assert auto_attachment_pool_size(form, 8 * GIB, 16) == 3  # a quarter of 8 GiB: 3 forms
    assert auto_attachment_pool_size(form, 64 * GIB, 4) == 4  # CPUs are the smaller bound
    assert auto_attachment_pool_size(form, 1 * GIB, 8) == 1  # never below one
    assert auto_attachment_pool_size(form, 0, 3) == 3  # memory unknown: one per CPU
    assert auto_attachment_pool_size(0, 8 * GIB, 2) == 2  # attachments off: nothing to bound


def test_settings_bound_explicit_or_automatic() -> None:
    assert Capacity(0, 0, 1).attachment_pool_size(Settings(attachment_max_concurrent=7)) == 7
    machine = Capacity(physical_memory_bytes=64 * GIB, memory_limit_bytes=2 * GIB, cpus=32)
    assert machine.attachment_pool_size(Settings()) == 1  # a quarter of 2 GiB holds one form
    # Smaller forms: 2 files of 1 MiB make 2 x 2 + 128 + 305 MiB = 437 MiB, still one.
    small = Settings(attachment_max_count=2, attachment_max_bytes=MIB)
    assert machine.attachment_pool_size(small) == 1
    machine = Capacity(physical_memory_bytes=64 * GIB, memory_limit_bytes=0, cpus=32)  # no limit
    assert machine.attachment_pool_size(Settings()) == 30  # 16 GiB / 533 MiB, under the 32 CPUs


def test_create_app_sets_the_pool_from_the_settings(
    tmp_path: Path, secrets: InstanceSecrets
) -> None:
    settings = Settings(
        instance_path=tmp_path, attachment_max_concurrent=3, attachment_wait_seconds=4
    )
    create_app(settings.with_argon2(TEST_ARGON2), secrets=secrets)
    assert attachments.cleaning_pool_size() == 3
    assert attachments.CLEANING_POOL.wait_seconds == 4


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORTAL_ATTACHMENT_MAX_CONCURRENT": "-1"}, "attachment_max_concurrent must be from 0"),
        (
            {"PORTAL_ATTACHMENT_MAX_CONCURRENT": str(ATTACHMENT_MAX_CONCURRENT_CEILING + 1)},
            "attachment_max_concurrent must be from 0 \\(automatic\\) to 64",
        ),
        ({"PORTAL_ATTACHMENT_MAX_CONCURRENT": "two"}, "must be of type int"),
        ({"PORTAL_ATTACHMENT_WAIT_SECONDS": "-1"}, "attachment_wait_seconds must be from 0 to 19"),
        # A concern with files may wait three times: 3 x 20 s reaches gunicorn's 60 s timeout.
        ({"PORTAL_ATTACHMENT_WAIT_SECONDS": "20"}, "attachment_wait_seconds must be from 0 to 19"),
    ],
)
def test_bad_pool_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_pool_settings_load_from_the_environment() -> None:
    settings = load_settings(
        {"PORTAL_ATTACHMENT_MAX_CONCURRENT": "2", "PORTAL_ATTACHMENT_WAIT_SECONDS": "0"}
    )
    pool_size = Capacity(0, 0, 1).attachment_pool_size(settings)
    assert (pool_size, settings.attachment_wait_seconds) == (2, 0)
    assert load_settings({"PORTAL_ATTACHMENT_WAIT_SECONDS": "19"}).attachment_wait_seconds == 19


# --- the web: 503 "busy", the text kept, nothing stored ----------------------------------------


@pytest.fixture
def full_pool() -> Iterator[None]:
    """Every slot taken ("another request" is cleaning), no waiting."""
    attachments.configure_cleaning_pool(1, 0)
    with attachments.cleaning_slot([UPLOAD], RULES):
        yield


def _send(client: FlaskClient, url: str, fields: dict[str, object]) -> TestResponse:
    boundary, body = encode_multipart(fields)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def _file() -> FileStorage:
    return FileStorage(io.BytesIO(TEXT), filename=FILE_NAME, content_type="text/plain")


def _post_report(client: FlaskClient, files: list[FileStorage]) -> TestResponse:
    token = csrf_token(client.get("/report").text)
    fields = base_report_form(category="safety", description=DESCRIPTION)
    return _send(client, "/report", {"csrf_token": token, **fields, "files": files})


def _count(db: Session, model: type[object]) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_busy_report_form_answers_503_keeps_the_text_and_stores_nothing(
    client: FlaskClient,
    portal: Portal,
    db: Session,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    portal.staff("olivia")
    caplog.set_level(logging.WARNING, logger="portal.web")
    request.getfixturevalue("full_pool")

    response = _post_report(client, [_file()])

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "The portal is busy right now, so nothing was sent yet" in response.text
    assert DESCRIPTION in response.text
    assert re.search(r'<input checked[^>]*value="safety"', response.text)
    assert "please choose them again" in response.text  # a browser never refills a file input
    assert [_count(db, m) for m in (Case, Attachment, AttachmentChunk)] == [0, 0, 0]
    assert "attachment cleaning pool busy on reporter.report" in caplog.text
    assert FILE_NAME not in caplog.text and "night shift" not in caplog.text


def test_busy_report_form_without_files_is_sent(
    client: FlaskClient, portal: Portal, db: Session, request: pytest.FixtureRequest
) -> None:
    """Only forms with files wait for a cleaning slot."""
    portal.staff("olivia")
    request.getfixturevalue("full_pool")

    response = _post_report(client, [])

    assert response.status_code == 303, response.text
    assert _count(db, Case) == 1


def test_a_slot_that_frees_within_the_wait_lets_the_form_through(
    client: FlaskClient, portal: Portal, db: Session
) -> None:
    portal.staff("olivia")
    attachments.configure_cleaning_pool(1, 10)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with attachments.cleaning_slot([UPLOAD], RULES):
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    threading.Timer(0.2, release.set).start()
    response = _post_report(client, [_file()])
    holder.join()

    assert response.status_code == 303, response.text
    assert [_count(db, m) for m in (Case, Attachment)] == [1, 1]


def test_the_slot_is_held_until_the_files_are_encrypted_and_stored(
    client: FlaskClient, portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storing (encryption in chunks) runs inside the slot too: another form with files,
    arriving then, finds the pool full."""
    portal.staff("olivia")
    attachments.configure_cleaning_pool(1, 0)
    store: Callable[..., list[str]] = attachments.store
    seen: list[str] = []

    def store_and_look(*args: object, **kwargs: object) -> list[str]:
        try:
            _clean_in_a_slot([UPLOAD])
        except AttachmentsBusy:
            seen.append("busy")
        return store(*args, **kwargs)

    monkeypatch.setattr(attachments, "store", store_and_look)
    assert _post_report(client, [_file()]).status_code == 303
    assert seen == ["busy"]


def test_busy_follow_up_answers_503_keeps_the_message_and_stores_nothing(
    client: FlaskClient, portal: Portal, db: Session, request: pytest.FixtureRequest
) -> None:
    portal.staff("olivia")
    open_followup(client, portal.submit().receipt)
    messages = _count(db, Message)
    token = csrf_token(client.get("/followup/case").text)
    request.getfixturevalue("full_pool")

    response = _send(
        client, "/followup/case", {"csrf_token": token, "text": MESSAGE, "files": [_file()]}
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "The portal is busy right now, so nothing was sent yet" in response.text
    assert MESSAGE in response.text
    assert "please choose them again" in response.text
    assert _count(db, Message) == messages
    assert [_count(db, m) for m in (Attachment, AttachmentChunk)] == [0, 0]
