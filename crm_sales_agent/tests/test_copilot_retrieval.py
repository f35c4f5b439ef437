"""The copilot's figures by the dashboard's own helpers, its search over many matches, the
retention of its conversations and what its uninstall leaves behind."""

import json
import sys
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.modules.module import get_manifest
from odoo.tests import tagged

from odoo.addons.crm_executive_dashboard.models.crm_executive_dashboard import KPI_KEYS

from ..models import crm_copilot_retrieval
from .test_copilot_rules import CopilotCommon


@tagged("post_install", "-at_install", "crm_sales_agent")
class TestCopilotFigures(CopilotCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._activate_multi_company()
        cls.user_sales_manager.company_ids |= cls.company_2
        # history: leads created and closed in earlier periods, one of them lost, one of
        # them in another company and currency (converted by the dashboard)
        common = {"team_id": cls.team_europe.id, "type": "opportunity"}
        old_won = cls.Lead.create(
            dict(common, name="Old win", user_id=cls.user_sales_salesman.id, expected_revenue=700)
        )
        old_won.write({"stage_id": cls.stage_team1_won.id})
        old_lost = cls.Lead.create(
            dict(common, name="Old loss", user_id=cls.user_sales_salesman.id, expected_revenue=300)
        )
        old_lost.action_set_lost()
        foreign = cls.Lead.create(
            {
                "name": "Sydney deal",
                "type": "opportunity",
                "user_id": cls.user_sales_manager.id,
                "company_id": cls.company_2.id,
                "expected_revenue": 2000,
            }
        )
        foreign.write({"stage_id": cls.stage_team1_won.id})
        foreign_open = cls.Lead.create(
            {
                "name": "Perth deal",
                "type": "opportunity",
                "user_id": cls.user_sales_manager.id,
                "company_id": cls.company_2.id,
                "expected_revenue": 3000,
                "probability": 40,
            }
        )
        # the other company's amounts are converted at the lead's date: rates change in between
        today = fields.Date.today()
        for days, rate in ((150, 1.5), (80, 1.6), (30, 1.7)):
            cls.env["res.currency.rate"].create(
                {
                    "currency_id": cls.company_2.currency_id.id,
                    "name": today - timedelta(days=days),
                    "rate": rate,
                }
            )
        cls.Lead.flush_model()
        long_ago = fields.Datetime.now() - timedelta(days=100)
        cls.env.cr.execute(
            "UPDATE crm_lead SET create_date = %s, date_closed = %s WHERE id IN %s",
            (long_ago - timedelta(days=20), long_ago, (old_won.id, old_lost.id, foreign.id)),
        )
        cls.env.cr.execute(
            "UPDATE crm_lead SET create_date = %s WHERE id = %s",
            (fields.Datetime.now() - timedelta(days=60), foreign_open.id),
        )
        cls.Lead.invalidate_model()

    def test_every_kpi_equals_the_dashboard(self):
        """Every KPI, for every user, period and filter, is the dashboard's value and domain,
        computed without the rest of the dashboard."""
        Dashboard = type(self.env["crm.executive.dashboard"])
        today = fields.Date.context_today(self.env["crm.copilot"])
        checked = 0
        for user in (self.user_sales_salesman, self.user_sales_manager):
            Copilot = self._copilot(user)
            for period, days in (("this_year", None), ("last_n_days", 180)):
                date_from, date_to, _label = Copilot._copilot_period(period, days)
                self.assertEqual(date_to, today)
                for filters, team_ids, user_ids in (
                    ({}, None, None),
                    ({"team": "Europe"}, [self.team_europe.id], None),
                    ({"salesperson": "me"}, None, [user.id]),
                ):
                    data = self._dashboard(user, date_from, date_to, team_ids, user_ids)
                    args = dict(filters, period=period, days=days)
                    with patch.object(
                        Dashboard, "get_dashboard_data", side_effect=AssertionError("whole")
                    ):
                        results = {
                            key: Copilot._copilot_run_tool("kpi", dict(args, metric=key))
                            for key in KPI_KEYS
                        }
                        stages = Copilot._copilot_run_tool("pipeline_by_stage", args)
                    for key, result in results.items():
                        with self.subTest(user=user.login, period=period, key=key, **filters):
                            self.assertFalse(result["data"].get("error"), result["text"])
                            figure = result["figures"][0]
                            self.assertEqual(figure["value"], data["kpis"][key]["value"])
                            self.assertEqual(
                                json.loads(json.dumps(figure["domain"])),
                                json.loads(json.dumps(data["kpis"][key]["domain"])),
                            )
                            checked += 1
                    self.assertEqual(
                        [(f["label"], f["value"]) for f in stages["figures"]],
                        [(s["name"], s["count"]) for s in data["pipeline"]],
                    )
        self.assertEqual(checked, 2 * 2 * 3 * len(KPI_KEYS))
        # the history is counted: the manager's win in the other company, the salesperson's
        # two wins (one 100 days ago) and one loss
        last_180 = {"period": "last_n_days", "days": 180, "salesperson": "me"}
        manager = self._copilot(self.user_sales_manager)
        won = manager._copilot_run_tool("kpi", dict(last_180, metric="won_opportunities"))
        self.assertEqual(won["figures"][0]["value"], 1)
        revenue = manager._copilot_run_tool("kpi", dict(last_180, metric="won_revenue"))
        self.assertNotIn(revenue["figures"][0]["value"], (0, 2000), "converted")
        pipeline = manager._copilot_run_tool("kpi", dict(last_180, metric="pipeline_value"))
        self.assertGreater(pipeline["figures"][0]["value"], 900000)  # his own, and Perth
        rate = self._copilot()._copilot_run_tool("kpi", dict(last_180, metric="win_rate"))
        self.assertEqual(rate["figures"][0]["value"], 66.7)


@tagged("post_install", "-at_install", "crm_sales_agent")
class TestCopilotRetrieval(CopilotCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._activate_multi_company()
        # a common word: more matches on leads the salesperson cannot read than the search
        # takes from the index, created before his own
        others = cls.Lead.create(
            [
                {
                    "name": "Quokka farm %s" % index,
                    "user_id": cls.user_sales_manager.id,
                    "description": "<p>Quokka habitat survey</p>",
                }
                for index in range(6)
            ]
        )
        foreign = cls.Lead.create(
            {
                "name": "Quokka export (other company)",
                "user_id": False,
                "company_id": cls.company_2.id,
                "description": "<p>Quokka transport</p>",
            }
        )
        cls.lead_quokka = cls.Lead.create(
            {
                "name": "Quokka sanctuary",
                "user_id": cls.user_sales_salesman.id,
                "description": "<p>Quokka feeding plan</p>",
            }
        )
        for lead in others | foreign:
            lead.message_post(body="quokkas are common here", message_type="comment")
        cls.lead_quokka.message_post(body="quokkas seen on site", message_type="comment")
        cls.others, cls.foreign = others, foreign

    def _search(self, user, text):
        with patch.object(crm_copilot_retrieval, "CANDIDATES", 3):
            return self._copilot(user)._copilot_search(text)

    def test_common_word_only_readable(self):
        """However many unreadable leads match first, a salesperson gets only his readable
        matches (leads and their messages), and still finds them."""
        hits = self._search(self.user_sales_salesman, "quokka")
        self.assertEqual(
            {(h["model"], h["id"], h["source"]) for h in hits},
            {
                ("crm.lead", self.lead_quokka.id, "record"),
                ("crm.lead", self.lead_quokka.id, "message"),
            },
        )
        self.assertIn("feeding plan", hits[0]["snippet"])
        answer = self._copilot().ask("search quokka")
        ids = {r["id"] for r in answer["records"] if r["model"] == "crm.lead"}
        self.assertEqual(ids, {self.lead_quokka.id})
        self.assertNotIn("habitat", answer["answer"])
        self.assertNotIn("transport", answer["answer"])

        manager = self._search(self.user_sales_manager, "quokka")
        lead_hits = [h for h in manager if h["source"] == "record"]
        message_hits = [h for h in manager if h["source"] == "message"]
        # at most CANDIDATES of each, all readable by him, never the other company's
        self.assertEqual(len(lead_hits), 3)
        self.assertEqual(len(message_hits), 3)
        readable = self.others | self.lead_quokka
        self.assertTrue({h["id"] for h in lead_hits + message_hits} <= set(readable.ids))

    def test_ranking_and_prefixes(self):
        """More words narrow the matches; words are prefixes from 3 letters; short or
        meaningless words are not searched."""
        Copilot = self._copilot(self.user_sales_manager)
        self.assertEqual(
            Copilot._copilot_tsquery("find leads mentioning AI pricing"), "ai & pricing:*"
        )
        for junk in ("", "the of", "__ :* & | ! ( ) ''", None):
            self.assertIsNone(Copilot._copilot_tsquery(junk), junk)
        hits = self._search(self.user_sales_manager, "quokk sanct")
        self.assertEqual([h["id"] for h in hits if h["source"] == "record"], [self.lead_quokka.id])
        hits = self._search(self.user_sales_manager, "quokka feeding")
        self.assertEqual(hits[0]["id"], self.lead_quokka.id)
        answer = self._copilot().ask("search ' & | :* quokka!")
        self.assertFalse(answer["error"])
        self.assertEqual(answer["records"][0]["id"], self.lead_quokka.id)

    def test_uninstall_drops_the_indexes(self):
        """The full-text indexes are on other modules' tables: the uninstall hook named in
        the manifest drops them (the test transaction is rolled back afterwards)."""
        cr = self.env.cr
        query = "SELECT indexname FROM pg_indexes WHERE indexname IN %s"
        cr.execute(query, (crm_copilot_retrieval.FTS_INDEXES,))
        self.assertEqual(len(cr.fetchall()), 3)
        hook = get_manifest("crm_sales_agent")["uninstall_hook"]
        getattr(sys.modules["odoo.addons.crm_sales_agent"], hook)(self.env)
        cr.execute(query, (crm_copilot_retrieval.FTS_INDEXES,))
        self.assertEqual(cr.fetchall(), [])


@tagged("post_install", "-at_install", "crm_sales_agent")
class TestCopilotRetention(CopilotCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._activate_multi_company()
        cls.user_admin.company_ids |= cls.company_2

    def _save(self, company, **values):
        self.env["res.config.settings"].with_user(self.user_admin).with_company(company).create(
            values
        ).execute()

    def _read(self, company):
        return (
            self.env["res.config.settings"]
            .with_user(self.user_admin)
            .with_company(company)
            .create({})
        )

    def _session(self, company, idle_days):
        session = self.env["crm.copilot.session"].create(
            {"name": "Q", "user_id": self.user_sales_manager.id, "company_id": company.id}
        )
        session.last_date = fields.Datetime.now() - timedelta(days=idle_days)
        return session

    def test_retention_per_company(self):
        Session = self.env["crm.copilot.session"]
        main, other = self.company_main, self.company_2
        self.assertEqual(self._read(main).sales_agent_copilot_retention_days, 90)
        self._save(main, sales_agent_copilot_retention_days=30)
        self._save(other, sales_agent_copilot_retention_days=0)  # keep forever
        self._read(main).execute()  # saved twice, nothing changed
        self._read(other).execute()
        self.assertEqual(self._read(main).sales_agent_copilot_retention_days, 30)
        self.assertEqual(self._read(other).sales_agent_copilot_retention_days, 0)
        old, recent = self._session(main, 31), self._session(main, 29)
        ancient = self._session(other, 3000)
        Session._gc_copilot_sessions()
        self.assertFalse(old.exists())
        self.assertTrue(recent.exists())
        self.assertTrue(ancient.exists(), "0: kept forever")
        self._save(other, sales_agent_copilot_retention_days=365)
        Session._gc_copilot_sessions()
        self.assertFalse(ancient.exists())
        with self.assertRaises(ValidationError):
            self._save(main, sales_agent_copilot_retention_days=-1)
