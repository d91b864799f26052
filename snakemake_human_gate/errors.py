"""Errors of the gate store, each with the CLI exit code it maps to."""


class GateError(Exception):
    exit_code = 1


class InvalidInput(GateError):
    """Unknown choice, missing or mistyped field, bad option (exit 2)."""

    exit_code = 2


class Conflict(GateError):
    """The gate is already decided (exit 3)."""

    exit_code = 3


class NotPermitted(GateError):
    """Not an approver, or self-approval refused (exit 4); ``reason`` for the audit log."""

    exit_code = 4

    def __init__(self, message: str, reason: str = "not permitted") -> None:
        super().__init__(message)
        self.reason = reason


class NoStore(InvalidInput):
    """No gate store where one was expected (exit 2): a wrong directory, most likely."""


class BadRecord(InvalidInput):
    """A gate's file is not a gate record (exit 2): the store's problem, not the caller's."""


class UnknownGate(GateError):
    """No gate with that id (exit 5)."""

    exit_code = 5
