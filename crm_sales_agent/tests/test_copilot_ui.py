from datetime import timedelta

from odoo import fields
from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "crm_sales_agent")
class TestCopilotUi(HttpCase):
    def test_copilot_tour(self):
        """The panel from the systray and from the lead form, without an AI provider (the
        parser): a suggested question, a figure's list, a record link, a confirmed proposal."""
        self.env["llm.provider"].sudo().search([]).write({"active": False})
        admin = self.env.ref("base.user_admin")
        lead = self.env["crm.lead"].create(
            {
                "name": "Copilot Tour Lead",
                "type": "opportunity",
                "user_id": admin.id,
                "expected_revenue": 12000,
            }
        )
        before = lead.activity_ids
        self.start_tour("/web", "crm_sales_agent_copilot_tour", login="admin")
        activity = lead.activity_ids - before
        self.assertEqual(len(activity), 1, "the confirmed proposal wrote one activity")
        self.assertIn("call", activity.summary.lower())
        self.assertEqual(activity.user_id, admin)
        self.assertEqual(
            activity.date_deadline, fields.Date.context_today(lead) + timedelta(days=1)
        )
