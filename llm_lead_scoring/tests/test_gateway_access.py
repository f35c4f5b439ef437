"""Who may call what on the AI gateway, over HTTP (JSON-RPC), as the web client would.

Every public method of the gateway models defined by the suite is found by introspection and
must be classified in ``EXPECTED``: a new public method without an expectation fails.
"""

import inspect
import json

from odoo.tests import HttpCase, tagged

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import LlmLeadScoringCommon, call_kw, openai_body

SECRET = "sk-test-SECRET-123"
ROLES = ("portal", "employee", "salesperson", "team_leader", "manager")
OUR_MODULES = ("odoo.addons.llm_lead_scoring", "odoo.addons.crm_sales_agent")
GATEWAY_MODELS = ("llm.service", "llm.provider", "llm.call.log", "llm.scoring.model")
ORM_CALLS = {
    "llm.provider": (
        "read",
        "search_read",
        "web_read",
        "write",
        "create",
        "unlink",
        "copy",
        "message_post",
    ),
    "llm.call.log": ("read", "search_read", "web_read", "write", "create", "unlink"),
}
REFUSALS = ("odoo.exceptions.AccessError", "odoo.exceptions.UserError")
LOG_FIELDS = ["user_id", "purpose", "outcome", "error", "content_sent"]
PROVIDER_FIELDS = ["name", "model_name", "base_url"]

# R = refused (error in the JSON-RPC answer), A = allowed; one letter per role of ROLES:
# portal, internal user without CRM rights, salesperson (own documents), team leader
# (all documents), CRM manager. ``init`` is refused by Odoo itself (private method name).
EXPECTED = {
    ("llm.service", "health_check"): "RRRRA",
    ("llm.provider", "action_test_connection"): "RRRRA",
    ("llm.provider", "action_reset_usage"): "RRRRA",
    ("llm.provider", "action_measure"): "RRRRA",
    ("llm.provider", "action_view_calls"): "RRRRA",
    ("llm.provider", "init"): "RRRRR",
    ("llm.provider", "read"): "RRRRA",
    ("llm.provider", "search_read"): "RRRRA",
    ("llm.provider", "web_read"): "RRRRA",
    ("llm.provider", "write"): "RRRRA",
    ("llm.provider", "create"): "RRRRA",
    ("llm.provider", "unlink"): "RRRRA",
    ("llm.provider", "copy"): "RRRRA",
    ("llm.provider", "message_post"): "RRRRA",
    ("llm.call.log", "init"): "RRRRR",
    ("llm.call.log", "action_open_document"): "RRAAA",
    ("llm.call.log", "read"): "RRAAA",
    ("llm.call.log", "search_read"): "RRAAA",
    ("llm.call.log", "web_read"): "RRAAA",
    ("llm.call.log", "write"): "RRRRR",
    ("llm.call.log", "create"): "RRRRR",
    ("llm.call.log", "unlink"): "RRRRR",
    ("llm.scoring.model", "action_train_now"): "RRRRA",
}


def public_methods(env):
    """{(model, method)} of the public methods our modules define on the gateway models."""
    found = set()
    for model in GATEWAY_MODELS:
        for klass in type(env[model]).__mro__:
            if not klass.__module__.startswith(OUR_MODULES):
                continue
            for name, value in vars(klass).items():
                is_method = inspect.isfunction(value) or isinstance(
                    value, (staticmethod, classmethod)
                )
                if is_method and not name.startswith("_"):
                    found.add((model, name))
    return found


