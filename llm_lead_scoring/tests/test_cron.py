import json
import re
import threading
import uuid
from collections import Counter
from datetime import timedelta

from freezegun import freeze_time

from odoo import SUPERUSER_ID, api, fields
from odoo.tests import tagged

from .common import LlmLeadScoringCommon, analysis_json, openai_body


def _lead_title(request_json):
    content = request_json["messages"][-1]["content"]
    return json.loads(re.search(r"<lead_data>\n(.*)\n</lead_data>", content, re.S).group(1))[
        "title"
    ]


@tagged("llm_lead_scoring")
class TestEnrichmentCron(LlmLeadScoringCommon):
    def _make_leads(self, count, **vals):
        return self.env["crm.lead"].create(
            [
                dict(
                    {
                        "name": "Cron lead %s" % i,
                        "email_from": "c%s@example.com" % i,
                        "description": "<p>Need %s licences by Q3, budget 10k EUR</p>" % i,
                    },
                    **vals,
                )
                for i in range(count)
            ]
        )

    def test_cron_record(self):
        cron = self.env.ref("llm_lead_scoring.ir_cron_llm_lead_scoring_enrich")
        self.assertEqual(cron.numbercall, -1)
        self.assertTrue(cron.active)
        lead = self._make_leads(1)
        cron.method_direct_trigger()
        self.assertEqual(lead.ai_enrichment_status, "completed")

    def test_cron_over_200_leads(self):
        provider = self._create_provider(concurrency=8)
        leads = self._make_leads(200)
        self.env["crm.lead"]._cron_enrich_leads()
        self.assertEqual(set(leads.mapped("ai_enrichment_status")), {"completed"})
        self.assertEqual(set(leads.mapped("ai_analysis_method")), {"llm"})
        titles = Counter(_lead_title(r["json"]) for r in self.server.requests)
        self.assertLessEqual(set(leads.mapped("name")), set(titles))
        self.assertEqual(set(titles.values()), {1}, "each lead called once")
        provider.invalidate_recordset()
        self.assertEqual(provider.request_count, len(self.server.requests))
        self.assertEqual(len(leads.ai_score_history_ids), 200)

    def test_one_batch_keeps_each_leads_own_result(self):
        """The results of a batch are written together (one UPDATE per set of columns), yet
        each lead gets its own answer, status and retry, and what depends on them follows."""

        def answer(payload):
            title = _lead_title(payload)
            if title.endswith(("1", "3")):
                return (502, {}, {"error": "bad gateway"}, 0)
            clarity = 20 + 10 * int(title.rsplit(" ", 1)[1])
            return (
                200,
                {},
                openai_body(analysis_json(clarity=clarity, summary="About " + title)),
                0,
            )

        self._create_provider()
        self.server.default = answer
        leads = self._make_leads(5)
        before = fields.Datetime.now()
        self.env["crm.lead"]._cron_enrich_leads()
        ok, failed = leads[0] + leads[2] + leads[4], leads[1] + leads[3]
        self.assertEqual(set(ok.mapped("ai_enrichment_status")), {"completed"})
        self.assertEqual(ok.mapped("ai_clarity_score"), [20.0, 40.0, 60.0])
        self.assertEqual(
            ok.mapped("ai_analysis_summary"), ["About " + n for n in ok.mapped("name")]
        )
        self.assertEqual(set(failed.mapped("ai_enrichment_status")), {"failed"})
        self.assertEqual(failed.mapped("ai_enrichment_attempts"), [1, 1])
        self.assertTrue(all(lead.ai_next_retry_date > before for lead in failed))
        self.assertFalse(any(ok.mapped("ai_next_retry_date")))
        # ai_win_probability is computed from what was written (PLS bounds, no learned model)
        self.assertTrue(all(0 < p < 100 for p in leads.mapped("ai_win_probability")))
        self.assertEqual(len(leads.ai_score_history_ids), 5)

    def test_batch_is_whole_rounds_of_the_providers_concurrent_calls(self):
        """Batch size 50 on a provider taking 8 calls at once: 56 leads a batch (7 full
        rounds), not 50 (the last round with 6 of the 8 slots idle)."""
        self.env["res.config.settings"].create({"llm_batch_size": 50}).execute()
        self.assertEqual(self.env["crm.lead"]._ai_batch_size(), 50)  # rules only
        provider = self._create_provider(concurrency=8)
        self.assertEqual(self.env["crm.lead"]._ai_batch_size(), 56)
        provider.concurrency = 1
        self.assertEqual(self.env["crm.lead"]._ai_batch_size(), 50)
        self.env["res.config.settings"].create({"llm_batch_size": 64}).execute()
        provider.concurrency = 8
        self.assertEqual(self.env["crm.lead"]._ai_batch_size(), 64)

    def test_rules_only_cron(self):
        leads = self._make_leads(30)
        self.env["crm.lead"]._cron_enrich_leads()
        self.assertEqual(set(leads.mapped("ai_enrichment_status")), {"completed"})
        self.assertEqual(set(leads.mapped("ai_analysis_method")), {"rules"})

    def test_disabled_setting_stops_the_cron(self):
        self._set_config(auto_enrich_enabled=False)
        self.env.registry.clear_cache()
        lead = self.env["crm.lead"].create({"name": "x", "ai_enrichment_status": "pending"})
        self.env["crm.lead"]._cron_enrich_leads()
        self.assertEqual(lead.ai_enrichment_status, "pending")

    def test_failed_leads_retried_with_growing_delay_up_to_max(self):
        self._create_provider()
        self.server.default = (502, {}, {"error": "bad gateway"}, 0)
        lead = self._make_leads(1)
        start = fields.Datetime.now()
        delays = []
        with freeze_time(start) as frozen:
            for _attempt in range(3):
                self.env["crm.lead"]._cron_enrich_leads()
                self.assertEqual(lead.ai_enrichment_status, "failed")
                if lead.ai_next_retry_date:
                    delays.append(lead.ai_next_retry_date - fields.Datetime.now())
                    # not retried before its time
                    calls = len(self.server.requests)
                    self.env["crm.lead"]._cron_enrich_leads()
                    self.assertEqual(len(self.server.requests), calls)
                    frozen.tick(
                        lead.ai_next_retry_date - fields.Datetime.now() + timedelta(seconds=1)
                    )
            self.assertEqual(lead.ai_enrichment_attempts, 3)
            self.assertEqual(delays, [timedelta(minutes=5), timedelta(minutes=10)])
            # max attempts (3) reached: left failed, with its error, for a human to look at
            calls = len(self.server.requests)
            frozen.tick(timedelta(days=1))
            self.env["crm.lead"]._cron_enrich_leads()
            self.assertEqual(len(self.server.requests), calls)
            self.assertIn("502", lead.ai_enrichment_error)
            # the provider comes back; a user re-queues it
            self.server.default = (200, {}, openai_body(analysis_json()), 0)
            lead.action_ai_queue()
            self.env["crm.lead"]._cron_enrich_leads()
            self.assertEqual(lead.ai_enrichment_status, "completed")
            self.assertFalse(lead.ai_enrichment_error)

    def test_stuck_processing_requeued(self):
        leads = self._make_leads(2)
        with freeze_time(fields.Datetime.now() - timedelta(minutes=20)):
            leads[0].write(
                {"ai_enrichment_status": "processing", "ai_processing_since": fields.Datetime.now()}
            )
        leads[1].write(
            {"ai_enrichment_status": "processing", "ai_processing_since": fields.Datetime.now()}
        )
        with self.assertLogs(
            "odoo.addons.llm_lead_scoring.models.crm_lead_enrichment", "WARNING"
        ) as logs:
            self.env["crm.lead"]._cron_enrich_leads()
        self.assertIn("1 leads stuck in processing were re-queued", logs.output[0])
        self.assertEqual(leads[0].ai_enrichment_status, "completed")
        self.assertEqual(leads[1].ai_enrichment_status, "processing", "another worker may be on it")

    def _count_queries(self, count):
        self._set_config(batch_size=1000)
        self.env.registry.clear_cache()
        leads = self._make_leads(count)
        for lead in leads:
            lead.message_post(body="hello", message_type="comment", subtype_xmlid="mail.mt_comment")
        self.env.flush_all()
        self.env.invalidate_all()
        self.env["llm.service"]._get_config()  # warm the config cache
        before = self.cr.sql_log_count
        self.env["crm.lead"]._cron_enrich_leads()
        self.env.flush_all()
        return self.cr.sql_log_count - before

    def test_query_count_per_lead_is_constant(self):
        self._create_provider()
        small = self._count_queries(10)
        large = self._count_queries(50)
        per_lead = (large - small) / 40.0
        # everything is per batch, the results' UPDATE included (one per set of columns)
        self.assertLessEqual(
            per_lead,
            0.5,
            "queries per extra lead: %s (10 leads: %s, 50: %s)" % (per_lead, small, large),
        )
        self.assertLess(large / 50.0, 20)

    def test_query_count_assert(self):
        """The same bound for 10 and 50 leads, once per-batch queries are paid."""
        self._create_provider()
        leads = self._make_leads(50)
        self.env.flush_all()
        self.env.invalidate_all()
        self.env["llm.service"]._get_config()
        self.env["llm.service"]._provider_ids()
        # 50 leads: a constant, no query per lead (19 when measured; 68 with one UPDATE per
        # lead)
        with self.assertQueryCount(25):
            self.env["crm.lead"]._ai_enrich(leads)


