import threading
import time
import uuid

import psycopg2

from odoo import SUPERUSER_ID, api, fields
from odoo.tests import tagged

from .common import LlmLeadScoringCommon, analysis_json, openai_body


@tagged("llm_lead_scoring")
class TestScoringQueue(LlmLeadScoringCommon):
    def _only_these_queued(self, leads):
        others = self.env["crm.lead"].search(
            [("ai_enrichment_status", "in", ("pending", "failed")), ("id", "not in", leads.ids)]
        )
        others.write({"ai_enrichment_status": "completed"})

    def test_an_edit_during_processing_is_scored(self):
        self._create_provider()
        lead = self._full_lead(description="<p>Old need</p>")
        self._only_these_queued(lead)
        lead.write({"ai_enrichment_status": "processing"})  # the cron took it
        lead.write({"description": "<p>New need: 80 licences, budget 90k</p>"})
        self.assertTrue(lead.ai_requeue)
        self.env["crm.lead"]._ai_enrich(lead)  # the result of the old data is written...
        self.assertEqual(lead.ai_enrichment_status, "pending", "...and the lead is queued again")
        self.assertFalse(lead.ai_requeue)
        self.env["crm.lead"]._cron_enrich_leads()
        self.assertEqual(lead.ai_enrichment_status, "completed")
        self.assertIn("80 licences", self.server.requests[-1]["json"]["messages"][-1]["content"])

    def test_a_quiet_run_posts_no_note(self):
        self._create_provider()
        lead = self._full_lead()
        self.env["crm.lead"]._ai_enrich(lead)
        notes = len(lead.message_ids)
        self.env["crm.lead"]._ai_enrich(lead)  # same answer, same score
        self.assertEqual(lead.ai_score_trend, "stable")
        self.assertEqual(len(lead.message_ids), notes)
        self.server.default = (200, {}, openai_body(analysis_json(clarity=10)), 0)
        self.env["crm.lead"]._ai_enrich(lead)  # the score moves: a note
        self.assertEqual(len(lead.message_ids), notes + 1)

    def test_calls_not_sent_before_the_deadline_stay_pending_without_an_attempt(self):
        self._create_provider(timeout=30)
        self.server.default = (200, {}, openai_body(analysis_json()), 1.0)
        leads = self.env["crm.lead"].create(
            [
                {"name": "Deadline lead %s" % i, "description": "<p>need %s</p>" % i}
                for i in range(4)
            ]
        )
        self._only_these_queued(leads)
        started = time.monotonic()
        # one call at a time (a local server): two calls fit in 2.6 s, the third would not
        self.env["crm.lead"]._cron_enrich_leads(time_budget=2.6)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 2.86, "the run keeps to its time budget (+10 %)")
        done = leads.filtered(lambda lead: lead.ai_enrichment_status == "completed")
        waiting = leads - done
        self.assertTrue(done and waiting)
        self.assertEqual(set(waiting.mapped("ai_enrichment_status")), {"pending"})
        self.assertEqual(set(waiting.mapped("ai_enrichment_attempts")), {0})

    def test_a_provider_that_never_answers_fails_every_lead_within_bounded_runs(self):
        self._create_provider(timeout=5)
        self.server.default = (200, {}, openai_body(analysis_json()), 8)  # always too late
        self._set_config(max_attempts=2)
        leads = self.env["crm.lead"].create(
            [{"name": "Silent lead %s" % i, "description": "<p>need %s</p>" % i} for i in range(2)]
        )
        self._only_these_queued(leads)
        runs, slowest = 0, 0.0

        def given_up():
            return all(
                lead.ai_enrichment_status == "failed" and not lead.ai_next_retry_date
                for lead in leads
            )

        while runs < 12 and not given_up():
            started = time.monotonic()
            self.env["crm.lead"]._cron_enrich_leads(time_budget=6.5)
            slowest = max(slowest, time.monotonic() - started)
            runs += 1
            leads.filtered("ai_next_retry_date").write(
                {"ai_next_retry_date": fields.Datetime.now()}
            )  # as if the retry delay had passed
        self.assertEqual(set(leads.mapped("ai_enrichment_status")), {"failed"})
        self.assertEqual(set(leads.mapped("ai_enrichment_attempts")), {2})
        self.assertIn("did not answer in time", leads[0].ai_enrichment_error)
        # one timed-out call per lead and attempt: never a retry of a timed-out request, and
        # once a call timed out, the rest of the run is not sent to that provider
        self.assertEqual(len(self.server.requests), 4)
        self.assertLessEqual(runs, 4)
        self.assertLess(slowest, 6.5 * 1.1, "no run exceeds its budget by more than 10 %")

    def test_a_killed_worker_counts_an_attempt_and_ends_failed(self):
        lead = self._full_lead()
        self._set_config(company=lead.company_id or self.env.company, max_attempts=2)
        self._only_these_queued(lead)
        for _kill in range(2):
            self.env.flush_all()
            self.env.cr.execute(
                "UPDATE crm_lead SET ai_enrichment_status = 'processing', "
                "ai_processing_since = NOW() AT TIME ZONE 'UTC' - interval '1 hour' "
                "WHERE id = %s",
                [lead.id],
            )
            lead.invalidate_recordset()
            with self.assertLogs(
                "odoo.addons.llm_lead_scoring.models.crm_lead_enrichment", "WARNING"
            ):
                self.env["crm.lead"]._ai_requeue_stuck()
        self.assertEqual(lead.ai_enrichment_status, "failed")
        self.assertEqual(lead.ai_enrichment_attempts, 2)
        self.assertIn("interrupted", lead.ai_enrichment_error)


