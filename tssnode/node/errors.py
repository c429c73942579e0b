"""The node's own exceptions."""

from __future__ import annotations

from tssnode.errors import TssError

#: Why a request is refused. The values are the HTTP statuses the API answers with, but
#: the node only names the reason; `tssnode.api` is what speaks HTTP.
BAD_REQUEST, NOT_FOUND, CONFLICT, INVALID, UNAVAILABLE = 400, 404, 409, 422, 503


class RequestRejected(TssError):
    """A request the node refuses: `status` is the reason (one of the constants above)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
