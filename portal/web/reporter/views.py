"""Reporter views: front page, concern form, receipt, follow-up.

There is no access log here and nothing reads the client's headers; the only use of the client
address is the HMAC-keyed throttles (wrong receipts, submission limits; ``portal.web.client``).
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import make_response, redirect, render_template, request, url_for
from flask import session as flask_session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from wtforms import SelectChoice

from portal import crypto
from portal.errors import (
    MalformedReceipt,
    NoEligibleRecipient,
    UnknownCategory,
    UnknownOrgUnit,
    UnknownReceipt,
)
from portal.i18n import labels as i18n
from portal.models import OrgUnit, OrgUnitKind
from portal.services.attachments import store as attachments
from portal.services.attachments.store import AttachmentsBusy, AttachmentsRefused
from portal.services.configuration import policy, taxonomy
from portal.services.reporting import access_code, followup, intake, routing
from portal.web import client, state, uploads
from portal.web.errors import BUSY_RETRY_AFTER_SECONDS, csrf_recoverable
from portal.web.reporter import files, receipt_check, receipt_cookie
from portal.web.reporter import session as reporter_session
from portal.web.reporter.blueprint import bp
from portal.web.reporter.forms import (
    NAMED,
    LeaveForm,
    MessageForm,
    ReceiptCheckForm,
    ReceiptForm,
    ReportForm,
)
from portal.web.transactions import commit_or_form_error, unit_of_work

MONTHS_OFFERED = 60

log = logging.getLogger("portal.web")


@bp.get("/")
def index() -> ResponseReturnValue:
    return render_template("reporter/index.html", channel_open=routing.channel_open(state.db()))


def _month_choices(today: dt.date) -> list[SelectChoice]:
    choices = [
        SelectChoice("", _("Choose…")),
        SelectChoice(intake.ONGOING, _("It is still going on")),
    ]
    year, month = today.year, today.month
    for _i in range(MONTHS_OFFERED):
        choices.append(SelectChoice(f"{year:04d}-{month:02d}"))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return choices


def _unit_label(unit: OrgUnit, smallest: int) -> str:
    """A unit's label, with a warning in it when its headcount (configuration) is below the
    policy's smallest unit: the warning is there before sending, with or without JavaScript."""
    if unit.headcount is not None and unit.headcount < smallest:
        text: str = _(
            "%(unit)s (a small team: choosing it may point at you)", unit=i18n.shown(unit)
        )
        return text
    return i18n.shown(unit)


def _report_form(excludable: list[routing.PublicStaff]) -> ReportForm:
    session = state.db()
    form = ReportForm()
    form.category.choices = [
        SelectChoice(c.code, i18n.shown(c)) for c in taxonomy.active_categories(session)
    ]
    none = [SelectChoice("", _("Prefer not to say"))]
    smallest = policy.values(session).insights_min_headcount
    form.site.choices = none + [
        SelectChoice(u.code, _unit_label(u, smallest))
        for u in taxonomy.active_units(session, OrgUnitKind.SITE)
    ]
    form.department.choices = none + [
        SelectChoice(u.code, _unit_label(u, smallest))
        for u in taxonomy.active_units(session, OrgUnitKind.DEPARTMENT)
    ]
    form.happened.choices = _month_choices(state.today())
    form.excluded.choices = [SelectChoice(str(s.id), s.display_name) for s in excludable]
    return form


def _concern(form: ReportForm, prepared: list[attachments.PreparedFile]) -> intake.Concern:
    named = form.identity.data == NAMED
    return intake.Concern(
        category_code=form.category.data,
        description=form.description.data or "",
        happened=form.happened.data,
        site_code=form.site.data or None,
        department_code=form.department.data or None,
        contact_name=(form.contact_name.data or "") if named else None,
        contact_details=(form.contact_details.data or "") if named else None,
        excluded_staff_ids=form.excluded.data or (),
        attachments=prepared,
    )


