from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import SalesAgentCommon

NOW = "2024-06-12 10:00:00"


@tagged("crm_sales_agent")
class TestAccess(SalesAgentCommon):
    def _overdue_lead(self, user, name):
        lead = self._lead(age_days=1, user_id=user.id, name=name)
        lead.activity_schedule(
            "mail.mail_activity_data_call",
            user_id=user.id,
            date_deadline=fields.Date.today() - timedelta(days=5),
        )
        return lead

    @freeze_time(NOW)
    def test_escalations_visibility_and_rights(self):
        """Salespeople see escalations of their own leads, read-only; managers see all."""
        own = self._overdue_lead(self.user_sales_salesman, "Salesman's lead")
        other = self._overdue_lead(self.user_sales_leads, "Other salesman's lead")
        self.Lead._cron_escalate()
        Escalation = self.env["crm.sales.agent.escalation"]
        own_escalation = Escalation.search([("lead_id", "=", own.id)])
        other_escalation = Escalation.search([("lead_id", "=", other.id)])
        self.assertTrue(own_escalation and other_escalation)
        as_salesman = Escalation.with_user(self.user_sales_salesman).search([])
        self.assertIn(own_escalation, as_salesman)
        self.assertNotIn(other_escalation, as_salesman)
        with self.assertRaises(AccessError):
            other_escalation.with_user(self.user_sales_salesman).read(["rule"])
        with self.assertRaises(AccessError):
            own_escalation.with_user(self.user_sales_salesman).action_resolve()
        as_manager = Escalation.with_user(self.user_sales_manager).search([])
        self.assertIn(own_escalation, as_manager)
        self.assertIn(other_escalation, as_manager)
        # the team leader (first-level recipient) resolves
        own_escalation.with_user(self.user_sales_manager).action_resolve()
        self.assertEqual(own_escalation.state, "resolved")

    @freeze_time(NOW)
    def test_salesman_acts_on_own_leads_only(self):
        own = self._lead(age_days=8, name="Own")
        other = self._lead(age_days=8, name="Other", user_id=self.user_sales_manager.id)
        self.Lead._cron_escalate()
        own.with_user(self.user_sales_salesman).action_sales_agent_apply_next_action()
        self.assertTrue(self._agent_activities(own, "next_action"))
        with self.assertRaises(AccessError):
            other.with_user(self.user_sales_salesman).action_sales_agent_apply_next_action()
        with self.assertRaises(AccessError):
            self.env["crm.sales.agent.draft"].with_user(self.user_sales_salesman).create(
                {"lead_id": other.id, "kind": "email"}
            ).action_generate()
        own_draft = (
            self.env["crm.sales.agent.draft"]
            .with_user(self.user_sales_salesman)
            .create({"lead_id": own.id, "kind": "sms", "lang": "en_US"})
        )
        own_draft.action_generate()
        self.assertTrue(own_draft.body)
        with self.assertRaises(AccessError):
            own_draft.with_user(self.user_sales_leads).read(["body"])

    def test_stage_configuration_managers_only(self):
        values = {
            "stage_id": self.stage_team1_1.id,
            "summary": "Call",
            "activity_type_id": self.env.ref("mail.mail_activity_data_call").id,
        }
        with self.assertRaises(AccessError):
            self.env["crm.sales.agent.stage.activity"].with_user(self.user_sales_salesman).create(
                values
            )
        config = (
            self.env["crm.sales.agent.stage.activity"]
            .with_user(self.user_sales_manager)
            .create(values)
        )
        self.assertEqual(config.with_user(self.user_sales_salesman).summary, "Call")

    def test_multi_company(self):
        self._activate_multi_company()
        lead_c2 = self.env["crm.lead"].create(
            {
                "name": "C2 lead",
                "company_id": self.company_2.id,
                "team_id": self.team_company2.id,
                "user_id": self.user_sales_manager_mc.id,
            }
        )
        escalation = self.env["crm.sales.agent.escalation"].create(
            {
                "lead_id": lead_c2.id,
                "rule": "overdue_followup",
                "level": 1,
                "to_user_id": self.user_sales_manager_mc.id,
                "company_id": self.company_2.id,
            }
        )
        self.assertNotIn(
            escalation,
            self.env["crm.sales.agent.escalation"].with_user(self.user_sales_manager).search([]),
        )
        self.assertIn(
            escalation,
            self.env["crm.sales.agent.escalation"]
            .with_user(self.user_sales_manager_mc)
            .with_context(allowed_company_ids=[self.company_2.id, self.company_main.id])
            .search([]),
        )
