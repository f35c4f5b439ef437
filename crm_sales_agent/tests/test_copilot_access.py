"""ask, suggested_questions and confirm_proposal over /web/dataset/call_kw, per role."""

import json

from odoo.tests import HttpCase, tagged

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import call_kw
from .test_copilot_rules import CopilotCommon


@tagged("post_install", "-at_install", "crm_sales_agent")
class TestCopilotAccess(CopilotCommon, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.company_main
        cls.role_users = {
            "portal": mail_new_test_user(
                cls.env, login="copilot_portal", groups="base.group_portal", company_id=company.id
            ),
            "employee": mail_new_test_user(
                cls.env, login="copilot_internal", groups="base.group_user", company_id=company.id
            ),
            "salesperson": cls.user_sales_salesman,
            "team_leader": cls.user_sales_leads,  # leads the Europe team
            "manager": cls.user_sales_manager,
        }

    def _rpc(self, method, args):
        return call_kw(self, "crm.copilot", method, args).json()

    def _error(self, answer):
        return answer.get("error", {}).get("data", {}).get("name")

    def test_roles(self):
        allowed = {"salesperson", "team_leader", "manager"}
        for role, user in self.role_users.items():
            with self.subTest(role=role):
                self.authenticate(user.login, user.login)
                asked = self._rpc("ask", ["Move Solar panels for Acme to Proposition"])
                suggested = self._rpc("suggested_questions", [])
                if role not in allowed:
                    for answer in (asked, suggested, self._rpc("confirm_proposal", [1, "x"])):
                        self.assertEqual(self._error(answer), "odoo.exceptions.AccessError")
                    continue
                self.assertTrue(suggested["result"])
                result = asked["result"]
                self.assertEqual(result["method"], "rules")
                lead = self.lead_own.with_user(user)
                self.assertEqual(len(result["proposals"]), 1)
                self.assertEqual(self.lead_own.stage_id, self.stage_team1_1, "not yet")
                done = self._rpc(
                    "confirm_proposal", [result["session_id"], result["proposals"][0]["id"]]
                )["result"]
                self.assertTrue(done["done"])
                self.assertEqual(lead.stage_id, self.stage_team1_2)
                self.lead_own.stage_id = self.stage_team1_1

    def test_salesperson_on_others_documents(self):
        self.authenticate("user_sales_salesman", "user_sales_salesman")
        refused = self._rpc("suggested_questions", [self.lead_other.id])
        self.assertEqual(self._error(refused), "odoo.exceptions.UserError")
        summary = self._rpc("ask", ["summarise Secret merger with Globex"])["result"]
        self.assertFalse(summary["records"])
        self.assertNotIn("900000", json.dumps(summary))
        # a manager's conversation and proposal are not his
        manager = self.env["crm.copilot"].with_user(self.user_sales_manager)
        proposal = manager.ask("Move Secret merger with Globex to Proposition")
        stolen = self._rpc(
            "confirm_proposal", [proposal["session_id"], proposal["proposals"][0]["id"]]
        )
        self.assertEqual(self._error(stolen), "odoo.exceptions.UserError")
        self.assertNotEqual(self.lead_other.stage_id, self.stage_team1_2)

    def test_bad_input_is_a_plain_error(self):
        self.authenticate("user_sales_salesman", "user_sales_salesman")
        for args in ([""], [["not", "text"]], ["pipeline", "1"], ["pipeline", None, "x"]):
            with self.subTest(args=args):
                answer = self._rpc("ask", args)
                self.assertEqual(self._error(answer), "odoo.exceptions.UserError")