def _prepared(
    form: ReportForm | MessageForm, chosen: list[attachments.Upload], rules: attachments.Rules
) -> list[attachments.PreparedFile]:
    """The form's files, cleaned (or kept as is where the reporter ticked the warning and the
    policy allows it); AttachmentsRefused otherwise. Files sent while attachments are off are
    refused like too many. Call it holding ``attachments.cleaning_slot``."""
    return attachments.prepare(chosen, rules, keep_uncleaned=bool(form.keep_uncleaned.data))


def _cleaning_busy() -> None:
    """Log that a form found every cleaning slot taken (the endpoint only: nothing of the
    request, the files or their names)."""
    log.warning("attachment cleaning pool busy on %s", request.endpoint)


def _submission_gate(form: ReportForm | MessageForm) -> tuple[str, int, str | None]:
    """Before a post is looked at: (the client's key, seconds to wait or 0, problem or None).

    The client key is an HMAC of the address under a key that lives one window
    (``portal.web.client``); a filled honeypot is counted against it and reported as the
    neutral problem "not_sent", so a robot learns nothing and a person is told to try again."""
    limits = state.state().submission_limits
    who = client.throttle_key(limits.per_client)
    wait = limits.wait_seconds(who)
    if wait:
        return who, wait, None
    if form.honeypot_filled:
        limits.refused(who)
        form.website.data = ""
        return who, 0, "not_sent"
    return who, 0, None


def _access_code_ok(form: ReportForm, who: str) -> bool:
    """True when no code is configured or the right one was typed. A wrong code (not an empty
    one, which is a plain mistake) counts against the client's submission limit."""
    settings = state.settings()
    code_hash = settings.report_access_code_hash
    if not code_hash:
        return True
    typed = form.access_code.data or ""
    if not typed.strip():
        form.access_code.errors = [_("Type the access code your organisation gave you.")]
        return False
    if not access_code.matches(code_hash, typed, settings.password_cost):
        state.state().submission_limits.refused(who)
        form.access_code.errors = [
            _("That access code is not right. Check it and type it again; your text is kept.")
        ]
        return False
    return True


