"""Unit tests of the pipeline under the build machine's CPython.

The host imports come from componentize-py's stub bindings (`.bindings/`, written by
`./build`), which raise `NotImplementedError`; `FakeHost` below replaces the ones the
pipeline calls, so every path runs without a component or a host. `./build` runs these
before it builds; `./build --test` runs only these.
"""

import json
import struct
import unittest

from componentize_py_types import Err
from wit_world.imports import clock, local, log, messages, remote, signals, tensors

import app


def call_record(model="llama3.3-70b-instruct"):
    return remote.CallRecord(
        endpoint="chat", model=model, usage=remote.Usage(10, 5, 0.0), cost_micro_usd=17,
        bytes_sent=100, bytes_received=200, latency_ms=3, attempts=1,
    )


def healthy(name, circuit=signals.CircuitState.CLOSED):
    return signals.EndpointHealth(name, circuit, 0.0, 0.0, None)


class FakeHost(unittest.TestCase):
    """Replaces the host imports with fakes that record their calls; `self.models`,
    `self.endpoints`, `self.on_run` and `self.on_chat` say what they answer."""

    def setUp(self):
        self.logged, self.runs, self.chats = [], [], []
        self.models = []
        self.endpoints = []
        self.prices = []
        self.spend = []
        self.on_run = lambda model, inputs: []
        self.on_chat = lambda endpoint, msgs, params: remote.ChatResult(
            content="reply", finish_reason="stop", call=call_record())
        self.now = 0

        def run(model, inputs):
            self.runs.append((model, inputs))
            return self.on_run(model, inputs)

        def chat(endpoint, msgs, params):
            self.chats.append((endpoint, msgs, params))
            return self.on_chat(endpoint, msgs, params)

        def now():
            self.now += 1_500_000
            return self.now

        fakes = [
            (log, "log", lambda level, message: self.logged.append((level, message))),
            (clock, "now", now),
            (local, "list_models", lambda: self.models),
            (local, "run", run),
            (remote, "chat", chat),
            (signals, "local_load", lambda: signals.Load(1, 0, 4, 0.0)),
            (signals, "endpoints", lambda: self.endpoints),
            (signals, "prices", lambda: self.prices),
            (signals, "spend", lambda: self.spend),
        ]
        self.originals = [(module, name, getattr(module, name)) for module, name, _ in fakes]
        for module, name, fake in fakes:
            setattr(module, name, fake)

    def tearDown(self):
        for module, name, original in self.originals:
            setattr(module, name, original)

    def handle(self, body=b'{"text": "hello"}', action=None, metadata=()):
        metadata = list(metadata)
        if action is not None:
            metadata.append(("action", action))
        request = messages.Request("r1", "application/json", body, metadata)
        return app.WitWorld().handle(request)

    def error(self, **kw):
        with self.assertRaises(Err) as e:
            self.handle(**kw)
        return e.exception.value


def body(response):
    return json.loads(response.body)


class Echo(FakeHost):
    def test_echoes_the_body_with_what_it_saw(self):
        response = self.handle(metadata=[("lang", "en"), ("setting.endpoint", "chat")])
        self.assertEqual(response.content_type, "application/json")
        self.assertEqual(body(response), {
            "echo": {"text": "hello"},
            "seen": {"request_id": "r1", "content_type": "application/json",
                     "body_bytes": 17, "metadata": [["lang", "en"]]},
        })
        self.assertEqual(response.routing, messages.Routing("local", "echoed the request", "", ""))
        [(level, line)] = self.logged
        self.assertEqual(level, log.Level.INFO)
        self.assertEqual(line, "echo: 17 body bytes, route local, 1.5 ms")
        self.assertNotIn("hello", line, "the body is never logged")

    def test_a_body_that_is_not_json_is_echoed_as_text(self):
        self.assertEqual(body(self.handle(body=b"plain \xff"))["echo"], "plain \ufffd")

    def test_an_unknown_action_is_a_bad_request(self):
        err = self.error(action="dance")
        self.assertIsInstance(err, messages.Error_BadRequest)
        self.assertIn("echo or model or chat or signals", err.value)

    def test_a_bug_is_internal_not_a_trap(self):
        def broken():
            raise KeyError("oops")
        local.list_models = broken
        err = self.error(action="model")
        self.assertIsInstance(err, messages.Error_Internal)
        self.assertEqual(err.value, "KeyError: 'oops'")

    def test_an_uncaught_host_error_is_internal(self):
        def failing():
            raise Err(remote.Error_Unavailable("down"))
        signals.endpoints = failing
        err = self.error(action="chat")
        self.assertIsInstance(err, messages.Error_Internal)
        self.assertEqual(err.value, "unhandled unavailable: down")


