from odoo import fields
from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestDashboardUi(HttpCase):
    def test_dashboard_tour(self):
        """Every chart has something to click this year, whatever the demo data: an open
        opportunity due this month (pipeline, forecast), a won deal of a team (trends, team
        chart), an AI-scored lead (AI chart) and a done activity of the admin's lead."""
        admin = self.env.ref("base.user_admin")
        team = self.env["crm.team"].create({"name": "Tour Team"})
        Lead = self.env["crm.lead"].with_context(tracking_disable=True)
        today = fields.Date.context_today(Lead)
        open_lead, won_lead = Lead.create(
            [
                {
                    "name": "Tour lead",
                    "type": "opportunity",
                    "expected_revenue": 1234,
                    "probability": 80,
                    "date_deadline": today,
                    "team_id": team.id,
                    "user_id": admin.id,
                },
                {
                    "name": "Tour won lead",
                    "type": "opportunity",
                    "expected_revenue": 5000,
                    "team_id": team.id,
                    "user_id": admin.id,
                },
            ]
        )
        won_lead.action_set_won()
        open_lead.write({"ai_last_enrichment_date": fields.Datetime.now()})
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE crm_lead SET ai_probability_score = 85 WHERE id = %s", (open_lead.id,)
        )
        open_lead.activity_schedule("mail.mail_activity_data_todo", user_id=admin.id).action_done()
        self.start_tour("/web", "crm_executive_dashboard_tour", login="admin")
