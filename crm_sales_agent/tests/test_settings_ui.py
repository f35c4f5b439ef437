from datetime import timedelta

from odoo import fields
from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "crm_sales_agent")
class TestSettingsUi(HttpCase):
    def test_preview_and_save_in_the_browser(self):
        """A manager previews the next run from CRM's settings (counts of a quiet lead's
        follow-up, nothing created), then switches follow-ups off and saves."""
        company = self.env.company
        company.sales_agent_go_live_date = fields.Date.today() - timedelta(days=60)
        rep = self.env["res.users"].create(
            {
                "name": "Tour Rep",
                "login": "tour_rep",
                "groups_id": [(6, 0, [self.env.ref("sales_team.group_sale_salesman").id])],
            }
        )
        lead = self.env["crm.lead"].create(
            {"name": "Quiet since the go-live", "type": "opportunity", "user_id": rep.id}
        )
        quiet = fields.Datetime.now() - timedelta(days=30)
        self.env.cr.execute(
            "UPDATE crm_lead SET create_date = %s, date_last_stage_update = %s WHERE id = %s",
            (quiet, quiet, lead.id),
        )
        lead.invalidate_recordset()
        before = self.env["mail.activity"].search_count([])
        self.start_tour(
            "/web#action=crm.crm_config_settings_action",
            "crm_sales_agent_settings_tour",
            login="admin",
        )
        self.assertEqual(
            self.env["mail.activity"].search_count([]), before, "a preview writes nothing"
        )
        self.assertFalse(company.sales_agent_followup_enabled)
