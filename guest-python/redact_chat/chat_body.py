"""The request body: chat messages as JSON, or plain text as one user message.

Pure Python (`json` only). Malformed input raises `BadRequest` and a body this pipeline does
not read raises `Unsupported`; `app` maps them to the WIT errors `bad-request` (400) and
`unsupported` (415).
"""

import json
from dataclasses import dataclass
from typing import List


class BadRequest(ValueError):
    """The body is malformed; the message names what is wrong."""


class Unsupported(ValueError):
    """The body is in a format this pipeline does not read."""


@dataclass
class ChatMessage:
    """One chat message as the client sent it."""

    role: str
    content: str


# Roles the OpenAI chat API knows; anything else is most likely a client bug.
ROLES = ("system", "user", "assistant", "tool")


def parse(content_type: str, body: bytes) -> List[ChatMessage]:
    """The messages in `body`.

    `application/json` (or `+json`, or no content type) must be an object with a non-empty
    `messages` list of `{"role", "content"}` objects, both strings. `text/plain` is one
    user message. Anything else is unsupported.
    """
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "text/plain":
        return [ChatMessage("user", _utf8(body))]
    if mime and mime != "application/json" and not mime.endswith("+json"):
        raise Unsupported(f"content type {mime!r}: send application/json or text/plain")
    try:
        value = json.loads(_utf8(body))
    except json.JSONDecodeError as e:
        raise BadRequest(f"body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object with a 'messages' list")
    items = value.get("messages")
    if not isinstance(items, list) or not items:
        raise BadRequest("'messages' must be a non-empty list")
    return [_message(i, item) for i, item in enumerate(items)]


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"body is not UTF-8 (byte {e.start})")


def _message(index: int, item: object) -> ChatMessage:
    if not isinstance(item, dict):
        raise BadRequest(f"'messages[{index}]' must be an object")
    role, content = item.get("role"), item.get("content")
    if role not in ROLES:
        raise BadRequest(f"'messages[{index}].role' must be one of {', '.join(ROLES)}")
    if not isinstance(content, str):
        raise BadRequest(f"'messages[{index}].content' must be a string")
    return ChatMessage(role, content)