@tagged("post_install", "-at_install", "llm_lead_scoring")
class TestGatewayAccess(LlmLeadScoringCommon, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.company_main
        cls.user_ga_portal = mail_new_test_user(
            cls.env, login="ga_portal_user", groups="base.group_portal", company_id=company.id
        )
        cls.user_ga_employee = mail_new_test_user(
            cls.env, login="ga_employee_user", groups="base.group_user", company_id=company.id
        )
        cls.user_colleague = mail_new_test_user(
            cls.env,
            login="ga_colleague_salesman",
            groups="sales_team.group_sale_salesman",
            company_id=company.id,
        )
        # a team leader: "all documents" and leader of a team
        cls.env["crm.team"].create({"name": "GA Team", "user_id": cls.user_sales_leads.id})
        cls.role_users = {
            "portal": cls.user_ga_portal,
            "employee": cls.user_ga_employee,
            "salesperson": cls.user_sales_salesman,
            "team_leader": cls.user_sales_leads,
            "manager": cls.user_sales_manager,
        }
        cls.provider = cls._create_provider(api_key=SECRET)
        cls.spare_provider = cls._create_provider(name="Spare", is_default=False, api_key=SECRET)
        # one audit row per user; the provider's answer echoed the key (error_detail is
        # manager-only, so it must never reach anyone else)
        cls.log_rows = {
            role: cls.env["llm.call.log"]
            .sudo()
            .create(
                {
                    "user_id": user.id,
                    "company_id": company.id,
                    "purpose": "scoring",
                    "outcome": "error",
                    "error_kind": "auth",
                    "error": "The provider rejected the API key (HTTP 401).",
                    "error_detail": "invalid key: Bearer %s" % SECRET,
                    "provider_id": cls.provider.id,
                    "content_sent": "Lead of %s" % user.name,
                }
            )
            for role, user in cls.role_users.items()
        }

    # ------------------------------------------------------------
    # HELPERS
    # ------------------------------------------------------------

    def _rpc(self, model, method, args, kwargs=None):
        """call_kw over HTTP; returns the decoded answer (never a key in it)."""
        response = call_kw(self, model, method, args, kwargs)
        for secret in (SECRET, "Bearer"):
            self.assertNotIn(secret, response.text, "%s.%s leaks %r" % (model, method, secret))
        return response.json()

    def _refused(self, answer):
        return "error" in answer and answer["error"]["data"]["name"] in REFUSALS

    def _call_args(self, key, role):
        manager = role == "manager"
        prov, spare, log = self.provider.id, self.spare_provider.id, self.log_rows[role].id
        pfields = PROVIDER_FIELDS if manager else None  # others try every field
        lfields = LOG_FIELDS if manager else None  # managers see error_detail (by design)
        return {
            ("llm.service", "health_check"): ([], {}),
            ("llm.provider", "action_test_connection"): ([[prov]], {}),
            ("llm.provider", "action_reset_usage"): ([[prov]], {}),
            ("llm.provider", "action_measure"): ([[prov]], {}),
            ("llm.provider", "action_view_calls"): ([[prov]], {}),
            ("llm.provider", "init"): ([], {}),
            ("llm.provider", "read"): ([[prov]], {"fields": pfields}),
            ("llm.provider", "search_read"): ([[]], {"fields": pfields}),
            ("llm.provider", "web_read"): (
                [[prov]],
                {"specification": {f: {} for f in pfields or ["name", "api_key"]}},
            ),
            ("llm.provider", "write"): (
                [[prov], {"sequence": 11}]
                if manager
                else [[prov], {"base_url": "http://127.0.0.1:9/v1", "api_key": "stolen"}],
                {},
            ),
            ("llm.provider", "create"): (
                [{"name": "Rogue", "base_url": "http://127.0.0.1:9/v1"}],
                {},
            ),
            ("llm.provider", "unlink"): ([[spare]], {}),
            ("llm.provider", "copy"): ([[prov]], {}),
            ("llm.provider", "message_post"): ([[prov]], {"body": "Note"}),
            ("llm.call.log", "init"): ([], {}),
            ("llm.call.log", "action_open_document"): ([[log]], {}),
            ("llm.call.log", "read"): ([[log]], {"fields": lfields}),
            ("llm.call.log", "search_read"): ([[]], {"fields": lfields}),
            ("llm.call.log", "web_read"): (
                [[log]],
                {"specification": {"purpose": {}, "outcome": {}, "error": {}}},
            ),
            ("llm.call.log", "write"): ([[log], {"error": "tampered"}], {}),
            ("llm.call.log", "create"): (
                [{"purpose": "scoring", "outcome": "ok", "company_id": self.company_main.id}],
                {},
            ),
            ("llm.call.log", "unlink"): ([[log]], {}),
            ("llm.scoring.model", "action_train_now"): ([], {}),
        }.get(key)

    def _run_role(self, role):
        user = self.role_users[role]
        self.authenticate(user.login, user.login)
        keys = public_methods(self.env) | {
            (model, method) for model, methods in ORM_CALLS.items() for method in methods
        }
        Log = self.env["llm.call.log"].sudo()
        requests_before, logs_before = len(self.server.requests), Log.search_count([])
        failures = []
        for key in sorted(keys):
            name = "%s.%s" % key
            if key not in EXPECTED:
                failures.append("unclassified public method %s" % name)
                continue
            args, kwargs = self._call_args(key, role) or (None, None)
            if args is None:
                failures.append("no call arguments for public method %s" % name)
                continue
            answer = self._rpc(*key, args, kwargs)
            expect_refusal = EXPECTED[key][ROLES.index(role)] == "R"
            if expect_refusal and not self._refused(answer):
                failures.append("%s: %s NOT refused: %s" % (role, name, json.dumps(answer)[:300]))
            elif not expect_refusal and "error" in answer:
                failures.append(
                    "%s: %s refused: %s" % (role, name, answer["error"]["data"]["message"])
                )
        self.env.invalidate_all()
        if role == "manager":  # health check, test connection and measure reached it
            self.assertEqual(len(self.server.requests), requests_before + 3)
        else:
            self.assertEqual(
                len(self.server.requests), requests_before, "%s reached the provider" % role
            )
            self.assertEqual(Log.search_count([]), logs_before, "%s wrote AI call logs" % role)
        self.assertFalse(failures, "\n".join(failures))

    def _check_own_logs_only(self, role):
        """A salesperson or team leader reads his own audit rows, never error_detail."""
        user = self.role_users[role]
        self.authenticate(user.login, user.login)
        rows = self._rpc("llm.call.log", "search_read", [[]], {"fields": None})["result"]
        self.assertEqual({row["user_id"][0] for row in rows}, {user.id})
        self.assertIn(self.log_rows[role].id, [row["id"] for row in rows])
        self.assertNotIn("error_detail", rows[0])
        for kwargs in ({"fields": ["error_detail"]}, {"fields": ["purpose", "error_detail"]}):
            answer = self._rpc("llm.call.log", "search_read", [[]], kwargs)
            self.assertTrue(self._refused(answer), "%s read error_detail" % role)
        other = self.log_rows["manager"].id
        self.assertTrue(self._refused(self._rpc("llm.call.log", "read", [[other]], {})))

    # ------------------------------------------------------------
    # TESTS
    # ------------------------------------------------------------

    def test_every_public_method_is_classified(self):
        unclassified = sorted(public_methods(self.env) - set(EXPECTED))
        self.assertFalse(
            unclassified,
            "\n".join("unclassified public method %s.%s" % key for key in unclassified),
        )

    def test_portal(self):
        self._run_role("portal")

    def test_employee_without_crm_rights(self):
        self._run_role("employee")

    def test_salesperson(self):
        self._run_role("salesperson")
        self._check_own_logs_only("salesperson")

    def test_team_leader(self):
        self._run_role("team_leader")
        self._check_own_logs_only("team_leader")

    def test_manager(self):
        self._run_role("manager")

    def test_manager_test_connection(self):
        self.server.default = (200, {}, openai_body("OK"), 0)  # what a working model says
        self.authenticate(self.user_sales_manager.login, self.user_sales_manager.login)
        Log = self.env["llm.call.log"].sudo()
        logs_before = Log.search([("purpose", "=", "test")])
        answer = self._rpc("llm.provider", "action_test_connection", [[self.provider.id]])
        self.assertNotIn("error", answer)
        self.assertEqual(answer["result"]["params"]["type"], "success")
        self.assertEqual(len(self.server.requests), 1)
        self.assertEqual(
            self.server.requests[0]["headers"].get("Authorization"), "Bearer %s" % SECRET
        )
        self.env.invalidate_all()
        new = Log.search([("purpose", "=", "test")]) - logs_before
        self.assertEqual(len(new), 1)
        self.assertEqual(new.user_id, self.user_sales_manager)
        self.assertEqual(new.provider_id, self.provider)
        # a provider that echoes the key in its error answer: not shown to the manager either
        self.server.script.append(
            (401, {}, {"error": {"message": "bad key Bearer %s" % SECRET}}, 0)
        )
        answer = self._rpc("llm.provider", "action_test_connection", [[self.provider.id]])
        self.assertEqual(answer["result"]["params"]["type"], "danger")

    def test_lead_actions_on_a_colleague_lead(self):
        self._set_config(enable_customer_research=True)
        own = self._full_lead(name="Own lead")
        colleague = self._full_lead(name="Colleague lead", user_id=self.user_colleague.id)
        self.authenticate(self.user_sales_salesman.login, self.user_sales_salesman.login)
        for method in ("action_ai_score_now", "action_ai_research", "action_ai_queue"):
            with self.subTest(method=method):
                answer = self._rpc("crm.lead", method, [[colleague.id]])
                self.assertTrue(self._refused(answer), "%s on a colleague's lead" % method)
        self.assertFalse(self.server.requests, "a colleague's lead reached the provider")
        answer = self._rpc("crm.lead", "action_ai_score_now", [[own.id]])
        self.assertNotIn("error", answer)
        self.assertFalse(self.server.requests, "Score with AI only queues the lead")
        self.env.invalidate_all()
        self.assertEqual(own.ai_requested_by, self.user_sales_salesman)
        answer = self._rpc("crm.lead", "action_ai_research", [[own.id]])
        self.assertNotIn("error", answer)
        self.assertEqual(len(self.server.requests), 1)

    def test_score_history_and_drafts_follow_the_lead(self):
        own = self._full_lead(name="Own lead")
        colleague = self._full_lead(name="Colleague lead", user_id=self.user_colleague.id)
        History = self.env["crm.lead.score.history"].sudo()
        own_row, colleague_row = History.create(
            [{"lead_id": lead.id, "score": 50.0, "trend": "new"} for lead in (own, colleague)]
        )
        self.authenticate(self.user_sales_salesman.login, self.user_sales_salesman.login)
        answer = self._rpc("crm.lead.score.history", "search_read", [[]], {"fields": ["lead_id"]})
        lead_ids = {row["lead_id"][0] for row in answer["result"]}
        self.assertIn(own.id, lead_ids)
        self.assertNotIn(colleague.id, lead_ids)
        readable = self.env["crm.lead"].with_user(self.user_sales_salesman).search([])
        self.assertLessEqual(lead_ids, set(readable.ids))
        answer = self._rpc("crm.lead.score.history", "read", [[colleague_row.id]], {})
        self.assertTrue(self._refused(answer))
        self.assertNotIn("error", self._rpc("crm.lead.score.history", "read", [[own_row.id]], {}))
        if "crm.sales.agent.draft" in self.env:
            answer = self._rpc("crm.sales.agent.draft", "create", [{"lead_id": colleague.id}])
            self.assertTrue(self._refused(answer), "draft on a colleague's lead")
            answer = self._rpc("crm.sales.agent.draft", "create", [{"lead_id": own.id}])
            self.assertNotIn("error", answer)
        self.assertFalse(self.server.requests)
