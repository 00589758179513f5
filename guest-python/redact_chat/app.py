"""redact-chat: removes e-mail addresses and phone numbers from a chat before it leaves the box.

A `hybrid` pipeline written in Python and built into a component by componentize-py
(`guest-python/build`). Per request:

1. Read the chat messages from the body (`chat_body`): JSON `{"messages": [...]}` or plain
   text. Malformed input is `bad-request` (400), another content type `unsupported` (415).
2. Replace every e-mail address with `[EMAIL]` and every phone number with `[PHONE]` in
   every message (`redaction`).
3. Log one line (counts only, never text) and call `remote.chat` on the endpoint named by
   metadata `endpoint` (default `chat`), with metadata `max_tokens` if given.
4. Answer `{"content": <reply>, "redacted": <items replaced>}` with the routing record
   `remote:<endpoint>`, a reason naming what was redacted, and the model that answered.
   A failed call is `upstream` (502), or `internal` (500) for an endpoint the host's config
   lacks.

`WitWorld.handle` is the component's export; `handle` below takes the request only, so the
unit tests (`test_redact_chat.py`) call it under CPython with the host imports replaced.
"""

import json
from typing import List, Optional, Tuple

import wit_world
from componentize_py_types import Err
from wit_world.imports import log, messages, remote

import chat_body
from redaction import redact

# The endpoint called when metadata `endpoint` is absent.
DEFAULT_ENDPOINT = "chat"


class WitWorld(wit_world.WitWorld):
    """The export componentize-py wires to the world's `handle`."""

    def handle(self, request: messages.Request) -> messages.Response:
        try:
            return handle(request)
        except Err:
            raise
        except Exception as e:
            # Built with --stub-wasi, the component has no stderr: an uncaught exception
            # would trap with nothing but `unreachable`. Name the bug in the 500 instead.
            raise Err(messages.Error_Internal(f"redact-chat: {type(e).__name__}: {e}"))


def handle(request: messages.Request) -> messages.Response:
    """One request, steps 1 to 4 of the module doc."""
    try:
        chat = chat_body.parse(request.content_type, request.body)
    except chat_body.Unsupported as e:
        raise Err(messages.Error_Unsupported(str(e)))
    except chat_body.BadRequest as e:
        raise Err(messages.Error_BadRequest(str(e)))
    endpoint = _metadata(request.metadata, "endpoint") or DEFAULT_ENDPOINT
    max_tokens = _max_tokens(request.metadata)

    emails = phones = 0
    outgoing = []
    for m in chat:
        r = redact(m.content)
        emails += r.emails
        phones += r.phones
        outgoing.append(remote.Message(role=m.role, content=r.text))
    redacted = emails + phones
    log.log(
        log.Level.INFO,
        f"request {request.id}: redacted {emails} e-mail(s) and {phones} phone number(s) "
        f"in {len(outgoing)} message(s); calling endpoint {endpoint}",
    )

    params = remote.ChatParams(
        max_tokens=max_tokens, temperature=None, top_p=None, stop=[], model=None
    )
    try:
        result = remote.chat(endpoint, outgoing, params)
    except Err as e:
        raise Err(_call_failed(endpoint, e.value))

    body = json.dumps({"content": result.content, "redacted": redacted})
    return messages.Response(
        content_type="application/json",
        body=body.encode("utf-8"),
        routing=messages.Routing(
            route=f"remote:{endpoint}",
            reason=f"redacted {redacted} item(s) ({emails} e-mail, {phones} phone) "
            "before the serverless call",
            model=result.call.model,
            model_version="",
        ),
    )


def _metadata(metadata: List[Tuple[str, str]], key: str) -> Optional[str]:
    """The last value of `key`, or None."""
    values = [v for k, v in metadata if k == key]
    return values[-1] if values else None


def _max_tokens(metadata: List[Tuple[str, str]]) -> Optional[int]:
    text = _metadata(metadata, "max_tokens")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 2**32 - 1:
        raise Err(messages.Error_BadRequest(f"max_tokens {text!r} is not a positive integer"))
    return int(text)


# The WIT names of the remote errors that carry a message.
_CASES = {
    remote.Error_Timeout: "timeout",
    remote.Error_Unavailable: "unavailable",
    remote.Error_TooLarge: "too-large",
    remote.Error_BudgetExceeded: "budget-exceeded",
    remote.Error_BadResponse: "bad-response",
}


def _call_failed(endpoint: str, error: remote.Error) -> messages.Error:
    """The pipeline error for a failed `remote.chat`: the host's config lacking the endpoint
    is this box's problem (500); everything else is the upstream's (502)."""
    if isinstance(error, remote.Error_NotFound):
        return messages.Error_Internal(f"endpoint {endpoint}: {error.value}")
    if isinstance(error, remote.Error_Rejected):
        detail = f"rejected with HTTP {error.value.status}: {error.value.message}"
    elif isinstance(error, remote.Error_RateLimited):
        retry = "" if error.value is None else f", retry after {error.value} ms"
        detail = f"rate-limited{retry}"
    else:
        detail = f"{_CASES.get(type(error), 'error')}: {error.value}"
    return messages.Error_Upstream(f"endpoint {endpoint} failed: {detail}")
