from datetime import date

from odoo import fields
from odoo.osv import expression
from odoo.tests import tagged

from ..models.crm_lead import AI_TABLE
from .common import PERIOD, DashboardCommon


@tagged("crm_executive_dashboard")
class TestDashboardFixes(DashboardCommon):
    """Issue 14: domains of every clickable element, activities counted as Odoo counts them,
    the previous calendar period, no AI column in the dashboard's indexes of crm_lead."""

    def _leads(self, user, company_ids):
        return (
            self.env["crm.lead"]
            .with_user(user)
            .with_context(allowed_company_ids=company_ids, active_test=False)
        )

    def _done_activity(self, lead, day, activity_type="mail.mail_activity_data_todo"):
        """An activity of ``lead`` marked done on ``day`` (its message dated that day)."""
        activity = lead.activity_schedule(activity_type, user_id=self.user_manager.id)
        messages = lead.message_ids
        activity.action_done()
        message = lead.message_ids - messages
        self.env.flush_all()
        self.env.cr.execute("UPDATE mail_message SET date = %s WHERE id = %s", (day, message.id))
        self.env.invalidate_all()
        return message

    # ------------------------------------------------------------
    # PREVIOUS PERIOD
    # ------------------------------------------------------------

    def test_previous_period(self):
        previous = self.env["crm.executive.dashboard"]._previous_period
        for start, end, expected in [
            # calendar month, quarter, year: the previous one, whatever its number of days
            ("2026-12-01", "2026-12-31", ("2026-11-01", "2026-11-30", "month")),
            ("2019-03-01", "2019-03-31", ("2019-02-01", "2019-02-28", "month")),
            ("2026-10-01", "2026-12-31", ("2026-07-01", "2026-09-30", "quarter")),
            ("2026-01-01", "2026-12-31", ("2025-01-01", "2025-12-31", "year")),
            ("2024-03-01", "2024-03-31", ("2024-02-01", "2024-02-29", "month")),
            # anything else: the same number of days just before
            ("2019-03-05", "2019-03-14", ("2019-02-23", "2019-03-04", "days")),
            ("2026-11-01", "2026-12-31", ("2026-09-01", "2026-10-31", "days")),
            ("2026-02-01", "2026-04-30", ("2025-11-04", "2026-01-31", "days")),
        ]:
            with self.subTest(start=start, end=end):
                prev_from, prev_to, comparison = previous(
                    date.fromisoformat(start), date.fromisoformat(end)
                )
                self.assertEqual((prev_from.isoformat(), prev_to.isoformat(), comparison), expected)
        data = self.dashboard(self.user_manager, [self.company_main.id])
        self.assertEqual(
            (data["period"]["previous_from"], data["period"]["previous_to"]),
            ("2019-02-01", "2019-02-28"),
        )
        self.assertEqual(data["period"]["comparison"], "month")

    # ------------------------------------------------------------
    # DOMAINS OF THE CLICKABLE ELEMENTS
    # ------------------------------------------------------------

    def test_trend_domains(self):
        """Each trend bucket carries the domains of its leads, built on the server: they are
        valid domains and find exactly the bucket's figures."""
        companies = [self.company_main.id, self.company_2.id]
        data = self.dashboard(self.user_manager, companies)
        leads = self._leads(self.user_manager, companies)
        buckets = data["trends"]["buckets"]
        self.assertEqual(len(buckets), 31)
        for bucket in buckets:
            self.assertEqual(leads.search_count(bucket["domains"]["leads"]), bucket["leads"])
            self.assertEqual(leads.search_count(bucket["domains"]["won"]), bucket["won"])
        self.assertEqual(sum(b["leads"] for b in buckets), 7)
        self.assertEqual(sum(b["won"] for b in buckets), 2)
        # the salesman's buckets find his leads only
        data = self.dashboard(self.user_salesman, [self.company_main.id])
        leads = self._leads(self.user_salesman, [self.company_main.id])
        for bucket in data["trends"]["buckets"]:
            self.assertEqual(leads.search_count(bucket["domains"]["leads"]), bucket["leads"])

    def test_every_domain_matches(self):
        """KPIs, pipeline, forecast, teams, salespeople, AI bands: every domain sent to the page
        counts in Odoo's list what the page shows."""
        companies = [self.company_main.id, self.company_2.id]
        data = self.dashboard(self.user_manager, companies)
        leads = self._leads(self.user_manager, companies)
        for key in ("total_leads", "total_opportunities", "won_opportunities"):
            self.assertEqual(
                leads.search_count(data["kpis"][key]["domain"]), data["kpis"][key]["value"]
            )
        created = [
            ("create_date", ">=", "2019-03-01 00:00:00"),
            ("create_date", "<", "2019-04-01 00:00:00"),
        ]
        for row in data["team_performance"] + data["agent_metrics"]:
            self.assertEqual(
                leads.search_count(expression.AND([row["domain"], created])), row["leads"]
            )
        for band, count in data["ai_insights"]["ai_score_distribution"].items():
            self.assertEqual(leads.search_count(data["ai_insights"]["domains"][band]), count)
        self.assertEqual(data["company_ids"], companies)

    # ------------------------------------------------------------
    # ACTIVITIES
    # ------------------------------------------------------------

    def test_activities_done_as_the_activities_report(self):
        """Done activities: the rows of Odoo's Activities report in the period (active leads
        only), per team and salesperson of the lead; the row's domain opens them."""
        self._done_activity(self.leads["lead_open"], "2019-03-10 09:00:00")
        self._done_activity(self.leads["lead_won"], "2019-03-11 09:00:00")
        self._done_activity(self.leads["lead_other"], "2019-03-12 09:00:00")
        # outside of the period
        self._done_activity(self.leads["lead_open"], "2019-04-02 09:00:00")
        # the lost lead and the lead archived without being lost: not in the report
        self._done_activity(self.leads["lead_lost"], "2019-03-13 09:00:00")
        self._done_activity(self.leads["lead_archived"], "2019-03-14 09:00:00")
        Report = self.env["crm.activity.report"]
        for user, expected in ((self.user_manager, 3), (self.user_salesman, 2)):
            with self.subTest(user=user.login):
                data = self.dashboard(user, [self.company_main.id])
                report = Report.with_user(user).with_context(
                    allowed_company_ids=[self.company_main.id]
                )
                rows = data["team_performance"] + data["agent_metrics"]
                for row in rows:
                    self.assertEqual(
                        report.search_count(row["activities_done_domain"]),
                        row["activities_done"],
                        row["name"],
                    )
                team = next(r for r in data["team_performance"] if r["name"] == "Dash Team A")
                self.assertEqual(team["activities_done"], expected)
                agents = {row["name"]: row["activities_done"] for row in data["agent_metrics"]}
                self.assertEqual(agents["Dash Salesman"], 2)
                self.assertEqual(agents.get("Dash Manager", 0), 0)  # only the lost lead's
        self.assertIn("Activities report", data["definitions"]["activities_done"])

    def test_overdue_excludes_done_keep_done(self):
        """An overdue activity of a type that keeps its done activities is archived when
        marked done: no longer overdue."""
        keep = self.env["mail.activity.type"].create(
            {"name": "Dash keep done", "keep_done": True, "res_model": False}
        )
        lead = self.leads["lead_open"]
        today = self.env["crm.executive.dashboard"]._dashboard_params(*PERIOD, None, None)["today"]
        late = date(today.year - 1, 1, 1)
        kept = lead.activity_schedule(
            activity_type_id=keep.id, date_deadline=late, user_id=self.user_salesman.id
        )
        lead.activity_schedule(
            activity_type_id=keep.id, date_deadline=late, user_id=self.user_salesman.id
        )

        def overdue():
            data = self.dashboard(self.user_manager, [self.company_main.id])
            return next(r for r in data["team_performance"] if r["name"] == "Dash Team A")[
                "activities_overdue"
            ]

        self.assertEqual(overdue(), 2)
        kept.action_done()
        self.assertTrue(kept.exists())
        self.assertFalse(kept.active)
        self.assertEqual(overdue(), 1)
        # as Odoo's late activities count them
        late_activities = self.env["mail.activity"].search_count(
            [
                ("res_model", "=", "crm.lead"),
                ("res_id", "=", lead.id),
                ("date_deadline", "<", fields.Date.to_string(today)),
            ]
        )
        self.assertEqual(late_activities, 1)

    # ------------------------------------------------------------
    # AI COLUMNS OUT OF crm_lead's INDEXES
    # ------------------------------------------------------------

    def test_no_ai_column_in_dashboard_indexes(self):
        self.env.cr.execute(
            """SELECT c.relname, a.attname
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                WHERE i.indrelid = 'crm_lead'::regclass AND c.relname LIKE '%%dashboard%%'
                  AND a.attname LIKE 'ai\\_%%'"""
        )
        self.assertEqual(self.env.cr.fetchall(), [])
        self.env.cr.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'crm_lead' "
            "AND indexname LIKE '%%dashboard%%' AND indexdef ILIKE '%%ai\\_%%'"
        )
        self.assertEqual(self.env.cr.fetchone()[0], 0)

    def test_ai_table_follows_the_leads(self):
        """The narrow AI table is kept equal to crm_lead's AI columns by its triggers, for ORM
        and SQL writes alike, and loses the rows of deleted leads."""

        def row(lead):
            self.env.flush_all()
            self.env.cr.execute(
                f"SELECT scored_at, score, status FROM {AI_TABLE} WHERE lead_id = %s",  # noqa: S608
                (lead.id,),
            )
            return self.env.cr.fetchone()

        lead = self.leads["lead_open"]
        self.assertIsNone(row(lead))
        lead.write(
            {
                "ai_last_enrichment_date": "2019-03-20 10:00:00",
                "ai_probability_score": 77.0,
                "ai_enrichment_status": "completed",
            }
        )
        self.assertEqual(row(lead)[1:], (77.0, "completed"))
        self.env.cr.execute(
            "UPDATE crm_lead SET ai_probability_score = 12 WHERE id = %s", (lead.id,)
        )
        self.assertEqual(row(lead)[1], 12.0)
        lead.write({"ai_last_enrichment_date": False, "ai_enrichment_status": False})
        self.assertIsNone(row(lead))
        new = self.env["crm.lead"].create(
            {"name": "scored at creation", "ai_enrichment_status": "pending"}
        )
        self.assertEqual(row(new)[2], "pending")
        new.unlink()
        self.env.cr.execute(f"SELECT count(*) FROM {AI_TABLE} WHERE lead_id = %s", (new.id,))  # noqa: S608
        self.assertEqual(self.env.cr.fetchone()[0], 0)

    def test_ai_table_follows_the_lead_dates(self):
        """The AI row carries its lead's creation and closing dates (the AI query matches the
        leads with it by them): set when the lead is scored, followed when it is won, lost,
        restored or reopened through the ORM, or its dates written in SQL."""

        def dates(lead):
            self.env.flush_all()
            self.env.cr.execute(
                f"SELECT lead_create_date, lead_date_closed FROM {AI_TABLE} WHERE lead_id = %s",  # noqa: S608
                (lead.id,),
            )
            return self.env.cr.fetchone()

        lead = self.leads["lead_open"]
        lead.write({"ai_last_enrichment_date": "2019-03-20 10:00:00", "ai_probability_score": 50})
        self.assertEqual(dates(lead), (lead.create_date, None))
        lead.action_set_won()
        self.assertTrue(lead.date_closed)
        self.assertEqual(dates(lead), (lead.create_date, lead.date_closed or None))
        lead.write({"stage_id": self.stage_new.id})
        self.assertEqual(dates(lead), (lead.create_date, None))
        lead.action_set_lost()
        self.assertEqual(dates(lead), (lead.create_date, lead.date_closed or None))
        lead.action_unarchive()
        self.assertEqual(dates(lead), (lead.create_date, lead.date_closed or None))
        self.env.cr.execute(
            "UPDATE crm_lead SET create_date = '2018-01-01', date_closed = '2019-03-03' "
            "WHERE id = %s",
            (lead.id,),
        )
        self.assertEqual(
            tuple(map(str, dates(lead))), ("2018-01-01 00:00:00", "2019-03-03 00:00:00")
        )
        # a lead without AI data has no row, whatever happens to its dates
        other = self.leads["lead_other"]
        other.action_set_won()
        self.assertIsNone(dates(other))

    def test_ai_table_of_an_earlier_version(self):
        """Updating the module over an AI table without the lead dates (and the indexes of an
        earlier version) adds them, filled from the leads, and rebuilds the covering index of
        crm_lead on its new keys."""
        lead = self.leads["lead_won"]
        lead.write({"ai_last_enrichment_date": "2019-03-20 10:00:00", "ai_probability_score": 80})
        self.env.flush_all()
        self.env.cr.execute(
            f"""DROP INDEX crm_lead_ai_dashboard_created_idx, crm_lead_ai_dashboard_closed_idx;
                ALTER TABLE {AI_TABLE} DROP COLUMN lead_create_date, DROP COLUMN lead_date_closed;
                DROP INDEX crm_lead_dashboard_idx;
                CREATE INDEX crm_lead_dashboard_idx ON crm_lead (create_date) INCLUDE (id)"""
        )
        self.env["crm.lead"]._init_dashboard_indexes()
        self.env["crm.lead"]._init_ai_table()
        self.env.cr.execute(
            f"SELECT lead_create_date, lead_date_closed FROM {AI_TABLE} WHERE lead_id = %s",  # noqa: S608
            (lead.id,),
        )
        self.assertEqual(self.env.cr.fetchone(), (lead.create_date, lead.date_closed or None))
        self.env.cr.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN %s",
            (
                (
                    "crm_lead_dashboard_idx",
                    "crm_lead_ai_dashboard_created_idx",
                    "crm_lead_ai_dashboard_closed_idx",
                ),
            ),
        )
        indexes = dict(self.env.cr.fetchall())
        self.assertEqual(len(indexes), 3)
        self.assertIn("(create_date, id) INCLUDE (date_closed", indexes["crm_lead_dashboard_idx"])
        self.assertIn("(lead_create_date, lead_id)", indexes["crm_lead_ai_dashboard_created_idx"])
