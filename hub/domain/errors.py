"""Errors the services raise; the API maps each kind to one HTTP status."""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    """A refusal with a stable code and a message that names the problem."""

    code = "error"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInputError(HubError):
    code = "invalid_input"
    status = 422


class CheckFailedError(InvalidInputError):
    """The input is well formed but the world disagrees (wrong chain id, no code, ...)."""

    code = "check_failed"


class NotFoundError(HubError):
    code = "not_found"
    status = 404


class ConflictError(HubError):
    code = "conflict"
    status = 409


class ChainActionError(HubError):
    """A chain failed or refused a transaction the hub sent; what was done before stays."""

    code = "chain_action_failed"
    status = 502


class UnauthorizedError(HubError):
    code = "unauthorized"
    status = 401


class ForbiddenError(HubError):
    code = "forbidden"
    status = 403


class IllegalTransitionError(ConflictError):
    code = "illegal_transition"