@tagged("llm_lead_scoring", "post_install", "-at_install")
class TestNoLockDuringHttp(LlmLeadScoringCommon):
    """Real cursors: the cron's rows are free while the provider thinks."""

    park_backlog_in_transaction = False

    def test_a_lead_being_scored_can_be_written_within_a_second(self):
        registry = self.registry
        self._park_committed_backlog()
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            company = env["res.company"].create({"name": "Slow Co %s" % uuid.uuid4().hex[:8]})
            provider = env["llm.provider"].create(
                {
                    "name": "Slow server",
                    "company_id": False,
                    "provider_type": "openai_compatible",
                    "base_url": self.server.base_url,
                    "is_default": True,
                    "max_retries": 0,
                    "timeout": 20,
                }
            )
            lead = env["crm.lead"].create(
                {"name": "Slow lead", "description": "<p>need</p>", "company_id": company.id}
            )
            lead_id = lead.id

        def cleanup():
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                env["crm.lead"].browse(lead_id).unlink()
                env["llm.call.log"].search([("company_id", "=", company.id)]).unlink()
                env["llm.provider"].browse(provider.id).unlink()
                env["res.company"].browse(company.id).active = False

        self.addCleanup(cleanup)
        self.server.default = (200, {}, openai_body(analysis_json()), 3)
        errors = []

        def worker():
            try:
                with registry.cursor() as cr:
                    api.Environment(cr, SUPERUSER_ID, {})["crm.lead"]._cron_enrich_leads()
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=worker)
        thread.start()
        for _wait in range(50):  # until the provider has the call
            if self.server.requests:
                break
            time.sleep(0.1)
        self.assertTrue(self.server.requests)
        with registry.cursor() as cr:
            cr.execute("SET LOCAL lock_timeout = '1s'")
            try:
                cr.execute(
                    "UPDATE crm_lead SET description = '<p>edited</p>' WHERE id = %s", [lead_id]
                )
            except psycopg2.errors.LockNotAvailable:
                self.fail("the lead stayed locked during the AI call")
        thread.join(timeout=60)
        self.assertFalse(errors)
        with registry.cursor() as cr:
            cr.execute(
                "SELECT ai_enrichment_status, description FROM crm_lead WHERE id = %s", [lead_id]
            )
            status, description = cr.fetchone()
        self.assertEqual(status, "completed")
        self.assertIn("edited", description)
