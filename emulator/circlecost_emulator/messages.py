"""Requests and responses as plain values, so the emulator's logic never touches sockets."""

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

JSON_TYPE = "application/json"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str  # the request target as sent: path and query
    circle_token: str | None = None
    authorization: str | None = None
    body: bytes = b""

    @cached_property
    def path(self) -> str:
        return urlsplit(self.target).path

    @cached_property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    @property
    def carries_token(self) -> bool:
        return self.circle_token is not None or self.authorization is not None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (the slow_seconds fault)


def json_response(status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Response(status, body, JSON_TYPE, dict(headers or {}))


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """CircleCI's error shape: `{"message": ...}`."""
    return json_response(status, {"message": message}, headers)


def s3_error(status: int, code: str, message: str, expires: datetime | None = None) -> Response:
    """An error as a pre-signed S3 URL answers it: XML, not JSON."""
    extra = f"<Expires>{expires:%Y-%m-%dT%H:%M:%SZ}</Expires>" if expires else ""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>{extra}</Error>"
    )
    return Response(status, xml.encode(), "application/xml")
