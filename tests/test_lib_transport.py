import json
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llm_lib import transport


class Server:
    """A real HTTP server on 127.0.0.1 answering from a script of (status, headers, body)."""

    def __init__(self, script):
        self.script = list(script)
        self.hits = []
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.hits.append(time.monotonic())
                if outer.delay:
                    time.sleep(outer.delay)
                status, headers, body = (
                    outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                )
                body = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%s/v1/chat/completions" % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


OK = (
    200,
    {},
    {
        "choices": [{"message": {"content": "hi"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    },
)


def request(url, **extra):
    return dict(
        {
            "url": url,
            "headers": {},
            "payload": {"model": "m", "messages": []},
            "timeout": 5,
            "max_retries": 3,
            "provider_type": "openai",
            "provider_id": 1,
            "provider_name": "local",
        },
        **extra,
    )


@pytest.fixture
def server_factory():
    servers = []

    def make(script):
        servers.append(Server(script))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_success(server_factory):
    server = server_factory([OK])
    result = transport.execute(request(server.url))
    assert result["success"] and result["content"] == "hi"
    assert (result["tokens_in"], result["tokens_out"]) == (3, 1)


def test_retry_after_seconds_is_honoured(server_factory):
    server = server_factory([(429, {"Retry-After": "1"}, {"error": "slow down"}), OK])
    started = time.monotonic()
    result = transport.execute(request(server.url))
    assert result["success"]
    assert result["attempts"] == 2
    assert time.monotonic() - started >= 1.0
    assert server.hits[1] - server.hits[0] >= 1.0


def test_retry_after_ms_wins(server_factory):
    server = server_factory([(503, {"retry-after-ms": "200", "Retry-After": "30"}, {}), OK])
    sleeps = []
    result = transport.execute(request(server.url), sleep=sleeps.append)
    assert result["success"] and sleeps == [0.2]


def test_no_retry_on_401(server_factory):
    server = server_factory([(401, {}, {"error": {"message": "invalid key sk-123"}})])
    result = transport.execute(request(server.url))
    assert not result["success"] and result["error_kind"] == "auth"
    assert len(server.hits) == 1
    assert "sk-123" not in result["error"]


def test_gives_up_after_max_retries(server_factory):
    server = server_factory([(500, {}, {"error": "boom"})])
    sleeps = []
    result = transport.execute(request(server.url, max_retries=2), sleep=sleeps.append)
    assert result["error_kind"] == "server" and result["attempts"] == 3
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.9 - 1e-9


def test_connection_refused():
    result = transport.execute(request("http://127.0.0.1:9/v1", max_retries=0))
    assert result["error_kind"] == "connection"


def test_failover(server_factory):
    down = server_factory([(503, {}, {})])
    up = server_factory([OK])
    result = transport.execute_with_failover(
        [
            request(down.url, max_retries=0, provider_name="a"),
            request(up.url, provider_name="b", provider_id=2),
        ],
        sleep=lambda s: None,
    )
    assert result["success"] and result["provider"] == "b"
    assert [t["success"] for t in result["tried"]] == [False, True]
    assert "503" in result["tried"][0]["error"]


def test_parse_retry_after_http_date():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    value = format_datetime(now + timedelta(seconds=12), usegmt=True)
    assert transport.parse_retry_after({"Retry-After": value}, now=now) == 12
    assert transport.parse_retry_after({"Retry-After": "garbage"}) is None
    assert transport.parse_retry_after({}) is None


def test_backoff_grows_with_jitter():
    delays = [transport.backoff_delay(n, rand=lambda: 1.0) for n in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert transport.backoff_delay(2, rand=lambda: 0.0) == 1.0


def test_error_never_echoes_the_answer_but_detail_keeps_it(server_factory):
    server = server_factory([(400, {}, {"error": {"message": "model foo-123 not found"}})])
    result = transport.execute(request(server.url))
    assert result["error_kind"] == "refused"
    assert "foo-123" not in result["error"] and "HTTP 400" in result["error"]
    assert "foo-123" in result["detail"]


def test_redirects_are_not_followed(server_factory):
    target = server_factory([OK])
    server = server_factory([(307, {"Location": target.url}, b"")])
    result = transport.execute(request(server.url, max_retries=3))
    assert not result["success"] and "redirect" in result["error"]
    assert len(server.hits) == 1 and target.hits == []


class Gate:
    def __init__(self, allowed):
        self.allowed = allowed
        self.released = []

    def acquire(self, request):
        if self.allowed <= 0:
            return "budget used up"
        self.allowed -= 1
        return None

    def release(self, request, tokens_in, tokens_out):
        self.released.append(tokens_in + tokens_out)


def test_the_gate_is_asked_before_every_attempt(server_factory):
    server = server_factory([(500, {}, {}), (500, {}, {}), OK])
    gate = Gate(allowed=2)
    result = transport.execute(request(server.url, max_retries=5), sleep=lambda s: None, gate=gate)
    assert result["error_kind"] == transport.ERR_BUDGET
    assert result["error"] == "budget used up"
    assert len(server.hits) == 2 and result["attempts"] == 2
    assert gate.released == [0, 0]


def test_a_budget_refusal_stops_the_failover(server_factory):
    first, second = server_factory([OK]), server_factory([OK])
    result = transport.execute_with_failover(
        [request(first.url), request(second.url)], gate=Gate(allowed=0)
    )
    assert result["error_kind"] == transport.ERR_BUDGET and result["tried"] == []
    assert first.hits == [] and second.hits == []


def test_a_timed_out_request_is_not_sent_again(server_factory):
    slow = server_factory([(200, {}, OK[2])])
    slow.delay = 2.0
    result = transport.execute(request(slow.url, timeout=0.5, max_retries=3))
    assert result["error_kind"] == "timeout" and result["attempts"] == 1


def test_nothing_is_sent_past_the_deadline(server_factory):
    server = server_factory([(503, {}, {})])
    deadline = time.monotonic() + 2.5
    started = time.monotonic()
    result = transport.execute(
        request(server.url, max_retries=10, deadline=deadline), sleep=time.sleep
    )
    assert time.monotonic() - started < 2.5
    assert result["error_kind"] == "server" and 1 <= len(server.hits) < 10
    late = transport.execute(request(server.url, deadline=time.monotonic() + 0.5))
    assert late["error_kind"] == transport.ERR_DEADLINE and late["attempts"] == 0


def test_the_timeout_is_cut_to_the_time_left(server_factory):
    slow = server_factory([OK])
    slow.delay = 5.0
    started = time.monotonic()
    result = transport.execute(request(slow.url, timeout=60, deadline=time.monotonic() + 2.0))
    assert result["error_kind"] == "timeout"
    assert time.monotonic() - started < 3.0


def test_slots_limit_concurrency_and_the_breaker_stops_the_batch(server_factory):
    slow = server_factory([OK])
    slow.delay = 1.0
    slots = transport.ProviderSlots(1)
    results = []

    def call():
        results.append(transport.execute(request(slow.url, timeout=0.6, slots=slots)))

    threads = [threading.Thread(target=call) for _i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # one call at a time: the first times out, the others are not sent at all
    assert len(slow.hits) == 1
    kinds = sorted(r["error_kind"] for r in results)
    assert kinds == ["deadline", "deadline", "deadline", "timeout"]
