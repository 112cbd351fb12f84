"""The one exception type for expected refusals, shared by every app.

A service raises an ApplicationError (or a subclass) with a sentence for the person who asked; the
API's exception handler and the pages both read `status` from it, so a form and the API can never
answer the same refusal differently.
"""


class ApplicationError(Exception):
    """An expected refusal. ``str(exc)`` is shown to the user; ``extra`` goes into API bodies."""

    status = 400

    def __init__(self, message: str, **extra) -> None:
        super().__init__(message)
        self.extra = extra


class NotPermitted(ApplicationError):
    status = 403


class Conflict(ApplicationError):
    status = 409


class Unavailable(ApplicationError):
    """A service the request needs (object store, broker) cannot be reached; trying later may work."""

    status = 503


def try_again_in(wait_seconds: int) -> str:
    """How a throttled refusal (sign-ins, uploads) ends: when to try again, in whole minutes."""
    minutes = max(1, -(-wait_seconds // 60))
    return f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
