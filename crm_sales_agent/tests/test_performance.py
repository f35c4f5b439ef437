from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged

from .common import SalesAgentCommon

NOW = "2024-06-12 10:00:00"


@tagged("post_install", "-at_install", "crm_sales_agent")
class TestCronQueries(SalesAgentCommon):
    """The crons' query count does not grow with the number of leads they act on."""

    def _count_queries(self, func):
        self.env.flush_all()
        before = self.cr.sql_log_count
        func()
        self.env.flush_all()
        return self.cr.sql_log_count - before

    def _idle_leads(self, count, suffix):
        leads = self.Lead.create(
            [
                {
                    "name": "Idle %s %s" % (suffix, index),
                    "type": "lead",
                    "user_id": self.user_sales_salesman.id,
                    "team_id": self.sales_team_1.id,
                }
                for index in range(count)
            ]
        )
        self._age(leads, 10)
        return leads

    def _overdue_leads(self, count, suffix):
        leads = self._idle_leads(count, suffix)
        self.env["mail.activity"].create(
            [
                {
                    "res_model_id": self.env["ir.model"]._get_id("crm.lead"),
                    "res_id": lead.id,
                    "activity_type_id": self.env.ref("mail.mail_activity_data_call").id,
                    "user_id": self.user_sales_salesman.id,
                    "date_deadline": fields.Date.today() - timedelta(days=5),
                }
                for lead in leads
            ]
        )
        return leads

    @freeze_time(NOW)
    def test_followup_cron_query_count_flat(self):
        self.Lead._cron_create_followups()  # the existing leads are handled first
        few = self._idle_leads(5, "few")
        queries = self._count_queries(self.Lead._cron_create_followups)
        self.assertEqual(len(self._agent_activities(few, "followup")), 5)
        many = self._idle_leads(50, "many")
        with self.assertQueryCount(queries):
            self.Lead._cron_create_followups()
        self.assertEqual(len(self._agent_activities(many, "followup")), 50)

    @freeze_time(NOW)
    def test_escalation_cron_query_count_flat(self):
        self.Lead._cron_escalate()
        few = self._overdue_leads(5, "few")
        queries = self._count_queries(self.Lead._cron_escalate)
        Escalation = self.env["crm.sales.agent.escalation"]
        self.assertEqual(Escalation.search_count([("lead_id", "in", few.ids)]), 5)
        many = self._overdue_leads(50, "many")
        with self.assertQueryCount(queries):
            self.Lead._cron_escalate()
        self.assertEqual(Escalation.search_count([("lead_id", "in", many.ids)]), 50)
        self.assertEqual(set(many.mapped("sales_agent_risk_level")), {"high"})
