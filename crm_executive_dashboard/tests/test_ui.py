from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestDashboardUi(HttpCase):
    def test_dashboard_tour(self):
        # at least one lead created this year, whatever the demo data
        self.env["crm.lead"].create(
            {
                "name": "Tour lead",
                "type": "opportunity",
                "expected_revenue": 1234,
                "user_id": self.env.ref("base.user_admin").id,
            }
        )
        self.start_tour("/web", "crm_executive_dashboard_tour", login="admin")
