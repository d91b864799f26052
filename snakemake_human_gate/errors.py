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
    """Not an approver, or self-approval refused (exit 4)."""

    exit_code = 4


class UnknownGate(GateError):
    """No gate with that id (exit 5)."""

    exit_code = 5