@tagged("llm_lead_scoring", "post_install", "-at_install")
class TestEnrichmentConcurrentWorkers(LlmLeadScoringCommon):
    """Two workers, each with its own database cursor, share the backlog."""

    park_backlog_in_transaction = False

    def test_two_cursors_no_double_work(self):
        self._park_committed_backlog()
        registry = self.registry
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["llm.provider"].search([]).write({"active": False})
            provider = env["llm.provider"].create(
                {
                    "name": "Concurrent test server",
                    "company_id": False,
                    "provider_type": "openai_compatible",
                    "base_url": self.server.base_url,
                    "is_default": True,
                    "max_retries": 0,
                    "timeout": 10,
                }
            )
            # a company of its own: the test transaction holds the main company's row
            company = env["res.company"].create(
                {"name": "Concurrent Co %s" % uuid.uuid4().hex[:8], "llm_batch_size": 5}
            )
            leads = env["crm.lead"].create(
                [
                    {
                        "name": "Concurrent lead %s" % i,
                        "description": "<p>need %s</p>" % i,
                        "company_id": company.id,
                    }
                    for i in range(40)
                ]
            )
            lead_ids = leads.ids
        registry.clear_cache()

        def cleanup():
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                env["crm.lead"].browse(lead_ids).unlink()
                env["llm.call.log"].search([("company_id", "=", company.id)]).unlink()
                env["llm.provider"].browse(provider.id).unlink()
                env["res.company"].browse(company.id).active = False
            registry.clear_cache()

        self.addCleanup(cleanup)
        self.server.default = (200, {}, openai_body(analysis_json()), 0.05)
        errors = []

        def worker():
            try:
                with registry.cursor() as cr:
                    api.Environment(cr, SUPERUSER_ID, {})["crm.lead"]._cron_enrich_leads()
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        self.assertFalse(errors)
        titles = Counter(_lead_title(r["json"]) for r in self.server.requests)
        # (other committed leads of the database, e.g. demo data queued at install, may be
        # scored by the same runs: only this test's leads are counted)
        titles = Counter({t: n for t, n in titles.items() if t.startswith("Concurrent lead")})
        self.assertEqual(len(titles), 40)
        self.assertEqual(set(titles.values()), {1}, "no lead scored twice")
        with registry.cursor() as cr:
            cr.execute(
                "SELECT ai_enrichment_status, count(*) FROM crm_lead WHERE id = ANY(%s) GROUP BY 1",
                [lead_ids],
            )
            self.assertEqual(dict(cr.fetchall()), {"completed": 40})
            cr.execute(
                "SELECT count(*) FROM crm_lead_score_history WHERE lead_id = ANY(%s)", [lead_ids]
            )
            self.assertEqual(cr.fetchone()[0], 40)
