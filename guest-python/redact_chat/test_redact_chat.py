"""Unit tests of the redact-chat pipeline under the build machine's CPython.

The host imports come from componentize-py's stub bindings (`guest-python/.bindings`,
written by `guest-python/build`), with `remote.chat` and `log.log` replaced by fakes here,
so the whole request path runs without a component or a host. `guest-python/build` runs
these before it builds; by hand: `guest-python/build --test`.
"""

import json
import unittest

from componentize_py_types import Err
from wit_world.imports import log, messages, remote

import app
import chat_body
from redaction import redact


class Redaction(unittest.TestCase):
    def test_emails_and_phones_are_replaced_and_counted(self):
        r = redact("Mail ada.l@example.co.uk or call +44 20 7946 0958, or (555) 123-4567.")
        self.assertEqual(r.text, "Mail [EMAIL] or call [PHONE], or [PHONE].")
        self.assertEqual((r.emails, r.phones, r.total), (1, 2, 3))

    def test_phone_shapes(self):
        for phone in ["+1 415 555 0134", "415-555-0134", "415.555.0134", "0171 1234567",
                      "+491711234567", "(030) 1234 5678"]:
            with self.subTest(phone=phone):
                self.assertEqual(redact(f"call {phone} now").text, "call [PHONE] now")

    def test_short_numbers_dates_and_versions_stay(self):
        for text in ["order 42 of 2024", "on 2024-01-15", "on 15.01.2024", "v1.2.3",
                     "pin 1234", "room 12 34"]:
            with self.subTest(text=text):
                r = redact(text)
                self.assertEqual((r.text, r.total), (text, 0))

    def test_digits_in_an_email_are_not_a_phone(self):
        r = redact("write to 4155550134@sms.example.net")
        self.assertEqual((r.text, r.emails, r.phones), ("write to [EMAIL]", 1, 0))


class ChatBody(unittest.TestCase):
    def test_json_messages(self):
        body = b'{"messages": [{"role": "system", "content": "terse"}, {"role": "user", "content": "hi"}]}'
        got = chat_body.parse("application/json; charset=utf-8", body)
        self.assertEqual([(m.role, m.content) for m in got], [("system", "terse"), ("user", "hi")])

    def test_plain_text_is_one_user_message(self):
        got = chat_body.parse("text/plain", "héllo".encode())
        self.assertEqual([(m.role, m.content) for m in got], [("user", "héllo")])

    def test_malformed_bodies_name_the_problem(self):
        cases = [
            (b"{not json", "not valid JSON"),
            (b"[1]", "JSON object"),
            (b'{"messages": []}', "'messages'"),
            (b'{"messages": ["hi"]}', "'messages[0]'"),
            (b'{"messages": [{"role": "robot", "content": "x"}]}', "'messages[0].role'"),
            (b'{"messages": [{"role": "user", "content": 3}]}', "'messages[0].content'"),
            (b"\xff", "not UTF-8"),
        ]
        for body, names in cases:
            with self.subTest(body=body):
                with self.assertRaises(chat_body.BadRequest) as e:
                    chat_body.parse("", body)
                self.assertIn(names, str(e.exception))

    def test_other_content_types_are_unsupported(self):
        with self.assertRaises(chat_body.Unsupported):
            chat_body.parse("audio/wav", b"RIFF")


def call_record(model="llama3.3-70b-instruct"):
    return remote.CallRecord(
        endpoint="chat", model=model, usage=remote.Usage(10, 5, 0.0), cost_micro_usd=17,
        bytes_sent=100, bytes_received=200, latency_ms=3, attempts=1,
    )


