"""The domain error tree; the API layer maps each class to one HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the services raise on purpose."""

    code = "DomainError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(DomainError):
    """Input that breaks a documented rule (HTTP 422)."""

    code = "ValidationError"


class MalformedRequestError(DomainError):
    """Input that cannot be parsed at all: bad JSON, wrong shape, forged cursor (HTTP 400)."""

    code = "BadRequest"


class PayloadTooLargeError(DomainError):
    """More items than one request may carry (HTTP 413)."""

    code = "PayloadTooLarge"


class NotFoundError(DomainError):
    """The thing asked for does not exist, or is not the caller's to see (HTTP 404)."""

    code = "NotFound"


class ConflictError(DomainError):
    """The request clashes with what is stored (HTTP 409)."""

    code = "Conflict"


class StorageUnavailableError(DomainError):
    """The table cannot be reached or keeps throttling; the client should retry (HTTP 503)."""

    code = "ServiceUnavailable"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnauthenticatedError(DomainError):
    """No key, or a key that is unknown, revoked, expired or of a disabled tenant (HTTP 401)."""

    code = "Unauthorized"


class ForbiddenError(DomainError):
    """A valid key without the scope the route needs (HTTP 403)."""

    code = "Forbidden"
