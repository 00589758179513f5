"""The official OpenAI Python client, unmodified, against `hybrid serve`'s `/v1` routes.

Run by tests/openai/run, which starts hybrid-sim and `hybrid serve --config hybrid.toml`
and passes the server's address in HYBRID_URL (http://HOST:PORT), the simulator's base
URL in HYBRID_SIM_URL and its key in HYBRID_SIM_KEY. Each check prints
`ok - NAME` or `FAIL - NAME: why`; the last line is `N passed, M failed` (CI reads it) and
the exit status is non-zero when anything failed.

The last check sends the server's `/metrics` (after the traffic of the others, so
counters, histograms and gauges all have samples) through `promtool check metrics`
(Debian package `prometheus`) and prints what it says.
"""

import base64
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time
import traceback
import urllib.request

import openai
from openai import OpenAI

BASE = os.environ["HYBRID_URL"].rstrip("/")
SIM_URL = os.environ["HYBRID_SIM_URL"].rstrip("/")
EMBED_MODEL = "minilm-l6-v2"
CHAT_MODEL = "llama3.3-70b-instruct"
DIMENSIONS = 384
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What does an edge box do?"},
]

# No retries: a failure the client would paper over is a failure here.
client = OpenAI(base_url=f"{BASE}/v1", api_key="unused", max_retries=0, timeout=60)
results = {"passed": 0, "failed": 0}
# Answers kept by one check for another to compare against.
seen = {}


def check(fn):
    """Runs one check now and records its result."""
    name = fn.__name__.removeprefix("check_")
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
        results["failed"] += 1
        detail = "".join(traceback.format_exception_only(e)).strip()
        print(f"FAIL - {name}: {detail}", flush=True)
        return fn
    results["passed"] += 1
    print(f"ok - {name}", flush=True)
    return fn


def set_scenario(scenario):
    """Replaces the simulator's fault scenario (`{}` restores healthy answers)."""
    request = urllib.request.Request(
        f"{SIM_URL.removesuffix('/v1')}/sim/scenario",
        data=json.dumps(scenario).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {os.environ['HYBRID_SIM_KEY']}"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def expect_unit_vectors(vectors):
    expect(len(vectors) == 2, f"expected 2 vectors, got {len(vectors)}")
    for i, v in enumerate(vectors):
        expect(len(v) == DIMENSIONS, f"vector {i} has {len(v)} values, not {DIMENSIONS}")
        expect(all(isinstance(x, float) for x in v), f"vector {i} holds non-floats")
        norm = math.sqrt(sum(x * x for x in v))
        expect(abs(norm - 1.0) < 1e-3, f"vector {i} has length {norm}, not 1")
    expect(vectors[0] != vectors[1], "the two inputs got the same vector")


def expect_close(a, b, what):
    worst = max(abs(x - y) for va, vb in zip(a, b, strict=True) for x, y in zip(va, vb, strict=True))
    expect(worst < 1e-6, f"{what} differ from the float vectors by up to {worst}")


@check
def check_models_list():
    ids = {m.id for m in client.models.list()}
    expect({EMBED_MODEL, CHAT_MODEL} <= ids, f"model ids {sorted(ids)}")


@check
def check_embeddings_float():
    r = client.embeddings.create(model=EMBED_MODEL, input=["a", "b"], encoding_format="float")
    expect([d.index for d in r.data] == [0, 1], f"indexes {[d.index for d in r.data]}")
    vectors = [d.embedding for d in r.data]
    expect_unit_vectors(vectors)
    expect(r.usage.prompt_tokens > 0, f"usage {r.usage}")
    expect(r.usage.total_tokens >= r.usage.prompt_tokens, f"usage {r.usage}")
    seen["float"] = vectors


@check
def check_embeddings_default_is_base64_decoded_by_the_client():
    # Without encoding_format the client itself asks for base64 and decodes the strings
    # into lists of floats (with the `array` module when numpy is absent, as here).
    r = client.embeddings.create(model=EMBED_MODEL, input=["a", "b"])
    vectors = [d.embedding for d in r.data]
    expect_unit_vectors(vectors)
    expect(r.usage.prompt_tokens > 0, f"usage {r.usage}")
    expect_close(vectors, seen["float"], "client-decoded base64 vectors")


@check
def check_embeddings_base64_explicit():
    # An explicit encoding_format leaves the strings as the server sent them.
    r = client.embeddings.create(model=EMBED_MODEL, input=["a", "b"], encoding_format="base64")
    raw = [d.embedding for d in r.data]
    expect(all(isinstance(s, str) for s in raw), f"expected base64 strings, got {[type(s) for s in raw]}")
    vectors = []
    for s in raw:
        data = base64.b64decode(s, validate=True)
        expect(len(data) == 4 * DIMENSIONS, f"{len(data)} bytes, not {4 * DIMENSIONS}")
        vectors.append(list(struct.unpack(f"<{DIMENSIONS}f", data)))
    expect_unit_vectors(vectors)
    expect(r.usage.prompt_tokens > 0, f"usage {r.usage}")
    expect_close(vectors, seen["float"], "explicit base64 vectors")


@check
def check_chat_completion():
    r = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    expect(len(r.choices) == 1, f"{len(r.choices)} choices")
    message = r.choices[0].message
    expect(message.role == "assistant", f"role {message.role}")
    expect(message.content.startswith("sim reply to:"), f"content {message.content!r}")
    expect(r.choices[0].finish_reason == "stop", f"finish_reason {r.choices[0].finish_reason}")
    u = r.usage
    expect(u is not None and u.prompt_tokens > 0 and u.completion_tokens > 0, f"usage {u}")
    expect(u.total_tokens == u.prompt_tokens + u.completion_tokens, f"usage {u}")
    seen["chat"] = r


@check
def check_chat_completion_streamed():
    stream = client.chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    pieces, finishes, usages, chunks = [], [], [], 0
    for chunk in stream:
        chunks += 1
        expect(chunk.object == "chat.completion.chunk", f"object {chunk.object}")
        if chunk.usage is not None:
            usages.append(chunk.usage)
            expect(chunk.choices == [], "the usage chunk carries choices")
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            if choice.finish_reason is not None:
                finishes.append(choice.finish_reason)
    content = "".join(pieces)
    expected = seen["chat"].choices[0].message.content
    expect(content == expected, f"streamed {content!r} but the completion was {expected!r}")
    expect(chunks >= 3, f"only {chunks} chunks")
    expect(finishes == ["stop"], f"finish reasons {finishes}")
    expect(len(usages) == 1, f"{len(usages)} usage chunks")
    expect(usages[0].model_dump() == seen["chat"].usage.model_dump(), f"usage {usages[0]} vs {seen['chat'].usage}")


@check
def check_chat_stream_without_usage_has_no_usage_chunk():
    stream = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True)
    chunks = list(stream)
    expect(all(c.usage is None for c in chunks), "a usage chunk without stream_options.include_usage")
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expect(content.startswith("sim reply to:"), f"content {content!r}")


