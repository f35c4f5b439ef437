from freezegun import freeze_time

from odoo.exceptions import AccessError
from odoo.tests import Form, tagged, users

from .common import LlmLeadScoringCommon, analysis_json, openai_body


@tagged("llm_lead_scoring")
class TestLeadAnalysis(LlmLeadScoringCommon):
    """The analysis of one lead, as an admin calls it from odoo-bin shell."""

    def test_empty_lead_completeness(self):
        lead = self.env["crm.lead"].create({"name": "?"})
        result = self.env["llm.service"]._analyze(lead)["completeness"]
        self.assertLess(result["score"], 30)
        self.assertIn("Missing", result["analysis"])
        self.assertIn("valid email", result["critical_missing"])
        self.assertIn("phone", result["analysis"])

    def test_full_lead_completeness(self):
        result = self.env["llm.service"]._analyze(self._full_lead())["completeness"]
        self.assertGreater(result["score"], 70)
        self.assertEqual(result["critical_missing"], [])

    def test_invalid_email_is_missing(self):
        lead = self._full_lead(email_from="not-an-email")
        result = self.env["llm.service"]._analyze(lead)["completeness"]
        self.assertIn("valid email", result["critical_missing"])

    def test_clarity_without_description(self):
        lead = self._full_lead(description=False)
        result = self.env["llm.service"]._analyze(lead)["clarity"]
        self.assertEqual(result["score"], 0)
        self.assertIn("unclear", result["analysis"])

    def test_clarity_specific_vs_vague(self):
        service = self.env["llm.service"]
        specific = service._analyze(self._full_lead())["clarity"]
        vague = service._analyze(
            self._full_lead(description="<p>Just looking, maybe some info on your products?</p>")
        )["clarity"]
        self.assertGreaterEqual(specific["score"], 70)
        self.assertLess(vague["score"], 40)
        self.assertIn("vague", vague["analysis"])

    def test_clarity_judged_by_llm_when_configured(self):
        self._create_provider()
        self.server.default = (
            200,
            {},
            openai_body(analysis_json(clarity=35, summary="The need is unclear.")),
            0,
        )
        result = self.env["llm.service"]._analyze(self._full_lead())["clarity"]
        self.assertEqual(result["score"], 35)
        self.assertEqual(result["method"], "llm")

    def test_engagement(self):
        service = self.env["llm.service"]
        lead = self._full_lead()
        result = service._analyze(lead)["engagement"]
        self.assertLess(result["score"], 20)
        self.assertEqual((result["activity_count"], result["message_count"]), (0, 0))
        lead.activity_schedule("mail.mail_activity_data_call", summary="Call")
        lead.activity_schedule("mail.mail_activity_data_todo", summary="Demo").action_feedback(
            "done"
        )
        lead.message_post(
            body="Hello Alice", message_type="comment", subtype_xmlid="mail.mt_comment"
        )
        lead.message_post(
            body="Internal only", message_type="comment", subtype_xmlid="mail.mt_note"
        )
        lead.message_post(
            body="Customer reply",
            message_type="email",
            author_id=self.contact_1.id,
            subtype_xmlid="mail.mt_comment",
        )
        result = service._analyze(lead)["engagement"]
        self.assertEqual(result["activity_count"], 2, "one planned, one done")
        self.assertEqual(
            result["message_count"], 2, "one in, one out; the internal note is not a contact"
        )
        self.assertGreater(result["score"], 40)

    def test_calculate_weighted_score(self):
        outcome = self.env["llm.service"]._analyze(self._full_lead())
        expected = round(
            (
                outcome["completeness"]["score"] * 30
                + outcome["clarity"]["score"] * 40
                + outcome["engagement"]["score"] * 30
            )
            / 100,
            1,
        )
        self.assertEqual(outcome["calculated_score"], expected)
        self.assertEqual(outcome["method"], "rules")

    def test_research_customer(self):
        lead = self._full_lead()
        self.assertFalse(self.env["llm.service"]._research(lead)["success"])
        self._set_config(enable_customer_research=True)
        self._create_provider()
        self.server.default = (
            200,
            {},
            openai_body("Acme Industries needs an ERP; size unknown."),
            0,
        )
        result = self.env["llm.service"]._research(lead)
        self.assertTrue(result["success"])
        self.assertIn("Never invent", self.server.requests[-1]["json"]["messages"][0]["content"])


