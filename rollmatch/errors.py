"""The one exception tree of rollmatch.

Every error a user can cause is a :class:`RollmatchError`. The CLI maps the classes to exit codes and the
server to gRPC status codes, each in one place; third-party parser exceptions are wrapped at the parse
boundary so that nothing else leaks.
"""

from __future__ import annotations


class RollmatchError(Exception):
    """Root of every error rollmatch raises on purpose."""


class ParameterError(RollmatchError, ValueError):
    """A tuning parameter or argument is out of range, e.g. ``stretch=0 must be > 0``."""


class InputError(RollmatchError):
    """A fragment or file cannot be read: corrupt, empty, unknown format or invalid notes."""


class EmptyInputError(InputError):
    """A file, or the tracks and beats selected from it, holds no notes."""


class LimitError(InputError):
    """An input exceeds a size cap (file bytes, notes, beats); raised before anything large is allocated."""


class LibraryError(RollmatchError):
    """The exemplar library on disk is missing, malformed or cannot be written."""


class NotFoundError(LibraryError):
    """No exemplar has the requested id."""


class AlreadyExistsError(LibraryError):
    """An exemplar with the requested id already exists."""


class ServiceError(RollmatchError):
    """The scoring service could not be reached, refused the call or failed."""


class GeneratorError(RollmatchError):
    """A phrase generator could not be loaded, failed, or returned something that is not candidate bars."""


class SearchError(RollmatchError):
    """A phrase search gave up: no candidate survived, even after backtracking, within the budget."""


class OutputError(RollmatchError):
    """A result file (a picture, a report, a MIDI file) cannot be written: no such directory, no permission,
    disk full."""
