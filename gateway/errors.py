"""One exception root for the gateway; each error knows its HTTP status and error code.

A subclass's docstring is its default message, so raising ``NotFound()`` already says
something useful, and the Flask layer maps every error to the contract's error body in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Detail:
    """One problem inside a validation error: where it is and what is wrong."""

    path: str
    message: str


class GatewayError(Exception):
    """Something went wrong in the gateway."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Iterable[Detail] = (),
    ) -> None:
        self.message = message or (self.__doc__ or "").strip()
        if code is not None:
            self.code = code
        self.details = tuple(details)
        super().__init__(self.message)

    def body(self) -> dict[str, object]:
        """The contract's error body."""
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = [{"path": d.path, "message": d.message} for d in self.details]
        return {"error": error}


def error_code(reason: str) -> str:
    """An HTTP reason phrase as an error code: ``URI Too Long`` is ``uri_too_long``."""
    return reason.lower().replace(" ", "_").replace("'", "")


class ConfigurationError(GatewayError):
    """The gateway's configuration is invalid; every command stops before doing anything."""

    code = "configuration_error"


class BadRequest(GatewayError):
    """The request is malformed."""

    status = 400
    code = "bad_request"


class InvalidPayload(BadRequest):
    """The body cannot be parsed as this connector's deliveries."""

    code = "invalid_payload"


class Unauthorized(GatewayError):
    """A valid bearer token is required."""

    status = 401
    code = "unauthorized"


class VerificationFailed(GatewayError):
    """The delivery's signature could not be verified."""

    status = 401
    code = "signature_invalid"


class NotFound(GatewayError):
    """No such resource."""

    status = 404
    code = "not_found"

    @classmethod
    def of(cls, kind: str, key: object, hint: str = "") -> NotFound:
        """Every 404 names the kind and quotes the id alike, the id as text: ``no event '42'``."""
        return cls(f"no {kind} {str(key)!r}" + (f"; {hint}" if hint else ""))


class Conflict(GatewayError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"


class PayloadTooLarge(GatewayError):
    """The body is larger than the configured limit."""

    status = 413
    code = "payload_too_large"


class BodyTimeout(GatewayError):
    """The request body arrived too slowly; the connection is closed."""

    status = 408
    code = "body_timeout"


class UnsupportedContentEncoding(GatewayError):
    """The body's content encoding is not one this connector accepts."""

    status = 415
    code = "unsupported_content_encoding"


class UnsupportedContentType(BadRequest):
    """The content type is not one this connector accepts."""

    code = "unsupported_content_type"


class ValidationFailed(GatewayError):
    """The document is not valid."""

    status = 422
    code = "validation_failed"


class TooManySignIns(GatewayError):
    """Too many failed sign-ins from this address; wait before trying again."""

    status = 429
    code = "too_many_sign_ins"

    def __init__(self, message: str | None = None, *, retry_after_s: int) -> None:
        super().__init__(message)
        #: Whole seconds until this address may try again (the Retry-After header's value).
        self.retry_after_s = retry_after_s


class StoreUnavailable(GatewayError):
    """The database is unavailable; retry later."""

    status = 503
    code = "database_unavailable"


class SecretKeyMismatch(StoreUnavailable):
    """The stored secrets cannot be decrypted with GATEWAY_SECRET_KEY: it is not the key they
    were stored with (another host's, or a new one). Nothing can be verified until it is."""

    code = "secret_key_mismatch"


class MappingError(GatewayError):
    """A mapping could not be applied to this event."""

    status = 422
    code = "mapping_error"
    #: What the error concerns, where known, so an event's history can name it: the webhook
    #: record whose filter failed, or the mapping's upsert that could not be planned.
    webhook_id: str | None = None
    upsert_key: str | None = None


class TargetError(GatewayError):
    """The target system refused or failed an upsert."""

    status = 502
    code = "target_error"
    #: True when retrying later may succeed (limits, timeouts, 5xx); False when the admin must fix.
    transient: bool = False


class TransientTargetError(TargetError):
    """The target system is unavailable for now; the upsert will be retried."""

    code = "target_unavailable"
    transient = True

    def __init__(self, message: str | None = None, *, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        #: The soonest a retry can pass (the target's own pause), when it knows one.
        self.retry_after_s = retry_after_s