@check
def check_chat_stream_arrives_chunk_by_chunk():
    # The simulator spaces its deltas 150 ms apart: a client that sees them spread out
    # over time got each one as it was produced, not the whole answer at the end.
    set_scenario({"token_delay_ms": 150})
    try:
        stream = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True)
        arrivals = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append((time.monotonic(), chunk.choices[0].delta.content))
    finally:
        set_scenario({})
    text = "".join(piece for _, piece in arrivals)
    expect(text == "sim reply to: What does an edge box do?", f"streamed {text!r}")
    expect(len(arrivals) >= 6, f"only {len(arrivals)} content chunks")
    spread = arrivals[-1][0] - arrivals[0][0]
    # Seven gaps of 150 ms upstream; half of that is a generous margin.
    expect(spread >= 0.5, f"the chunks arrived within {spread:.3f} s of each other")


@check
def check_rate_limit_is_429_with_retry_after():
    set_scenario({"sequence": ["429", "429", "429"], "rate_limit": {"burst_every": 1000000, "retry_after_s": 120}})
    try:
        for stream in (False, True):
            try:
                r = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=stream)
                if stream:
                    list(r)
            except openai.RateLimitError as e:
                expect(e.status_code == 429, f"status {e.status_code}")
                expect(e.response.headers.get("retry-after") == "120", f"Retry-After {e.response.headers.get('retry-after')!r}")
                expect(e.code == "rate_limited", f"code {e.code!r}")
            else:
                raise AssertionError(f"no RateLimitError (stream={stream})")
            set_scenario({"sequence": ["429", "429", "429"], "rate_limit": {"burst_every": 1000000, "retry_after_s": 120}})
    finally:
        set_scenario({})


@check
def check_error_after_the_first_chunk_raises_in_the_stream():
    # The simulator sends half the stream, then cuts the connection: the SDK must get the
    # text so far, then an error it raises, not a silently short answer.
    set_scenario({"sequence": ["drop"]})
    pieces = []
    try:
        stream = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True)
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    except openai.APIError as e:
        expect(pieces, "the error came before any text")
        expect("upstream" in str(e.message) or "endpoint" in str(e.message), f"message {e.message!r}")
    else:
        raise AssertionError(f"the cut stream ended without an error after {pieces!r}")
    finally:
        set_scenario({})


