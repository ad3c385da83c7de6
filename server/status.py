"""The one mapping from rollmatch errors to gRPC status codes, with ``google.rpc.BadRequest`` details."""

from __future__ import annotations

import logging

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from rollmatch._pb.rollmatch.v1 import rollmatch_pb2 as pb
from rollmatch.errors import (
    AlreadyExistsError,
    InputError,
    LibraryError,
    LimitError,
    NotFoundError,
    ParameterError,
    RollmatchError,
)

log = logging.getLogger("rollmatch.server")

# Most specific first.
_CODES: tuple[tuple[type[RollmatchError], grpc.StatusCode], ...] = (
    (LimitError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (InputError, grpc.StatusCode.INVALID_ARGUMENT),
    (ParameterError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (LibraryError, grpc.StatusCode.FAILED_PRECONDITION),
)


class FieldError(Exception):
    """A rollmatch error found in one field of a request, e.g. ``fragments[3].notes``."""

    def __init__(self, field: str, error: RollmatchError) -> None:
        super().__init__(f"{field}: {error}")
        self.field = field
        self.error = error


def describe(exc: BaseException) -> tuple[grpc.StatusCode, str, str]:
    """(status code, message, field) for any exception; internal errors are logged, never sent back."""
    field = ""
    if isinstance(exc, FieldError):
        field, exc = exc.field, exc.error
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code, str(exc), field
    log.exception("internal error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, "internal error; see the server log", ""


def rich_status(exc: BaseException) -> grpc.Status:
    """A status carrying a BadRequest detail that names the offending field."""
    code, message, field = describe(exc)
    status = status_pb2.Status(code=code.value[0], message=message)
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED) and field:
        detail = error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field=field, description=message)]
        )
        status.details.add().Pack(detail)
    return rpc_status.to_status(status)


def error_message(exc: BaseException) -> pb.Error:
    """The in-band error of one streamed request."""
    code, message, field = describe(exc)
    return pb.Error(code=code.value[0], message=message, field=field)
