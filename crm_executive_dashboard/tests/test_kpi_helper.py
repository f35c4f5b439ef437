from odoo.tests import tagged

from ..models.crm_executive_dashboard import KPI_KEYS
from .common import PERIOD, DashboardCommon


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestKpiHelper(DashboardCommon):
    """``_get_kpis`` and ``_get_pipeline`` (one KPI or the pipeline without the whole
    dashboard, for the sales copilot) give the page's values and domains."""

    def test_same_as_the_dashboard(self):
        checked = 0
        for user in (self.user_salesman, self.user_manager):
            Dashboard = self.env["crm.executive.dashboard"].with_user(user)
            # March (a currency rate changes on the 15th), then February and March
            for date_from, date_to in (PERIOD, ("2019-02-01", PERIOD[1])):
                for team_ids, user_ids in (
                    (None, None),
                    ([self.team_a.id], None),
                    (None, [self.user_salesman.id]),
                ):
                    data = Dashboard.get_dashboard_data(date_from, date_to, team_ids, user_ids)
                    p = Dashboard._dashboard_params(date_from, date_to, team_ids, user_ids)
                    kpis = Dashboard._get_kpis(p)
                    for key in KPI_KEYS:
                        with self.subTest(
                            user=user.login, period=date_from, team=team_ids, key=key
                        ):
                            self.assertEqual(kpis[key]["value"], data["kpis"][key]["value"])
                            self.assertEqual(kpis[key]["domain"], data["kpis"][key]["domain"])
                            checked += 1
                    # one KPI alone: the same value
                    alone = Dashboard._get_kpis(p, ["won_revenue"])
                    self.assertEqual(list(alone), ["won_revenue"])
                    self.assertEqual(alone["won_revenue"], kpis["won_revenue"])
                    self.assertEqual(Dashboard._get_pipeline(p), data["pipeline"])
        self.assertEqual(checked, 2 * 2 * 3 * len(KPI_KEYS))
        # the fixture's figures are not all zero: converted amounts and rates are compared
        p = (
            self.env["crm.executive.dashboard"]
            .with_user(self.user_manager)
            ._dashboard_params(*PERIOD, None, None)
        )
        kpis = self.env["crm.executive.dashboard"].with_user(self.user_manager)._get_kpis(p)
        self.assertTrue(
            all(
                kpis[key]["value"]
                for key in ("won_revenue", "win_rate", "pipeline_value", "avg_sales_cycle_days")
            )
        )
