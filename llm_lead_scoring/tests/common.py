import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from odoo.tools import mute_logger

from odoo.addons.crm.tests.common import TestCrmCommon


def call_kw(case, model, method, args, kwargs=None):
    """``model.method(*args, **kwargs)`` over /web/dataset/call_kw as the web client sends it,
    with the session of ``case`` (an HttpCase); the JSON-RPC answer (``result`` or ``error``)."""
    body = {
        "jsonrpc": "2.0",
        "method": "call",
        "id": 1,
        "params": {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
    }
    with mute_logger("odoo.http"):
        response = case.url_open(
            "/web/dataset/call_kw/%s/%s" % (model, method),
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
    case.assertEqual(response.status_code, 200, response.text[:300])
    return response


def openai_body(content, tokens_in=12, tokens_out=34):
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out},
    }


def analysis_json(clarity=80, summary="Clear need for 50 licences before Q3.", **extra):
    data = {
        "clarity": clarity,
        "summary": summary,
        "strengths": ["Budget stated"],
        "risks": ["Competitor in play"],
        "next_action": "Call the CFO to confirm budget.",
    }
    data.update(extra)
    return json.dumps(data)


class ScriptedLLMServer:
    """A real HTTP server on 127.0.0.1 answering from a script.

    Each scripted answer is (status, headers, body, delay); ``body`` may be bytes, str or a
    JSON-able object. When the script is empty, ``default`` answers (or a callable of the
    request's JSON). Every request is recorded (path, headers, json, time).
    """

    def __init__(self, default=None):
        self.script = []
        self.default = (
            default if default is not None else (200, {}, openai_body(analysis_json()), 0)
        )
        self.requests = []
        self.broken_pipes = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test log clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw or b"null")
                except ValueError:
                    payload = None
                with server._lock:
                    server.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "json": payload,
                            "body": raw,  # multipart requests (audio transcription)
                            "time": time.monotonic(),
                        }
                    )
                    answer = server.script.pop(0) if server.script else server.default
                if callable(answer):
                    answer = answer(payload)
                status, headers, body, delay = answer
                if delay:
                    time.sleep(delay)
                if isinstance(body, (dict, list)):
                    body = json.dumps(body)
                if isinstance(body, str):
                    body = body.encode()
                try:
                    self.send_response(status)
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    if "Content-Type" not in (headers or {}):
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    server.broken_pipes += 1  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = "http://127.0.0.1:%s/v1" % self.port
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class LlmLeadScoringCommon(TestCrmCommon):
    park_backlog_in_transaction = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # start from the configuration of a new install, and no provider
        Company = cls.env["res.company"]
        defaults = {
            name: field.default(Company) if field.default else False
            for name, field in Company._fields.items()
            if name.startswith("llm_") and field.store
        }
        for company in Company.sudo().search([]):
            # only what differs: an UPDATE would lock the row for the other cursors of a test
            changed = {k: v for k, v in defaults.items() if company[k] != v}
            if changed:
                company.write(changed)
        cls.env["llm.provider"].sudo().search([]).write({"active": False})
        if cls.park_backlog_in_transaction:
            # the install queues the existing (demo) leads: each test queues its own (tests
            # with real cursors use _park_committed_backlog instead: rows written here stay
            # locked by the test transaction)
            cls.env["crm.lead"].with_context(active_test=False).search(
                [("ai_enrichment_status", "in", ("pending", "failed", "processing"))]
            ).write({"ai_enrichment_status": "completed"})
        cls.env.registry.clear_cache()
        cls.server = ScriptedLLMServer().start()
        cls.addClassCleanup(cls.server.stop)

    def setUp(self):
        super().setUp()
        self.server.script.clear()
        self.server.requests.clear()
        self.server.default = (200, {}, openai_body(analysis_json()), 0)
        self.env.registry.clear_cache()

    @classmethod
    def _create_provider(cls, base_url=None, **vals):
        values = {
            "name": "Local test server",
            "provider_type": "openai_compatible",
            "base_url": base_url or cls.server.base_url,
            "model_name": "test-model",
            "is_default": True,
            "max_retries": 0,
            "timeout": 5,
        }
        values.update(vals)
        return cls.env["llm.provider"].sudo().create(values)

    def _park_committed_backlog(self):
        """For tests with real cursors: the committed backlog (demo leads queued at install)
        is set aside while the test runs, and queued again after."""
        with self.registry.cursor() as cr:
            cr.execute(
                """UPDATE crm_lead SET ai_enrichment_status = 'completed'
                    WHERE ai_enrichment_status IN ('pending', 'failed') RETURNING id"""
            )
            parked = [row[0] for row in cr.fetchall()]

        def restore():
            with self.registry.cursor() as cr:
                cr.execute(
                    "UPDATE crm_lead SET ai_enrichment_status = 'pending' WHERE id = ANY(%s)",
                    [parked],
                )

        self.addCleanup(restore)

    @classmethod
    def _set_config(cls, company=None, **settings):
        """Write AI settings of a company (default: the current one) by their short names."""
        company = company or cls.env.company
        company.sudo().write({"llm_" + key: value for key, value in settings.items()})

    @contextmanager
    def assertElapsed(self, at_least=0.0):
        started = time.monotonic()
        yield
        self.assertGreaterEqual(time.monotonic() - started, at_least)

    def _full_lead(self, **vals):
        values = {
            "name": "ERP roll-out for 50 users",
            "type": "opportunity",
            "contact_name": "Alice Martin",
            "partner_name": "Acme Industries",
            "email_from": "alice.martin@acme.example.com",
            "phone": "+32 2 555 12 12",
            "street": "Rue de la Loi 16",
            "city": "Brussels",
            "country_id": self.env.ref("base.be").id,
            "expected_revenue": 45000,
            "description": "<p>We need an ERP for 50 users to replace our legacy system by "
            "Q3 2027. Budget approved: 40k EUR. The CFO signs off on the purchase; we want a "
            "demo and a quotation within two weeks.</p>",
            "user_id": self.user_sales_salesman.id,
            "team_id": self.sales_team_1.id,
        }
        values.update(vals)
        return self.env["crm.lead"].create(values)