class Model(FakeHost):
    def digits(self):
        spec = local.TensorSpec("input", tensors.TensorType.FP32, [None, 4])
        out = local.TensorSpec("probabilities", tensors.TensorType.FP32, [None, 2])
        return local.ModelInfo("digits", "1", "ab" * 32, [spec], [out], [])

    def test_runs_a_local_model_on_zeros(self):
        self.models = [self.digits()]
        data = struct.pack("<2f", 0.25, 0.75)
        self.on_run = lambda model, inputs: [
            tensors.NamedTensor("probabilities", tensors.Tensor([1, 2], tensors.TensorType.FP32, data))]
        response = self.handle(action="model")
        [(model, [sent])] = self.runs
        self.assertEqual((model, sent.name, sent.tensor.dimensions), ("digits", "input", [1, 4]))
        self.assertEqual(sent.tensor.data, bytes(16))
        self.assertEqual(body(response)["outputs"],
                         [{"name": "probabilities", "dims": [1, 2], "first": [0.25, 0.75]}])
        self.assertEqual(response.routing,
                         messages.Routing("local", "ran digits on zeros", "digits", "1"))

    def test_the_operators_model_setting_picks_one(self):
        self.models = [self.digits()]
        response = self.handle(action="model", metadata=[("setting.model", "other")])
        self.assertEqual(response.routing.reason, "no local model 'other' on this box: echoed")
        self.assertEqual(self.runs, [])

    def test_without_models_or_when_one_fails_it_echoes(self):
        response = self.handle(action="model")
        self.assertEqual(response.routing.reason, "no local models on this box: echoed")

        self.models = [self.digits()]

        def fail(model, inputs):
            raise Err(local.Error_ShapeMismatch("input: [1, 4]"))
        self.on_run = fail
        response = self.handle(action="model")
        self.assertEqual(response.routing.reason,
                         "model digits failed (shape-mismatch: input: [1, 4]): echoed")
        self.assertEqual(body(response)["echo"], {"text": "hello"})


class Chat(FakeHost):
    def test_asks_the_endpoint(self):
        response = self.handle(action="chat")
        [(endpoint, sent, params)] = self.chats
        self.assertEqual(endpoint, "chat")
        self.assertEqual([(m.role, m.content) for m in sent][1], ("user", "hello"))
        self.assertEqual(params.max_tokens, 64)
        self.assertEqual(body(response), {"answer": "reply", "endpoint": "chat",
                                          "cost_micro_usd": 17, "latency_ms": 3})
        self.assertEqual(response.routing, messages.Routing(
            "remote:chat", "action=chat", "llama3.3-70b-instruct", ""))

    def test_the_operator_names_the_endpoint(self):
        response = self.handle(action="chat", metadata=[("setting.endpoint", "cheap")])
        self.assertEqual(self.chats[0][0], "cheap")
        self.assertEqual(response.routing.route, "remote:cheap")

    def test_a_failed_call_is_answered_on_the_box(self):
        for failure, reason in [
            (remote.Error_Timeout("slow"), "timeout: slow"),
            (remote.Error_RateLimited(250), "rate-limited: retry after 250 ms"),
            (remote.Error_RateLimited(None), "rate-limited"),
            (remote.Error_Rejected(remote.Rejection(400, "too long")),
             "rejected: HTTP 400: too long"),
            (remote.Error_NotFound("no endpoint chat"), "not-found: no endpoint chat"),
        ]:
            with self.subTest(reason=reason):
                def fail(endpoint, msgs, params, failure=failure):
                    raise Err(failure)
                self.on_chat = fail
                response = self.handle(action="chat")
                self.assertEqual(response.routing.route, "local")
                self.assertEqual(response.routing.reason, f"endpoint chat failed ({reason}): echoed")

    def test_an_open_circuit_is_not_called(self):
        self.endpoints = [healthy("chat", signals.CircuitState.OPEN)]
        response = self.handle(action="chat")
        self.assertEqual(response.routing.reason, "endpoint chat is failing: echoed")
        self.assertEqual(self.chats, [])


class Signals(FakeHost):
    def test_reports_load_endpoints_prices_and_a_spent_budget(self):
        self.endpoints = [healthy("chat", signals.CircuitState.HALF_OPEN)]
        self.prices = [signals.EndpointPrice("chat", "chat", 0.65, 0.65, 0.0, 0.0)]
        self.spend = [signals.WindowSpend("minute", 5, None), signals.WindowSpend("day", 9, 9)]
        found = body(self.handle(action="SIGNALS"))
        self.assertEqual(found["load"]["capacity"], 4)
        self.assertEqual(found["endpoints"][0]["circuit"], "half-open")
        self.assertEqual(found["prices"][0]["input_usd_per_mtok"], 0.65)
        self.assertEqual(found["budget_spent"], "day")


if __name__ == "__main__":
    unittest.main()
