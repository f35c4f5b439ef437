import json
import threading
from contextlib import contextmanager
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from odoo import fields

from odoo.addons.crm.tests.common import TestCrmCommon
from odoo.addons.llm_lead_scoring.tests.common import (
    call_kw,  # noqa: F401 (re-exported: this module's tests import it from here)
)
from odoo.addons.mail.tests.common import mail_new_test_user


class LocalLLMServer:
    """A real OpenAI-compatible HTTP server on 127.0.0.1 (a thread of the test process).

    ``responder(payload) -> (status, content)`` decides each answer; requests are recorded.
    """

    def __init__(self):
        self.requests = []
        self.responder = lambda payload: (200, "neutral")
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append({"path": self.path, "payload": payload})
                status, content = server.responder(payload)
                if status == 200:
                    body = {
                        "choices": [{"message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
                    }
                else:
                    body = {"error": {"message": content}}
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self):
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class SalesAgentCommon(TestCrmCommon):
    """CRM's users and teams (user_sales_manager leads sales_team_1), a second-level manager,
    a UTC Monday-Friday company calendar and a helper to age leads."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the crons commit per batch outside the test mode (crm_iap_enrich's pattern)
        cls.registry.enter_test_mode(cls.cr)
        cls.addClassCleanup(cls.registry.leave_test_mode)
        cls.env.company.resource_calendar_id.tz = "UTC"
        cls.user_head_of_sales = mail_new_test_user(
            cls.env,
            login="user_head_of_sales",
            name="Hannah Head of Sales",
            email="head.of.sales@test.example.com",
            groups="sales_team.group_sale_manager",
            notification_type="inbox",
        )
        cls.sales_team_1.member_ids = [(4, cls.user_sales_salesman.id)]
        cls._set_config(escalation_level2_manager_id=cls.user_head_of_sales.id)
        # the tests' frozen dates lie before the install date (the default go-live): the
        # agent acts on every lead unless a test says otherwise
        cls._open_go_live()
        cls.followup_type = cls.env.ref("crm_sales_agent.mail_activity_type_sales_agent_followup")
        cls.escalation_type = cls.env.ref(
            "crm_sales_agent.mail_activity_type_sales_agent_escalation"
        )
        cls.customer = cls.env["res.partner"].create(
            {"name": "Carla Customer", "email": "carla@customer.example.com", "lang": "en_US"}
        )
        cls.Lead = cls.env["crm.lead"]

    @classmethod
    def _open_go_live(cls):
        cls.env["res.company"].sudo().search([]).write(
            {"sales_agent_go_live_date": date(2020, 1, 1)}
        )

    @classmethod
    def _set_config(cls, company=None, **values):
        """Write sales agent settings (``followup_enabled=False``...) on ``company`` (default:
        the current company)."""
        (company or cls.env.company).sudo().write(
            {"sales_agent_" + key: value for key, value in values.items()}
        )

    def _lead(self, age_days=0, stage_age_days=None, **vals):
        """An open lead created ``age_days`` ago (frozen clock), salesperson user_sales_salesman."""
        values = {
            "name": "Agent Lead",
            "type": "lead",
            "user_id": self.user_sales_salesman.id,
            "team_id": self.sales_team_1.id,
            "partner_id": self.customer.id,
        }
        values.update(vals)
        lead = self.Lead.create(values)
        self._age(lead, age_days, stage_age_days)
        return lead

    def _age(self, leads, age_days, stage_age_days=None):
        now = fields.Datetime.now()
        stage_age_days = age_days if stage_age_days is None else stage_age_days
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE crm_lead SET create_date = %s, date_last_stage_update = %s WHERE id = ANY(%s)",
            [now - timedelta(days=age_days), now - timedelta(days=stage_age_days), leads.ids],
        )
        leads.invalidate_recordset(["create_date", "date_last_stage_update"])

    def _agent_activities(self, leads, rule=None):
        domain = [
            ("res_model", "=", "crm.lead"),
            ("res_id", "in", leads.ids),
            ("sales_agent_rule", "!=", False),
        ]
        if rule:
            domain.append(("sales_agent_rule", "=", rule))
        return self.env["mail.activity"].search(domain)

    def _post_email(self, lead, author, subject="Our proposal", body="Please find our proposal."):
        """A non-internal email on the lead; outbound when ``author`` is a user."""
        return lead.with_user(author).message_post(
            body=body, subject=subject, message_type="email", subtype_xmlid="mail.mt_comment"
        )

    def _post_inbound(self, lead, body):
        return lead.message_post(
            body=body,
            author_id=self.customer.id,
            message_type="email",
            subtype_xmlid="mail.mt_comment",
        )


class SalesAgentLLMCommon(SalesAgentCommon):
    """Adds a real local LLM server; ``_provider()`` points a default provider at it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.llm_server = LocalLLMServer()
        cls.llm_server.start()
        cls.addClassCleanup(cls.llm_server.stop)

    def _provider(self):
        return self.env["llm.provider"].create(
            {
                "name": "Local",
                "provider_type": "openai_compatible",
                "base_url": "http://127.0.0.1:%d/v1" % self.llm_server.port,
                "model_name": "test",
                "is_default": True,
                "max_retries": 0,
                "timeout": 5,
            }
        )

    def _generate(self, draft):
        """ "Generate" as the user clicks it, then the AI job cron that writes the draft."""
        draft.action_generate()
        self.env["llm.job"]._cron_run_jobs()
        return draft

    @contextmanager
    def llm_answers(self, responder):
        previous = self.llm_server.responder
        self.llm_server.responder = responder
        self.llm_server.requests.clear()
        try:
            yield self.llm_server.requests
        finally:
            self.llm_server.responder = previous
