"""Domain exceptions, named for what went wrong."""

from __future__ import annotations

import enum


class PortalError(Exception):
    """Base of every domain error."""


class UnknownItem(PortalError):
    """Nothing of this kind has this id, or nothing that this user may see: the web answers
    both with the same 404 as for a made-up address (``portal.web.errors``)."""


class UnknownCategory(PortalError):
    pass


class UnknownOrgUnit(PortalError):
    pass


class UnknownQueue(PortalError):
    pass


class InvalidInput(PortalError):
    """A value is outside its documented limits; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class NoEligibleRecipient(PortalError):
    """Nobody could receive the concern: storing it would make it undecryptable.

    ``because_of_exclusions`` is True when someone could have received it but the reporter
    excluded them all, so the form can ask the reporter to change the exclusions."""

    def __init__(self, because_of_exclusions: bool) -> None:
        super().__init__(
            "every ombudsperson who could receive this concern was excluded"
            if because_of_exclusions
            else "no ombudsperson can receive this kind of concern yet"
        )
        self.because_of_exclusions = because_of_exclusions


class ChannelNotOpen(PortalError):
    """The portal has no active ombudsperson in any queue yet."""


class MalformedReceipt(PortalError):
    pass


class UnknownReceipt(PortalError):
    """No case has this receipt, or it did not unlock; deliberately the same error for both."""


class InvalidCredentials(PortalError):
    pass


class StaffExists(PortalError):
    pass


class NoAccess(UnknownItem):
    """The staff member holds no sealed key for this case (or it does not exist)."""


class InvalidTransition(PortalError):
    """A workflow move the rules refuse; ``field`` names the form field the message belongs
    next to (status, outcome or reason)."""

    def __init__(self, message: str, field: str = "status") -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class AccessRefusal(enum.StrEnum):
    """Why a grant, transfer, recusal or membership change was refused (the views word it)."""

    LAST_HOLDER = "last_holder"  # recusing would leave nobody able to decrypt the case
    NOT_ELIGIBLE = "not_eligible"  # unknown, disabled, or not an ombudsperson
    ALREADY_HOLDS = "already_holds"
    EXCLUDED_BY_REPORTER = "excluded_by_reporter"
    RECUSED = "recused"  # recused themselves from this case earlier: a recusal is final
    UNKNOWN_QUEUE = "unknown_queue"
    SAME_QUEUE = "same_queue"
    NO_RECIPIENT = "no_recipient"  # nobody in the target queue may receive the case key
    NOT_A_MEMBER = "not_a_member"
    # a re-grant whose typed key fingerprint is missing or is not the colleague's current key's
    FINGERPRINT_MISMATCH = "fingerprint_mismatch"


class AccessRefused(PortalError):
    def __init__(self, reason: AccessRefusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


class TaxonomyError(PortalError):
    """The taxonomy file is invalid; the message says where."""


class WrongCode(PortalError):
    """A second-factor code that is not current, or that was accepted once already."""


class UnknownSession(UnknownItem):
    """No live session of this user has that public id."""


class InvalidApiToken(PortalError):
    """No live token has this value: unknown, revoked, expired, malformed, or its owner's
    account is disabled. Deliberately one error for all, so a caller learns nothing more."""


class ApiTokenNotPermitted(PortalError):
    """The token is valid but its owner may no longer read insights (the role was removed)."""


class UnknownApiToken(UnknownItem):
    """The user has no token with that id (another user's tokens do not exist for them)."""
