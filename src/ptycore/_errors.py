"""The exceptions ptycore raises, and the SSH disconnect reasons they carry."""

from __future__ import annotations

import enum

__all__ = ["DisconnectReason", "ProtocolError"]


class DisconnectReason(enum.IntEnum):
    """``SSH_MSG_DISCONNECT`` reason codes (RFC 4253 section 11.1)."""

    HOST_NOT_ALLOWED_TO_CONNECT = 1
    PROTOCOL_ERROR = 2
    KEY_EXCHANGE_FAILED = 3
    RESERVED = 4
    MAC_ERROR = 5
    COMPRESSION_ERROR = 6
    SERVICE_NOT_AVAILABLE = 7
    PROTOCOL_VERSION_NOT_SUPPORTED = 8
    HOST_KEY_NOT_VERIFIABLE = 9
    CONNECTION_LOST = 10
    BY_APPLICATION = 11
    TOO_MANY_CONNECTIONS = 12
    AUTH_CANCELLED_BY_USER = 13
    NO_MORE_AUTH_METHODS_AVAILABLE = 14
    ILLEGAL_USER_NAME = 15


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow.

    This is the one exception that malformed input raises anywhere in ptycore.
    It says where the problem is (``request_type``, ``field``, ``offset`` into the
    payload, each ``None`` where it does not apply) and carries the disconnect
    ``reason`` a server should send before it drops the connection, so every
    adapter can handle it the same way: send the DISCONNECT, flush, close.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: DisconnectReason = DisconnectReason.PROTOCOL_ERROR,
        request_type: str | None = None,
        field: str | None = None,
        offset: int | None = None,
    ) -> None:
        self.message = message
        self.reason = reason
        self.request_type = request_type
        self.field = field
        self.offset = offset
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = []
        if self.request_type is not None:
            where.append(f"{self.request_type!r} request")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def with_request_type(self, request_type: str) -> ProtocolError:
        """Return a copy that names the request whose payload was being parsed."""
        return ProtocolError(
            self.message,
            reason=self.reason,
            request_type=request_type,
            field=self.field,
            offset=self.offset,
        )
