"""A pipeline component for the `hybrid` edge host, written in Python, made by `hybrid new`.

The host hands `WitWorld.handle` one request (a body, its content type, metadata) and the
plugin answers with a response and a routing record saying who answered and why. As
written it echoes the request back as JSON with what it saw. The request's `action` (a
query parameter, `?action=model`, or the header `x-hybrid-action`) picks one of the other
paths, each a small working example of host calls to start from:

- `echo` (the default): answered on the box, no model.
- `model`: runs a local model (`local.list_models()`, `local.run`) once on zeros of its
  declared input shapes and reports its outputs.
- `chat`: asks a serverless chat endpoint (`remote.chat`): the one the operator names with
  the setting `endpoint` (metadata `setting.endpoint`), else `chat`.
- `signals`: reads the box's load, endpoint health and prices (`signals.local_load()`,
  `signals.endpoints()`, `signals.prices()`), what a routing policy decides on.

When a model or an endpoint fails, the plugin still answers (an echo, on the box) and the
routing reason says what failed; a pipeline that cannot do without them raises
`Err(messages.Error_Upstream("..."))` instead, which the client sees as HTTP 502.

The component is built with `--stub-wasi` (see README.md): `print()`, `open()`,
`time.time()` and an uncaught exception trap. Log with `log.log`, time with `clock.now()`;
`WitWorld.handle` turns every exception into the WIT error `internal` (HTTP 500).

`./build` runs the unit tests (`test_app.py`, under CPython against the stub bindings)
and makes the component. `handle` below takes the request only, so the tests call it with
the host imports replaced by fakes.
"""

import json
import struct
from typing import Any, List, Optional

import wit_world
from componentize_py_types import Err
from wit_world.imports import clock, local, log, messages, remote, signals, tensors

# The metadata prefix of the operator's settings (`settings = { ... }` in the host's
# config). The host drops any client key with this prefix, so these can be trusted.
SETTING_PREFIX = "setting."
# The serverless endpoint of `action=chat` when the operator sets none.
DEFAULT_ENDPOINT = "chat"
ACTIONS = ("echo", "model", "chat", "signals")
# The WIT errors `handle` may raise; anything else becomes `internal`.
PIPELINE_ERRORS = (
    messages.Error_BadRequest,
    messages.Error_Unsupported,
    messages.Error_Upstream,
    messages.Error_Internal,
)


class WitWorld(wit_world.WitWorld):
    """The export componentize-py wires to the world's `handle`."""

    def handle(self, request: messages.Request) -> messages.Response:
        try:
            return handle(request)
        except Err as e:
            if isinstance(e.value, PIPELINE_ERRORS):
                raise
            # A host call's error nobody caught (say a `local.Error`): not a pipeline error.
            raise Err(messages.Error_Internal(f"unhandled {describe(e.value)}"))
        except Exception as e:
            # Built with --stub-wasi, the component has no stderr: an uncaught exception
            # would trap with nothing but `unreachable`. Name the bug in the 500 instead.
            raise Err(messages.Error_Internal(f"{type(e).__name__}: {e}"))


def handle(request: messages.Request) -> messages.Response:
    """One request: the path its metadata `action` names, then one log line."""
    started = clock.now()
    asked = metadata(request, "action") or "echo"
    action = asked.lower()
    if action == "echo":
        response = echo(request, "echoed the request")
    elif action == "model":
        response = run_model(request)
    elif action == "chat":
        response = chat(request)
    elif action == "signals":
        response = read_signals()
    else:
        # The client's mistake: 400, naming the actions there are.
        raise Err(messages.Error_BadRequest(
            f"metadata \"action\" must be {' or '.join(ACTIONS)}, got {asked!r}"))
    # For the operator: sizes, routes and timings, never the body. The host tags the line
    # with the pipeline's name and the request id.
    elapsed_ms = (clock.now() - started) / 1e6
    log.log(
        log.Level.INFO,
        f"{action}: {len(request.body)} body bytes, route {response.routing.route}, "
        f"{elapsed_ms:.1f} ms",
    )
    return response


def metadata(request: messages.Request, key: str) -> Optional[str]:
    """The last value of `key`, trimmed, or None when absent or empty."""
    values = [v.strip() for k, v in request.metadata if k == key]
    return values[-1] if values and values[-1] else None


def body_value(request: messages.Request) -> Any:
    """The request's body as JSON when it parses, else as text."""
    text = request.body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def answer(value: Any, routing: messages.Routing) -> messages.Response:
    """A JSON response."""
    return messages.Response(
        content_type="application/json",
        body=json.dumps(value).encode("utf-8"),
        routing=routing,
    )


def on_the_box(reason: str, model: str = "", model_version: str = "") -> messages.Routing:
    """The routing record of an answer made on this box."""
    return messages.Routing(route="local", reason=reason, model=model, model_version=model_version)


def echo(request: messages.Request, reason: str) -> messages.Response:
    """Echoes the body with what the plugin saw, answered on the box for `reason`."""
    # The client's own metadata only: `setting.*` keys are the operator's configuration.
    seen_metadata = [[k, v] for k, v in request.metadata if not k.startswith(SETTING_PREFIX)]
    return answer(
        {
            "echo": body_value(request),
            "seen": {
                "request_id": request.id,
                "content_type": request.content_type,
                "body_bytes": len(request.body),
                "metadata": seen_metadata,
            },
        },
        on_the_box(reason),
    )


# `struct` codes and sizes of the tensor element types (little-endian, as WIT says).
ELEMENTS = {
    tensors.TensorType.FP32: ("f", 4),
    tensors.TensorType.I64: ("q", 8),
    tensors.TensorType.I32: ("i", 4),
    tensors.TensorType.U8: ("B", 1),
}
# The largest input `action=model` makes, in bytes.
MAX_INPUT_BYTES = 16 << 20