@tagged("llm_lead_scoring")
class TestLeadQueueing(LlmLeadScoringCommon):
    def _triggers(self):
        cron = self.env.ref("llm_lead_scoring.ir_cron_llm_lead_scoring_enrich")
        return self.env["ir.cron.trigger"].sudo().search_count([("cron_id", "=", cron.id)])

    def test_new_lead_is_queued_and_cron_triggered_on_commit(self):
        before = self._triggers()
        lead = self._full_lead()
        self.assertEqual(lead.ai_enrichment_status, "pending")
        self.env["crm.lead"].create({"name": "second"})
        self.env.cr.precommit.run()  # what commit does
        self.assertEqual(self._triggers(), before + 1, "one trigger per transaction")

    def test_auto_enrich_off_or_setting_off(self):
        lead = self.env["crm.lead"].create({"name": "manual", "auto_enrich": False})
        self.assertFalse(lead.ai_enrichment_status)
        self._set_config(auto_enrich_new_leads=False)
        self.env.registry.clear_cache()
        self.assertFalse(self.env["crm.lead"].create({"name": "off"}).ai_enrichment_status)

    def test_watched_changes_requeue(self):
        lead = self._full_lead()
        self.env["crm.lead"]._ai_enrich(lead)
        self.assertEqual(lead.ai_enrichment_status, "completed")
        lead.write(
            {"priority": "2", "tag_ids": [(4, self.env["crm.tag"].create({"name": "x"}).id)]}
        )
        self.assertEqual(
            lead.ai_enrichment_status, "completed", "not a field that changes the score"
        )
        lead.phone = "+32 2 555 00 00"
        self.assertEqual(lead.ai_enrichment_status, "pending")

    def test_update_setting_off(self):
        self._set_config(auto_enrich_on_update=False)
        self.env.registry.clear_cache()
        lead = self._full_lead()
        self.env["crm.lead"]._ai_enrich(lead)
        lead.description = "<p>new need</p>"
        self.assertEqual(lead.ai_enrichment_status, "completed")

    def test_won_does_not_requeue(self):
        lead = self._full_lead()
        self.env["crm.lead"]._ai_enrich(lead)
        lead.action_set_won()
        self.assertEqual(lead.ai_enrichment_status, "completed")

    @users("user_sales_salesman")
    def test_form_save_does_not_call_the_llm(self):
        self._create_provider()
        with Form(self.env["crm.lead"]) as form:
            form.name = "From the form"
            form.email_from = "bob@example.com"
        self.assertEqual(form.record.ai_enrichment_status, "pending")
        self.assertFalse(self.server.requests, "saving never blocks on an LLM call")


