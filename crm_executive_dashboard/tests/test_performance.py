from odoo.tests import TransactionCase, new_test_user, tagged

# queries of get_dashboard_data once the ORM caches are warm: won stages, planner settings,
# companies in another currency (and their rates when there are some), the main query (KPIs,
# pipeline, trends, teams, salespeople), forecast, planner settings back; the AI figures (from
# the narrow AI table) and the activities, each between their own planner settings and back;
# stages of the pipeline, top AI leads (their ids, then their fields); the same whatever the
# number of leads
DASHBOARD_QUERIES = 15  # 14 for the figures, 1 for the win-probability model line


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestDashboardPerformance(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env, "dash_perf_manager", groups="sales_team.group_sale_manager", tz="UTC"
        )
        cls.team = cls.env["crm.team"].create({"name": "Perf Team"})
        cls.users = [
            new_test_user(cls.env, "dash_perf_%s" % i, groups="sales_team.group_sale_salesman")
            for i in range(5)
        ]
        cls.stages = cls.env["crm.stage"].search([], limit=4)

    def _create_leads(self, count, offset=0):
        self.env["crm.lead"].with_context(tracking_disable=True).create(
            [
                {
                    "name": "perf %s" % i,
                    "type": "opportunity",
                    "team_id": self.team.id,
                    "user_id": self.users[i % 5].id,
                    "stage_id": self.stages[i % len(self.stages)].id,
                    "expected_revenue": 100 * i,
                    "probability": i % 100,
                }
                for i in range(offset, offset + count)
            ]
        )
        self.env.flush_all()
        self.env.cr.execute(
            """UPDATE crm_lead
                  SET create_date = '2019-01-01'::timestamp + (id %% 360) * interval '1 day',
                      date_closed = CASE WHEN id %% 3 = 0 THEN '2019-06-01'::timestamp END,
                      ai_last_enrichment_date = '2019-06-01', ai_probability_score = id %% 100
                WHERE team_id = %s""",
            (self.team.id,),
        )
        self.env.invalidate_all()

    def _run(self):
        dashboard = self.env["crm.executive.dashboard"].with_user(self.manager)
        return dashboard.get_dashboard_data("2019-01-01", "2019-12-31", team_ids=[self.team.id])

    def _count_queries(self):
        self.env.invalidate_all()
        self._run()  # warm the ORM caches of stages, teams and users like a second page load
        before = self.env.cr.sql_log_count
        self._run()
        return self.env.cr.sql_log_count - before

    def test_query_count_constant(self):
        self._create_leads(10)
        small_count = self._count_queries()
        with self.assertQueryCount(DASHBOARD_QUERIES):
            small = self._run()
        self.assertEqual(small["kpis"]["total_leads"]["value"], 10)
        self._create_leads(490, offset=10)
        large_count = self._count_queries()
        self.assertEqual(small_count, large_count)
        self.assertLessEqual(large_count, DASHBOARD_QUERIES)
        with self.assertQueryCount(DASHBOARD_QUERIES):
            large = self._run()
        self.assertEqual(large["kpis"]["total_leads"]["value"], 500)
        self.assertEqual(len(large["agent_metrics"]), 5)
        self.assertEqual(len(large["ai_insights"]["top_ai_scored_leads"]), 10)