@check
def check_unknown_model_is_not_found():
    for call in (
        lambda: client.chat.completions.create(model="no-such-model", messages=MESSAGES),
        lambda: client.embeddings.create(model="no-such-model", input=["a"]),
        # A known id of the other kind is not served on this route either.
        lambda: client.chat.completions.create(model=EMBED_MODEL, messages=MESSAGES),
    ):
        try:
            call()
        except openai.NotFoundError as e:
            expect(e.status_code == 404, f"status {e.status_code}")
            expect(e.code == "model_not_found", f"code {e.code!r}")
            expect(e.param == "model", f"param {e.param!r}")
        else:
            raise AssertionError("no NotFoundError for an unknown model")


@check
def check_raw_response_headers_on_chat():
    raw = client.chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=MESSAGES, extra_headers={"x-request-id": "openai-check-chat"}
    )
    h = raw.headers
    expect(h.get("x-request-id") == "openai-check-chat", f"x-request-id {h.get('x-request-id')!r}")
    expect(h.get("x-hybrid-route", "").startswith("remote:"), f"x-hybrid-route {h.get('x-hybrid-route')!r}")
    expect(h.get("x-hybrid-model"), "no x-hybrid-model")
    cost = float(h.get("x-hybrid-cost-usd", "nan"))
    expect(cost > 0, f"x-hybrid-cost-usd {h.get('x-hybrid-cost-usd')!r} for a priced remote call")
    completion = raw.parse()
    expect(completion.choices[0].message.content.startswith("sim reply to:"), "parsed content")


@check
def check_raw_response_headers_on_embeddings():
    raw = client.embeddings.with_raw_response.create(model=EMBED_MODEL, input=["a", "b"])
    h = raw.headers
    expect(h.get("x-request-id"), "no x-request-id")
    expect(h.get("x-hybrid-route") == "local", f"x-hybrid-route {h.get('x-hybrid-route')!r}")
    expect(EMBED_MODEL in h.get("x-hybrid-model", ""), f"x-hybrid-model {h.get('x-hybrid-model')!r}")
    expect(float(h.get("x-hybrid-cost-usd", "nan")) == 0.0, f"x-hybrid-cost-usd {h.get('x-hybrid-cost-usd')!r}")
    expect(len(raw.parse().data) == 2, "parsed data")


@check
def check_upstream_failure_is_a_server_error():
    # Every attempt of the next chat call fails at the simulator (chat has max_attempts 3),
    # so the host answers 502 and counts a remote error.
    scenario = urllib.request.Request(
        f"{SIM_URL.removesuffix('/v1')}/sim/scenario",
        data=b'{"sequence": ["503", "503", "503"]}',
        headers={"content-type": "application/json", "authorization": f"Bearer {os.environ['HYBRID_SIM_KEY']}"},
    )
    urllib.request.urlopen(scenario, timeout=10).close()
    try:
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    except openai.APIStatusError as e:
        expect(e.status_code == 502, f"status {e.status_code}: {e.message}")
        expect(isinstance(e, openai.InternalServerError), f"{type(e).__name__}")
    else:
        raise AssertionError("the chat call succeeded although every attempt failed")


@check
def check_metrics_pass_promtool():
    with urllib.request.urlopen(f"{BASE}/metrics", timeout=10) as r:
        content_type = r.headers.get("content-type", "")
        text = r.read()
    expect(content_type.startswith("text/plain"), f"content type {content_type!r}")
    lines = text.decode().splitlines()
    # Not hybrid_remote_errors_total: the host records a failed call's remote metrics only
    # when the request as a whole succeeds, so the upstream failure above leaves it empty.
    for family, kind in [
        ("hybrid_requests_total", "counter"),
        ("hybrid_request_duration_seconds", "histogram"),
        ("hybrid_local_model_duration_seconds", "histogram"),
        ("hybrid_remote_duration_seconds", "histogram"),
        ("hybrid_in_flight", "gauge"),
    ]:
        expect(f"# TYPE {family} {kind}" in lines, f"no {kind} {family}")
        expect(any(line.startswith(family) for line in lines), f"{family} has no samples")
    promtool = shutil.which("promtool")
    expect(promtool, "promtool not found: apt-get install prometheus (.ci/run does)")
    run = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
    said = (run.stdout + run.stderr).decode().strip()
    print(f"promtool check metrics: exit {run.returncode}" + (f"\n{said}" if said else ", nothing to report"))
    # Exit 3 is lint advice only (naming conventions); the text still parses. Anything
    # else non-zero means the exposition text is malformed.
    if run.returncode == 3:
        print("promtool: lint warnings only (accepted, listed above)")
    else:
        expect(run.returncode == 0, "promtool check metrics failed")


print(f"{results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