@tagged("llm_lead_scoring")
class TestLeadEnrichment(LlmLeadScoringCommon):
    def _only_these_queued(self, leads):
        self.env["crm.lead"].search(
            [("ai_enrichment_status", "in", ("pending", "failed")), ("id", "not in", leads.ids)]
        ).write({"ai_enrichment_status": "completed"})

    def test_score_now_returns_at_once_and_goes_first_in_line(self):
        self._create_provider()
        waiting = self.env["crm.lead"].create(
            [{"name": "Queued %s" % i, "description": "<p>need</p>"} for i in range(3)]
        )
        lead = self._full_lead()
        self._only_these_queued(waiting | lead)
        self._set_config(batch_size=1)
        action = lead.with_user(self.user_sales_salesman).action_ai_score_now()
        # the browser is not held: nothing was sent yet
        self.assertEqual(action["params"]["type"], "info")
        self.assertFalse(self.server.requests)
        self.assertEqual(lead.ai_requested_by, self.user_sales_salesman)
        self.env["crm.lead"]._cron_enrich_leads()
        self.assertEqual(len(self.server.requests), 4)
        self.assertIn("ERP roll-out", self.server.requests[0]["json"]["messages"][-1]["content"])
        self.assertEqual(lead.ai_enrichment_status, "completed")
        self.assertEqual(lead.ai_strengths, "Budget stated")
        self.assertFalse(lead.ai_requested_by)
        # the call is the salesperson's in the AI call log, and he is told
        log = self.env["llm.call.log"].search([("res_id", "=", lead.id)])
        self.assertEqual(log.user_id, self.user_sales_salesman)
        notification = self.env["bus.bus"].search([], order="id desc", limit=1)
        self.assertIn("Quality score of", notification.message)
        self.assertIn(",%s]" % self.user_sales_salesman.partner_id.id, notification.channel)

    def test_score_now_refused_on_others_lead(self):
        other = self._full_lead(user_id=self.user_sales_manager.id)
        with self.assertRaises(AccessError):
            other.with_user(self.user_sales_salesman).action_ai_score_now()

    def test_score_now_failure_notifies(self):
        self._create_provider()
        self.server.default = (503, {}, {"error": "down"}, 0)
        lead = self._full_lead()
        self._only_these_queued(lead)
        lead.action_ai_score_now()
        self.env["crm.lead"]._cron_enrich_leads()
        self.assertEqual(lead.ai_enrichment_status, "failed")
        notification = self.env["bus.bus"].search([], order="id desc", limit=1)
        self.assertIn("failed", notification.message)

    def test_internal_note_and_history_trend(self):
        self._create_provider()
        lead = self._full_lead()
        messages = len(lead.message_ids)
        with freeze_time("2026-01-05 10:00:00"):
            self.env["crm.lead"]._ai_enrich(lead)
        first = lead.ai_probability_score
        self.assertEqual(len(lead.message_ids), messages, "a first score is no news")
        self.server.default = (200, {}, openai_body(analysis_json(clarity=10)), 0)
        with freeze_time("2026-01-06 10:00:00"):
            self.env["crm.lead"]._ai_enrich(lead)
        note = lead.message_ids[0]
        self.assertIn("Quality score", note.body)
        self.assertEqual(note.subtype_id, self.env.ref("mail.mt_note"))
        self.assertFalse(note.notified_partner_ids, "a note, not a message to followers")
        self.assertNotIn("sk-", note.body)
        self.assertEqual(lead.ai_score_trend, "down")
        self.assertLess(lead.ai_probability_score, first)
        history = self.env["crm.lead.score.history"].search([("lead_id", "=", lead.id)])
        self.assertEqual(history.mapped("trend"), ["down", "new"])
        self.assertAlmostEqual(history[0].change, lead.ai_probability_score - first, places=1)
        self.assertIn("was", lead.message_ids[0].body)

    def test_install_queues_active_leads_and_the_cron_scores_them_quietly(self):
        Lead = self.env["crm.lead"]
        Lead.search([("ai_enrichment_status", "in", ("pending", "failed"))]).write(
            {"ai_enrichment_status": "completed"}
        )
        lead = Lead.create({"name": "Old lead", "email_from": "old@example.com"})
        archived = Lead.create({"name": "Old archived lead", "active": False})
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE crm_lead SET ai_enrichment_status = NULL WHERE id = ANY(%s)",
            [(lead | archived).ids],
        )
        (lead | archived).invalidate_recordset()
        messages = len(lead.message_ids)
        Lead._ai_queue_existing()
        self.assertEqual(lead.ai_enrichment_status, "pending")
        self.assertFalse(archived.ai_enrichment_status, "archived leads are not scored")
        Lead._cron_enrich_leads()
        self.assertEqual(lead.ai_enrichment_status, "completed")
        self.assertEqual(lead.ai_analysis_method, "rules")
        self.assertEqual(len(lead.message_ids), messages, "a first score is no news")

    def test_queue_action(self):
        leads = self._full_lead() | self._full_lead(name="B")
        self.env["crm.lead"]._ai_enrich(leads)
        action = leads.action_ai_queue()
        self.assertEqual(set(leads.mapped("ai_enrichment_status")), {"pending"})
        self.assertIn("2 leads", action["params"]["message"])