class Handle(unittest.TestCase):
    """`WitWorld.handle` with a fake `remote.chat` that records what would leave the box."""

    def setUp(self):
        self.calls = []
        self.logged = []
        self.answer = lambda endpoint, msgs, params: remote.ChatResult(
            content="reply", finish_reason="stop", call=call_record()
        )

        def chat(endpoint, msgs, params):
            self.calls.append((endpoint, msgs, params))
            return self.answer(endpoint, msgs, params)

        self.patches = [(remote, "chat", remote.chat), (log, "log", log.log)]
        remote.chat = chat
        log.log = lambda level, message: self.logged.append((level, message))

    def tearDown(self):
        for module, name, original in self.patches:
            setattr(module, name, original)

    def handle(self, body, content_type="application/json", metadata=()):
        request = messages.Request("req-1", content_type, body, list(metadata))
        return app.WitWorld().handle(request)

    def error(self, body, **kw):
        with self.assertRaises(Err) as e:
            self.handle(body, **kw)
        return e.exception.value

    def test_redacts_before_the_call_and_reports_it(self):
        body = json.dumps({"messages": [
            {"role": "system", "content": "Reply to ada@example.com."},
            {"role": "user", "content": "I am on +1 415 555 0134, mail me at bob@example.org"},
        ]}).encode()
        response = self.handle(body, metadata=[("max_tokens", "64")])

        [(endpoint, sent, params)] = self.calls
        self.assertEqual(endpoint, "chat")
        self.assertEqual([m.content for m in sent], [
            "Reply to [EMAIL].", "I am on [PHONE], mail me at [EMAIL]"])
        self.assertEqual(params.max_tokens, 64)
        self.assertEqual(response.content_type, "application/json")
        self.assertEqual(json.loads(response.body), {"content": "reply", "redacted": 3})
        self.assertEqual(response.routing, messages.Routing(
            route="remote:chat",
            reason="redacted 3 item(s) (2 e-mail, 1 phone) before the serverless call",
            model="llama3.3-70b-instruct", model_version=""))
        [(level, line)] = self.logged
        self.assertEqual(level, log.Level.INFO)
        self.assertNotIn("example", line, "counts only, never text")

    def test_endpoint_comes_from_metadata(self):
        response = self.handle(b"hello", content_type="text/plain", metadata=[("endpoint", "cheap")])
        self.assertEqual(self.calls[0][0], "cheap")
        self.assertEqual(response.routing.route, "remote:cheap")

    def test_bad_json_is_bad_request_without_a_call(self):
        err = self.error(b"{oops")
        self.assertIsInstance(err, messages.Error_BadRequest)
        self.assertIn("not valid JSON", err.value)
        self.assertEqual(self.calls, [])

    def test_bad_max_tokens_is_bad_request(self):
        for value in ["0", "-1", "many", "²"]:
            with self.subTest(value=value):
                err = self.error(b"hi", content_type="text/plain", metadata=[("max_tokens", value)])
                self.assertIsInstance(err, messages.Error_BadRequest)

    def test_other_content_type_is_unsupported(self):
        self.assertIsInstance(self.error(b"RIFF", content_type="audio/wav"),
                              messages.Error_Unsupported)

    def test_call_failures_map_to_upstream_or_internal(self):
        cases = [
            (remote.Error_Timeout("chat: no answer in 10 s"), messages.Error_Upstream, "timeout"),
            (remote.Error_RateLimited(250), messages.Error_Upstream, "retry after 250 ms"),
            (remote.Error_Rejected(remote.Rejection(400, "too long")), messages.Error_Upstream,
             "HTTP 400"),
            (remote.Error_NotFound("no endpoint chat"), messages.Error_Internal, "no endpoint"),
        ]
        for failure, kind, names in cases:
            with self.subTest(failure=failure):
                def fail(endpoint, msgs, params, failure=failure):
                    raise Err(failure)
                self.answer = fail
                err = self.error(b"hi", content_type="text/plain")
                self.assertIsInstance(err, kind)
                self.assertIn(names, err.value)

    def test_a_bug_is_internal_not_a_trap(self):
        def broken(endpoint, msgs, params):
            raise KeyError("oops")
        self.answer = broken
        err = self.error(b"hi", content_type="text/plain")
        self.assertIsInstance(err, messages.Error_Internal)
        self.assertIn("KeyError", err.value)


if __name__ == "__main__":
    unittest.main()