def _too_many(wait: int) -> int:
    """Minutes to tell a reporter to wait, rounded up."""
    return max(1, -(-wait // 60))


def _form_page(
    template: str, status: int, wait: int, files: list[FileStorage] | None, **context: object
) -> ResponseReturnValue:
    """A reporter form page shown again (or first): what was typed stays in ``context``'s form;
    over a submission limit it says how long to wait, with Retry-After; and when files were
    chosen it says they must be chosen again (a browser never refills a file input)."""
    response = make_response(
        render_template(
            template,
            wait_minutes=_too_many(wait) if wait else None,
            files_dropped=status >= 400 and bool(uploads.chosen(files)),
            settings=state.settings(),
            **context,
        ),
        status,
    )
    if wait:
        response.headers["Retry-After"] = str(wait)
    elif status == 503:  # busy: the Argon2 or the cleaning pool
        response.headers["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    return response


@bp.route("/report", methods=["GET", "POST"])
def report() -> ResponseReturnValue:
    session = state.db()
    choices = routing.reporter_choices(session)
    if not choices.channel_open:  # no ombudsperson sits in any queue: nobody could read it
        return render_template("reporter/not_open.html"), 503
    form = _report_form(choices.excludable)
    settings = state.settings()
    rules = attachments.rules(session, settings)
    problem = None
    wait = 0
    if request.method == "POST":
        who, wait, problem = _submission_gate(form)
        checked = not wait and problem is None
        valid = checked and form.validate_on_submit()
        # The code is checked even when another field is wrong, so both are marked at once.
        try:
            code_ok = checked and _access_code_ok(form, who)  # Argon2: may find the pool busy
        except crypto.Argon2Busy:
            code_ok, problem = False, "busy"
        if code_ok and valid:
            chosen = uploads.uploads_of(form.files.data)
            try:
                # Committed once the slot is free again: nothing is stored unless all is. The
                # slot covers cleaning, encrypting and storing the files (intake.submit); the
                # receipt's key is derived inside it too, in an Argon2 slot of its own.
                with commit_or_form_error(form) as work, attachments.cleaning_slot(chosen, rules):
                    concern = _concern(form, _prepared(form, chosen, rules))
                    submitted = intake.submit(
                        session, settings, state.secrets().pepper, concern, state.today()
                    )
            except AttachmentsBusy:  # every cleaning slot stayed taken: nothing was cleaned
                _cleaning_busy()
                problem = "busy"
            except AttachmentsRefused as error:
                form.files.errors = files.refusal_messages(error, rules)
            except (UnknownCategory, UnknownOrgUnit):  # withdrawn between page load and submit
                form.form_errors.append(_("That choice is no longer offered; please choose again."))
            except NoEligibleRecipient as error:
                problem = "excluded" if error.because_of_exclusions else "unstaffed"
            except crypto.Argon2Busy:  # every Argon2 slot stayed taken: nothing was stored
                problem = "busy"
            else:
                if work.committed:
                    state.state().submission_limits.accepted(who)
                    # Post/redirect/get: the receipt page is a GET, so reloading it cannot send
                    # the concern again. The receipt goes along sealed in a short-lived cookie.
                    response = make_response(redirect(url_for("reporter.receipt"), code=303))
                    receipt_cookie.hand_over(response, submitted.receipt)
                    return response
    status = 429 if wait else 503 if problem == "busy" else 400 if request.method == "POST" else 200
    form.access_code.data = ""  # never sent back to the browser
    return _form_page(
        "reporter/report.html",
        status,
        wait,
        form.files.data,
        form=form,
        problem=problem,
        access_code_required=bool(settings.report_access_code_hash),
        always_receive=choices.always_receive,
        rules=rules,
    )


csrf_recoverable("reporter.report")


@bp.get("/report/receipt")
def receipt() -> ResponseReturnValue:
    """The receipt, shown once: the cookie that carried it is deleted in this very response, so
    a reload finds none and says so (410) instead of showing it again; nothing is sent again."""
    shown = receipt_cookie.take(request)
    if shown is None:
        response = make_response(render_template("reporter/receipt_gone.html"), 410)
    else:
        check_form = ReceiptCheckForm(formdata=None)
        check_form.token.data = receipt_check.token_for(shown)
        response = make_response(
            render_template(
                "reporter/receipt.html", receipt=shown, check_form=check_form, outcome=None
            )
        )
    receipt_cookie.clear(response)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/report/receipt-check")
def receipt_check_view() -> ResponseReturnValue:
    """The practice check. Stores nothing and reads no database: the receipt to compare with
    comes back, encrypted, in the form. An expired CSRF token is no reason to refuse a check
    that changes nothing, so its failure is ignored here (the view is CSRF-recoverable)."""
    form = ReceiptCheckForm()
    typed = form.typed.data or ""
    receipt = receipt_check.receipt_in(form.token.data or "")
    if receipt is None:
        outcome = receipt_check.Outcome.EXPIRED
    else:
        outcome = receipt_check.check(receipt, typed)
    status = 200 if outcome is receipt_check.Outcome.MATCH else 400
    return render_template(
        "reporter/receipt.html", receipt=receipt, check_form=form, outcome=outcome
    ), status


csrf_recoverable("reporter.receipt_check_view")


@bp.get("/leave")
def leave() -> ResponseReturnValue:
    """Quick exit: off to a neutral page, forgetting this browser's portal cookies on the way.

    Works with JavaScript off (a plain link). Nothing is read, written or logged. The cookies
    are deleted explicitly because browsers honour Clear-Site-Data only over HTTPS; "cache" is
    left out because reporter pages are never cached (no-store) and clearing the cache can hold
    up the navigation away in Chromium, which is the opposite of quick."""
    response = make_response(redirect(state.settings().quick_exit_url, code=303))
    flask_session.clear()  # Flask then deletes the form cookie (portal_form)
    reporter_session.clear(response)
    receipt_cookie.clear(response)
    response.headers["Clear-Site-Data"] = '"cookies", "storage"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/followup", methods=["GET", "POST"])
def followup_login() -> ResponseReturnValue:
    form = ReceiptForm()
    throttle = state.state().followup_throttle
    settings = state.settings()
    if request.method == "POST":
        key = client.throttle_key(throttle)
        if throttle.failures(key) >= settings.followup_max_failures:
            minutes = max(1, settings.followup_window_seconds // 60)
            return render_template(
                "reporter/followup_login.html", form=form, throttled=minutes
            ), 429
        if form.validate_on_submit():
            try:
                with unit_of_work():  # the case's "came back" flag
                    reporter_key = followup.unlock(
                        state.db(), settings, state.secrets().pepper, form.receipt.data
                    )
            except MalformedReceipt:
                form.receipt.errors = [
                    _("A receipt has 20 letters and digits, in five groups of four.")
                ]
            except UnknownReceipt:
                throttle.record_failure(key)
                form.receipt.errors = [
                    _("That receipt did not open a case. Check it and try again.")
                ]
            except crypto.Argon2Busy:  # not checked, so not counted as a wrong receipt
                return render_template(
                    "reporter/followup_login.html", form=form, throttled=None, busy=True
                ), 503
            else:
                response = make_response(redirect(url_for("reporter.followup_case")))
                reporter_session.store(response, reporter_key)
                return response
        return render_template("reporter/followup_login.html", form=form, throttled=None), 400
    return render_template("reporter/followup_login.html", form=form, throttled=None)


def _expired_session() -> ResponseReturnValue:
    # A message typed while the view closed itself is shown back, so nothing is lost.
    unsent = request.form.get("text", "") if request.method == "POST" else ""
    dropped = request.method == "POST" and bool(uploads.chosen(request.files.getlist("files")))
    return render_template(
        "reporter/followup_expired.html", unsent=unsent, files_dropped=dropped
    ), 401


@bp.route("/followup/case", methods=["GET", "POST"])
def followup_case() -> ResponseReturnValue:
    reporter_key = reporter_session.load(request)
    if reporter_key is None:
        return _expired_session()
    session = state.db()
    form = MessageForm()
    rules = attachments.rules(session, state.settings())
    sent = False
    status = 200
    problem = None
    wait = 0
    if request.method == "POST":
        status = 400
        who, wait, problem = _submission_gate(form)
        if wait:
            status = 429
        elif problem is None and form.validate_on_submit():
            chosen = uploads.uploads_of(form.files.data)
            try:
                with commit_or_form_error(form) as work, attachments.cleaning_slot(chosen, rules):
                    followup.add_message(
                        session,
                        state.settings(),
                        reporter_key,
                        form.text.data or "",
                        state.today(),
                        _prepared(form, chosen, rules),
                    )
            except AttachmentsBusy:  # every cleaning slot stayed taken: nothing was cleaned
                _cleaning_busy()
                problem = "busy"
                status = 503
            except AttachmentsRefused as error:
                form.files.errors = files.refusal_messages(error, rules)
            except UnknownReceipt:
                return _expired_session()
            else:
                if work.committed:
                    state.state().submission_limits.accepted(who)
                    return redirect(url_for("reporter.followup_case", sent=1))
    sent = request.args.get("sent") == "1"
    try:
        case = followup.view(session, reporter_key)
    except UnknownReceipt:
        return _expired_session()
    return _form_page(
        "reporter/followup_case.html",
        status,
        wait,
        form.files.data,
        case=case,
        form=form,
        leave_form=LeaveForm(),
        sent=sent,
        problem=problem,
        rules=rules,
    )


csrf_recoverable("reporter.followup_case")


@bp.post("/followup/leave")
def followup_leave() -> ResponseReturnValue:
    response = make_response(redirect(url_for("reporter.index")))
    reporter_session.clear(response)
    return response


csrf_recoverable("reporter.followup_login")