def run_model(request: messages.Request) -> messages.Response:
    """`action=model`: runs a local model once on zeros shaped as it declares its inputs.

    Which model: the client's `model`, else the operator's setting `model`, else the first
    one loaded on the box. Replace the zeros with your preprocessing of the body.
    """
    wanted = metadata(request, "model") or metadata(request, SETTING_PREFIX + "model")
    models = local.list_models()
    if wanted is None:
        model = models[0] if models else None
    else:
        model = next((m for m in models if m.name == wanted), None)
    if model is None:
        if wanted is None:
            return echo(request, "no local models on this box: echoed")
        return echo(request, f"no local model {wanted!r} on this box: echoed")
    inputs = [zeros(spec) for spec in model.inputs]
    try:
        outputs = local.run(model.name, inputs)
    except Err as e:
        return echo(request, f"model {model.name} failed ({describe(e.value)}): echoed")
    shown = [
        {"name": t.name, "dims": t.tensor.dimensions, "first": first_values(t.tensor)}
        for t in outputs
    ]
    return answer(
        {"model": model.name, "outputs": shown},
        on_the_box(f"ran {model.name} on zeros", model.name, model.version),
    )


def zeros(spec: local.TensorSpec) -> tensors.NamedTensor:
    """A tensor of zeros for `spec`, each size chosen per call (`None`) set to 1."""
    dims = [1 if d is None else d for d in spec.shape]
    size = ELEMENTS[spec.ty][1]
    for d in dims:
        size *= d
    if size > MAX_INPUT_BYTES:
        raise Err(messages.Error_Internal(f"input {spec.name} is too large ({size} bytes)"))
    # Zero is all zero bytes in every element type.
    return tensors.NamedTensor(spec.name, tensors.Tensor(dims, spec.ty, bytes(size)))


def first_values(tensor: tensors.Tensor, shown: int = 8) -> List[float]:
    """Up to the first `shown` values of a tensor."""
    code, size = ELEMENTS[tensor.ty]
    count = min(shown, len(tensor.data) // size)
    return list(struct.unpack_from(f"<{count}{code}", tensor.data))


def chat(request: messages.Request) -> messages.Response:
    """`action=chat`: asks the serverless chat endpoint about the body's `text` (or the
    whole body), unless its circuit is open."""
    endpoint = metadata(request, SETTING_PREFIX + "endpoint") or DEFAULT_ENDPOINT
    # A failing endpoint's breaker is open: do not wait for it to fail again.
    if any(h.name == endpoint and h.circuit == signals.CircuitState.OPEN
           for h in signals.endpoints()):
        return echo(request, f"endpoint {endpoint} is failing: echoed")
    value = body_value(request)
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        text = value["text"]
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value)
    conversation = [
        remote.Message(role="system", content="Answer in one short sentence."),
        remote.Message(role="user", content=text),
    ]
    params = remote.ChatParams(max_tokens=64, temperature=None, top_p=None, stop=[], model=None)
    try:
        result = remote.chat(endpoint, conversation, params)
    except Err as e:
        return echo(request, f"endpoint {endpoint} failed ({describe(e.value)}): echoed")
    return answer(
        {
            "answer": result.content,
            "endpoint": endpoint,
            "cost_micro_usd": result.call.cost_micro_usd,
            "latency_ms": result.call.latency_ms,
        },
        messages.Routing(
            route=f"remote:{endpoint}", reason="action=chat", model=result.call.model,
            model_version="",
        ),
    )


CIRCUITS = {
    signals.CircuitState.CLOSED: "closed",
    signals.CircuitState.OPEN: "open",
    signals.CircuitState.HALF_OPEN: "half-open",
}


def read_signals() -> messages.Response:
    """`action=signals`: what the box knows now about itself and its endpoints.

    A routing policy reads these to decide, e.g. go remote when the box is queueing, stay
    local when the endpoint's circuit is open or the budget is spent.
    """
    load = signals.local_load()
    spent = [
        w.window for w in signals.spend()
        if w.budget_micro_usd is not None and w.spent_micro_usd >= w.budget_micro_usd
    ]
    return answer(
        {
            "load": {
                "in_flight": load.in_flight,
                "queue_depth": load.queue_depth,
                "capacity": load.capacity,
                "recent_model_ms": load.recent_model_ms,
            },
            "endpoints": [
                {
                    "name": h.name,
                    "circuit": CIRCUITS[h.circuit],
                    "error_rate": h.error_rate,
                    "latency_ms": h.latency_ms,
                }
                for h in signals.endpoints()
            ],
            "prices": [
                {
                    "name": p.name,
                    "kind": p.kind,
                    "input_usd_per_mtok": p.input_usd_per_mtok,
                    "output_usd_per_mtok": p.output_usd_per_mtok,
                    "usd_per_request": p.usd_per_request,
                }
                for p in signals.prices()
            ],
            "budget_spent": spent[0] if spent else None,
        },
        on_the_box("read the box's signals"),
    )


def describe(error: Any) -> str:
    """A WIT error case as text: `timeout: no answer in 10 s`, `rate-limited`."""
    name = type(error).__name__
    name = name[len("Error_"):] if name.startswith("Error_") else name
    case = "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
    value = getattr(error, "value", None)
    if value is None:
        return case
    if isinstance(value, remote.Rejection):
        return f"{case}: HTTP {value.status}: {value.message}"
    if isinstance(error, remote.Error_RateLimited):
        return f"{case}: retry after {value} ms"
    return f"{case}: {value}"
