"""Domain exceptions, named for what went wrong."""

from __future__ import annotations


class PortalError(Exception):
    """Base of every domain error."""


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


class NoAccess(PortalError):
    """The staff member holds no sealed key for this case (or it does not exist)."""


class InvalidTransition(PortalError):
    pass


class TaxonomyError(PortalError):
    """The taxonomy file is invalid; the message says where."""


class WrongCode(PortalError):
    """A second-factor code that is not current, or that was accepted once already."""


class UnknownSession(PortalError):
    """No live session of this user has that public id."""
