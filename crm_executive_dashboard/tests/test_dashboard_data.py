from odoo.exceptions import UserError
from odoo.tests import tagged

from ..models.crm_executive_dashboard import AI_QUERY_PARTS
from ..models.crm_lead import AI_TABLE
from .common import PERIOD, PREVIOUS, DashboardCommon


@tagged("crm_executive_dashboard")
class TestDashboardData(DashboardCommon):
    def assertKpis(self, data, expected):
        for key, value in expected.items():
            self.assertAlmostEqual(data["kpis"][key]["value"], value, places=2, msg=key)

    def assertDomainsMatch(self, data, user, company_ids):
        """Every count has a domain that finds exactly the counted leads in Odoo's lists."""
        leads = (
            self.env["crm.lead"]
            .with_user(user)
            .with_context(allowed_company_ids=company_ids, active_test=False)
        )
        for key in (
            "total_leads",
            "total_opportunities",
            "won_opportunities",
            "lost_opportunities",
        ):
            self.assertEqual(
                leads.search_count(data["kpis"][key]["domain"]), data["kpis"][key]["value"], key
            )
        for stage in data["pipeline"]:
            self.assertEqual(leads.search_count(stage["domain"]), stage["count"], stage["name"])
        for month in data["forecast"]:
            self.assertEqual(leads.search_count(month["domain"]), month["count"], month["label"])

    def test_manager_all_companies(self):
        companies = [self.company_main.id, self.company_2.id]
        data = self.dashboard(self.user_manager, companies)
        expected = self.expected_kpis(self.user_manager, companies)
        self.assertKpis(data, expected)
        # the same figures, written out: 7 leads created in March (the archived one is not
        # counted), 6 opportunities, 2 won (2000 USD + 3000 AUD at 2.0 on 03-16 = 1500 USD),
        # 1 lost, 3 open opportunities (1000 + 700 + 1000 AUD at 1.5 on 03-12)
        self.assertKpis(
            data,
            {
                "total_leads": 7,
                "total_opportunities": 6,
                "won_opportunities": 2,
                "lost_opportunities": 1,
                "won_revenue": 3500.0,
                "avg_deal_size": 1750.0,
                "win_rate": 66.7,
                "conversion_rate": 85.7,
                "pipeline_value": 1000 + 700 + 1000 / 1.5,
                "weighted_pipeline": 300 + 420 + 1000 / 1.5 * 0.5,
            },
        )
        self.assertEqual(data["currency"]["name"], "USD")
        # previous period: the won lead of February
        self.assertEqual(data["kpis"]["won_opportunities"]["previous"], 1)
        self.assertEqual(data["kpis"]["won_revenue"]["previous"], 800.0)
        self.assertEqual(data["kpis"]["won_opportunities"]["change"], 100.0)
        self.assertEqual(data["period"]["previous_from"], PREVIOUS[0])
        self.assertEqual(data["period"]["previous_to"], PREVIOUS[1])
        self.assertEqual(data["period"]["granularity"], "day")
        self.assertDomainsMatch(data, self.user_manager, companies)

    def test_sections_add_up(self):
        companies = [self.company_main.id, self.company_2.id]
        data = self.dashboard(self.user_manager, companies)
        kpis = data["kpis"]
        pipeline = [s for s in data["pipeline"] if s["count"]]
        self.assertEqual(sum(s["count"] for s in data["pipeline"]), 3)
        self.assertAlmostEqual(
            sum(s["expected_revenue"] for s in pipeline), kpis["pipeline_value"]["value"], 2
        )
        self.assertEqual([s["stage_id"] for s in pipeline], [self.stage_new.id])
        buckets = data["trends"]["buckets"]
        self.assertEqual(len(buckets), 31)
        self.assertEqual(sum(b["leads"] for b in buckets), kpis["total_leads"]["value"])
        self.assertEqual(sum(b["won"] for b in buckets), 2)
        self.assertAlmostEqual(sum(b["revenue"] for b in buckets), 3500.0, 2)
        self.assertEqual(buckets[9]["won"], 1)  # March 10th
        teams = {row["name"]: row for row in data["team_performance"]}
        self.assertEqual(set(teams), {"Dash Team A", "Dash Team C2", "No team"})
        self.assertEqual(
            (
                teams["Dash Team A"]["leads"],
                teams["Dash Team A"]["won"],
                teams["Dash Team A"]["lost"],
                teams["Dash Team A"]["revenue"],
            ),
            (4, 1, 1, 2000.0),
        )
        self.assertEqual(teams["Dash Team A"]["win_rate"], 50.0)
        self.assertEqual((teams["No team"]["leads"], teams["No team"]["opportunities"]), (1, 0))
        self.assertEqual(teams["Dash Team C2"]["revenue"], 1500.0)
        agents = {row["name"]: row for row in data["agent_metrics"]}
        self.assertEqual(agents["Dash Salesman"]["won"], 1)
        self.assertEqual(agents["Unassigned"]["leads"], 1)
        leads = (
            self.env["crm.lead"]
            .with_user(self.user_manager)
            .with_context(allowed_company_ids=companies, active_test=False)
        )
        self.assertEqual(leads.search_count(teams["Dash Team A"]["domain"]), 4)

    def test_salesman_sees_own_and_unassigned(self):
        companies = [self.company_main.id]
        data = self.dashboard(self.user_salesman, companies)
        self.assertKpis(data, self.expected_kpis(self.user_salesman, companies))
        # lead_open, lead_won, lead_unassigned: not the manager's lost lead nor user_other's
        self.assertKpis(
            data,
            {
                "total_leads": 3,
                "total_opportunities": 2,
                "won_opportunities": 1,
                "lost_opportunities": 0,
                "won_revenue": 2000.0,
                "pipeline_value": 1000.0,
                "weighted_pipeline": 300.0,
            },
        )
        names = {row["name"] for row in data["agent_metrics"]}
        self.assertEqual(names, {"Dash Salesman", "Unassigned"})
        self.assertDomainsMatch(data, self.user_salesman, companies)

    def test_multi_company(self):
        main_only = self.dashboard(self.user_manager, [self.company_main.id])
        self.assertKpis(main_only, self.expected_kpis(self.user_manager, [self.company_main.id]))
        self.assertKpis(
            main_only,
            {
                "total_leads": 5,
                "won_opportunities": 1,
                "won_revenue": 2000.0,
                "pipeline_value": 1700.0,
            },
        )
        c2_only = self.dashboard(self.user_manager, [self.company_2.id])
        self.assertEqual(c2_only["currency"]["name"], "AUD")
        # in company 2's own currency: no conversion
        self.assertKpis(
            c2_only,
            {
                "total_leads": 2,
                "won_opportunities": 1,
                "won_revenue": 3000.0,
                "pipeline_value": 1000.0,
            },
        )
        # company 2 first: amounts of the main company converted to AUD
        both_aud = self.dashboard(self.user_manager, [self.company_2.id, self.company_main.id])
        self.assertEqual(both_aud["currency"]["name"], "AUD")
        self.assertKpis(
            both_aud,
            self.expected_kpis(self.user_manager, [self.company_2.id, self.company_main.id]),
        )
        self.assertAlmostEqual(both_aud["kpis"]["won_revenue"]["value"], 3000.0 + 2000.0 / 0.5, 2)

    def test_team_filter(self):
        companies = [self.company_main.id, self.company_2.id]
        data = self.dashboard(self.user_manager, companies, team_ids=[self.team_c2.id])
        self.assertKpis(
            data, self.expected_kpis(self.user_manager, companies, team_ids=[self.team_c2.id])
        )
        self.assertEqual(data["kpis"]["total_leads"]["value"], 2)
        self.assertEqual([row["name"] for row in data["team_performance"]], ["Dash Team C2"])
        data = self.dashboard(self.user_manager, companies, user_ids=[self.user_salesman.id])
        self.assertEqual(data["kpis"]["total_leads"]["value"], 2)

    def test_forecast_and_activities(self):
        today = self.env["crm.executive.dashboard"]._dashboard_params(
            *("2019-03-01", "2019-03-31"), None, None
        )["today"]
        Lead = self.env["crm.lead"].with_context(tracking_disable=True)
        soon = Lead.create(
            {
                "name": "soon",
                "type": "opportunity",
                "team_id": self.team_a.id,
                "user_id": self.user_salesman.id,
                "expected_revenue": 1000,
                "probability": 80,
                "date_deadline": today,
                "stage_id": self.stage_new.id,
            }
        )
        Lead.create(
            {
                "name": "later",
                "type": "opportunity",
                "team_id": self.team_a.id,
                "user_id": self.user_salesman.id,
                "expected_revenue": 4000,
                "probability": 25,
                "date_deadline": today.replace(day=1).replace(year=today.year + 1),
                "stage_id": self.stage_new.id,
            }
        )
        self.env["crm.lead"].browse(soon.id).write({"probability": 80})
        soon.activity_schedule(
            "mail.mail_activity_data_todo",
            date_deadline=today.replace(year=today.year - 1),
            user_id=self.user_salesman.id,
        )
        data = self.dashboard(self.user_manager, [self.company_main.id], team_ids=[self.team_a.id])
        this_month = data["forecast"][0]
        self.assertEqual(len(data["forecast"]), 6)
        self.assertEqual(
            (
                this_month["count"],
                this_month["weighted"],
                this_month["best_case"],
                this_month["worst_case"],
            ),
            (1, 800.0, 1000.0, 1000.0),
        )
        # a year ahead: outside the 6 forecast months
        self.assertEqual(sum(month["count"] for month in data["forecast"]), 1)
        team = next(row for row in data["team_performance"] if row["name"] == "Dash Team A")
        self.assertEqual(team["activities_overdue"], 1)

    def ai_domain_counts(self, user, company_ids, ai):
        """{figure: leads its domain finds} of the AI card's clickable counts, as the user
        with the page's companies (archived lost leads included, as the page's lists)."""
        leads = (
            self.env["crm.lead"]
            .with_user(user)
            .with_context(allowed_company_ids=company_ids, active_test=False)
        )
        return {
            key: leads.search_count(ai["domains"][key])
            for key in ("closed_high", "closed_low", "completed", "pending", "failed")
        }

    def test_ai_insights(self):
        self.env.cr.execute(
            """UPDATE crm_lead SET ai_last_enrichment_date = '2019-03-20',
                      ai_probability_score = s.score,
                      ai_completeness_score = 50, ai_clarity_score = 60, ai_engagement_score = 70,
                      ai_enrichment_status = s.status
                 FROM (VALUES (%s, 85.0, 'completed'), (%s, 75.0, 'completed'),
                              (%s, 20.0, 'failed'), (%s, 50.0, 'pending')) AS s(id, score, status)
                WHERE crm_lead.id = s.id""",
            (
                self.leads["lead_open"].id,
                self.leads["lead_won"].id,
                self.leads["lead_lost"].id,
                self.leads["lead_unassigned"].id,
            ),
        )
        self.env["crm.lead"].invalidate_model()
        data = self.dashboard(self.user_manager, [self.company_main.id])
        ai = data["ai_insights"]
        self.assertEqual(ai["total_ai_scored"], 4)
        self.assertEqual(ai["ai_score_distribution"], {"high": 2, "medium": 1, "low": 1})
        self.assertEqual(ai["high_quality_leads"], 2)
        self.assertEqual(ai["avg_ai_score"], 57.5)
        # |85-30| no, |75-100| no (25), |20-0| yes, |50-10| no
        self.assertEqual(ai["ai_vs_manual_accuracy"], 25.0)
        self.assertEqual(ai["enrichment_stats"], {"completed": 2, "pending": 1, "failed": 1})
        self.assertEqual(
            (ai["ai_completeness_avg"], ai["ai_clarity_avg"], ai["ai_engagement_avg"]),
            (50.0, 60.0, 70.0),
        )
        # closed in March: lead_won (high score, won), lead_lost (low score, lost)
        self.assertEqual(ai["won_by_ai_band"]["high"], {"closed": 1, "won": 1, "win_rate": 100.0})
        self.assertEqual(ai["won_by_ai_band"]["low"], {"closed": 1, "won": 0, "win_rate": 0.0})
        # the figures the card opens: their leads, as many as it shows
        self.assertEqual(
            self.ai_domain_counts(self.user_manager, [self.company_main.id], ai),
            {"closed_high": 1, "closed_low": 1, "completed": 2, "pending": 1, "failed": 1},
        )
        self.assertEqual(
            [lead["name"] for lead in ai["top_ai_scored_leads"]],
            ["lead_open", "lead_won", "lead_unassigned", "lead_lost"],
        )
        self.assertEqual(ai["top_ai_scored_leads"][0]["salesperson"], "Dash Salesman")
        self.assertEqual(ai["scoring_model"], {"method": "rules"})
        self.env["llm.scoring.model"].create(
            {
                "company_id": self.company_main.id,
                "version": 3,
                "leads_used": 900,
                "auc": 0.7712,
                "brier": 0.1801,
                "pls_brier": 0.1927,
                "calibration_error": 0.0277,
            }
        )
        ai = self.dashboard(self.user_manager, [self.company_main.id])["ai_insights"]
        self.assertEqual(ai["scoring_model"]["method"], "learned")
        self.assertEqual(
            (
                ai["scoring_model"]["version"],
                ai["scoring_model"]["auc"],
                ai["scoring_model"]["pls_brier"],
            ),
            (3, 0.771, 0.193),
        )
        # the salesman does not see the manager's lost lead in the AI figures either
        ai_salesman = self.dashboard(self.user_salesman, [self.company_main.id])["ai_insights"]
        self.assertEqual(ai_salesman["total_ai_scored"], 3)

    def test_ai_figures_of_leads_created_outside_the_period(self):
        """The won rate by score band counts the leads closed in the period whatever their
        creation date (before the period, or none), and the AI figures count a lead created on
        the bound between two branches of the AI query once."""
        p = self.env["crm.executive.dashboard"]._dashboard_params(*PERIOD, None, None)
        cut = p["from_utc"] + (p["to_utc"] - p["from_utc"]) / AI_QUERY_PARTS
        self.env.cr.execute(
            """UPDATE crm_lead SET create_date = COALESCE(s.created, crm_lead.create_date),
                      date_closed = COALESCE(s.closed, crm_lead.date_closed)
                 FROM (VALUES (%s, NULL::timestamp, '2019-03-15'::timestamp),
                              (%s, %s, NULL)) AS s(id, created, closed)
                WHERE crm_lead.id = s.id""",
            (self.leads["lead_prev_won"].id, self.leads["lead_c2_open"].id, cut),
        )
        self.env.cr.execute(
            """UPDATE crm_lead SET create_date = NULL, date_closed = '2019-03-18', active = FALSE,
                      probability = 0
                WHERE id = %s""",
            (self.leads["lead_other"].id,),
        )
        self.env.cr.execute(
            """UPDATE crm_lead SET ai_last_enrichment_date = '2019-03-20',
                      ai_probability_score = s.score, ai_enrichment_status = 'completed'
                 FROM (VALUES (%s, 85.0), (%s, 20.0), (%s, 90.0), (%s, 10.0), (%s, 60.0))
                      AS s(id, score)
                WHERE crm_lead.id = s.id""",
            tuple(
                self.leads[key].id
                for key in ("lead_won", "lead_lost", "lead_prev_won", "lead_other", "lead_c2_open")
            ),
        )
        self.env["crm.lead"].invalidate_model()
        # the narrow AI table follows the dates written in SQL
        self.env.cr.execute(
            f"SELECT lead_id, lead_create_date, lead_date_closed FROM {AI_TABLE} "  # noqa: S608
            "WHERE lead_id IN %s",
            (tuple(self.leads[key].id for key in ("lead_prev_won", "lead_other", "lead_c2_open")),),
        )
        rows = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        self.assertEqual(rows[self.leads["lead_other"].id][0], None)
        self.assertEqual(str(rows[self.leads["lead_other"].id][1]), "2019-03-18 00:00:00")
        self.assertEqual(str(rows[self.leads["lead_prev_won"].id][1]), "2019-03-15 00:00:00")
        self.assertEqual(rows[self.leads["lead_c2_open"].id][0], cut)
        companies = [self.company_main.id, self.company_2.id]
        ai = self.dashboard(self.user_manager, companies)["ai_insights"]
        # created in March and scored: lead_won, lead_lost and lead_c2_open (on the bound)
        self.assertEqual(ai["total_ai_scored"], 3)
        self.assertEqual(ai["ai_score_distribution"], {"high": 1, "medium": 1, "low": 1})
        # closed in March: lead_won and lead_prev_won (created in February) won with a high
        # score; lead_lost and lead_other (no creation date) lost with a low one
        self.assertEqual(ai["won_by_ai_band"]["high"], {"closed": 2, "won": 2, "win_rate": 100.0})
        self.assertEqual(ai["won_by_ai_band"]["low"], {"closed": 2, "won": 0, "win_rate": 0.0})
        counts = self.ai_domain_counts(self.user_manager, companies, ai)
        self.assertEqual((counts["closed_high"], counts["closed_low"]), (2, 2))
        # the salesman reads neither lead_other (another salesman's) nor lead_lost (the
        # manager's)
        ai = self.dashboard(self.user_salesman, [self.company_main.id])["ai_insights"]
        self.assertEqual(ai["won_by_ai_band"]["high"], {"closed": 2, "won": 2, "win_rate": 100.0})
        self.assertEqual(ai["won_by_ai_band"]["low"], {"closed": 0, "won": 0, "win_rate": 0.0})
        counts = self.ai_domain_counts(self.user_salesman, [self.company_main.id], ai)
        self.assertEqual((counts["closed_high"], counts["closed_low"]), (2, 0))

    def test_empty_period(self):
        data = (
            self.env["crm.executive.dashboard"]
            .with_user(self.user_manager)
            .get_dashboard_data("2001-01-01", "2001-12-31")
        )
        self.assertTrue(data["empty"])
        self.assertEqual(data["kpis"]["won_revenue"]["value"], 0.0)
        self.assertEqual(data["period"]["granularity"], "month")
        self.assertEqual(len(data["trends"]["buckets"]), 12)

    def test_lead_of_the_previous_period_won_in_this_one(self):
        """A deal created in February and won in March counts in March's won figures of its
        team and salesperson (the main query keeps their detail for the leads of the previous
        period closed since), and still in February's created leads."""
        self.env.cr.execute(
            "UPDATE crm_lead SET date_closed = '2019-03-12 10:00:00' WHERE id = %s",
            (self.leads["lead_prev_won"].id,),
        )
        self.env["crm.lead"].invalidate_model()
        companies = [self.company_main.id]
        data = self.dashboard(self.user_manager, companies)
        self.assertKpis(data, self.expected_kpis(self.user_manager, companies))
        self.assertEqual(data["kpis"]["won_opportunities"]["value"], 2)
        self.assertEqual(data["kpis"]["won_opportunities"]["previous"], 0)
        self.assertEqual(data["kpis"]["total_leads"]["previous"], 1)
        team = next(row for row in data["team_performance"] if row["name"] == "Dash Team A")
        self.assertEqual((team["leads"], team["won"], team["revenue"]), (4, 2, 2800.0))
        agent = next(row for row in data["agent_metrics"] if row["name"] == "Dash Salesman")
        self.assertEqual((agent["won"], agent["revenue"]), (2, 2800.0))
        self.assertEqual(sum(bucket["won"] for bucket in data["trends"]["buckets"]), 2)
        self.assertEqual(data["trends"]["buckets"][11]["won"], 1)  # March 12th

    def test_timezone_days(self):
        """A lead created at 23:30 UTC on Feb 28th is a March 1st lead in Brussels."""
        self.env.cr.execute(
            "UPDATE crm_lead SET create_date = '2019-02-28 23:30:00' WHERE id = %s",
            (self.leads["lead_unassigned"].id,),
        )
        self.env["crm.lead"].invalidate_model()
        utc = self.dashboard(self.user_manager, [self.company_main.id])
        self.user_manager.tz = "Europe/Brussels"
        brussels = self.dashboard(self.user_manager, [self.company_main.id])
        self.assertEqual(
            brussels["kpis"]["total_leads"]["value"], utc["kpis"]["total_leads"]["value"] + 1
        )
        self.assertEqual(brussels["trends"]["buckets"][0]["leads"], 1)

    def test_bad_parameters(self):
        Dashboard = self.env["crm.executive.dashboard"].with_user(self.user_manager)
        for args, message in [
            (("not a date", "2019-03-31"), "must be a date"),
            (("2019-04-01", "2019-03-31"), "is after the end date"),
            (("2010-01-01", "2019-03-31"), "longer than 5 years"),
        ]:
            with self.assertRaisesRegex(UserError, message):
                Dashboard.get_dashboard_data(*args)
        with self.assertRaisesRegex(UserError, "positive integers"):
            Dashboard.get_dashboard_data(
                "2019-03-01", "2019-03-31", team_ids=["1; DROP TABLE crm_lead"]
            )
