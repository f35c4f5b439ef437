import json
from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from .common import LlmLeadScoringCommon, analysis_json, openai_body


def _sent_text(request):
    """Everything a recorded request sent, as one string."""
    return json.dumps(request["json"], ensure_ascii=False)


@tagged("llm_lead_scoring")
class TestGatewaySettings(LlmLeadScoringCommon):
    """Settings saved the way the settings page saves them read back exactly."""

    def _save(self, **vals):
        self.env["res.config.settings"].with_user(self.user_admin).create(vals).execute()

    def _read(self):
        return self.env["res.config.settings"].with_user(self.user_admin).create({})

    def test_switches_turned_off_stay_off(self):
        switches = {
            "llm_auto_enrich_enabled": False,
            "llm_auto_enrich_new_leads": False,
            "llm_auto_enrich_on_update": False,
            "llm_purpose_scoring": False,
            "llm_purpose_tone": False,
            "llm_purpose_drafting": False,
        }
        self._save(**switches)
        settings = self._read()
        for name in switches:
            self.assertFalse(settings[name], name)
        # the next save of the page (nothing changed) keeps them off
        self._read().execute()
        settings = self._read()
        for name in switches:
            self.assertFalse(settings[name], name)
        config = self.env["llm.service"]._get_config()
        self.assertFalse(config["auto_enrich_enabled"])
        self.assertFalse(config["purpose_drafting"])
        # and on again
        self._save(llm_auto_enrich_enabled=True)
        self.assertTrue(self._read().llm_auto_enrich_enabled)
        self.assertFalse(self._read().llm_purpose_tone)

    def test_zero_is_a_value(self):
        self._save(
            llm_weight_completeness=0,
            llm_weight_clarity=50,
            llm_weight_engagement=50,
            llm_budget_tokens_per_day=0,
            llm_log_retention_days=0,
        )
        self._read().execute()  # saved twice: nothing refused, nothing changed
        settings = self._read()
        self.assertEqual(
            (
                settings.llm_weight_completeness,
                settings.llm_weight_clarity,
                settings.llm_weight_engagement,
            ),
            (0, 50, 50),
        )
        self.assertEqual(settings.llm_log_retention_days, 0)
        outcome = self.env["llm.service"]._analyze(self._full_lead())
        self.assertEqual(outcome["weights"], {"completeness": 0, "clarity": 50, "engagement": 50})

    def test_settings_are_per_company(self):
        other = self.env["res.company"].create({"name": "Other AI Company"})
        self.user_admin.company_ids |= other
        self._save(llm_exclude_personal_data=True, llm_budget_requests_per_minute=7)
        self.env["res.config.settings"].with_user(self.user_admin).with_company(other).create(
            {"llm_budget_requests_per_minute": 3}
        ).execute()
        service = self.env["llm.service"]
        self.assertEqual(service._get_config()["budget_requests_per_minute"], 7)
        self.assertTrue(service._get_config()["exclude_personal_data"])
        self.assertEqual(service._get_config(other)["budget_requests_per_minute"], 3)
        self.assertFalse(service._get_config(other)["exclude_personal_data"])


@tagged("llm_lead_scoring")
class TestGatewayAudit(LlmLeadScoringCommon):
    def test_one_log_row_per_call_with_purpose_and_record(self):
        provider = self._create_provider()
        lead = self._full_lead()
        self.env["crm.lead"].search(
            [("ai_enrichment_status", "in", ("pending", "failed")), ("id", "!=", lead.id)]
        ).write({"ai_enrichment_status": "completed"})
        lead.with_user(self.user_sales_salesman).action_ai_score_now()
        self.env["crm.lead"]._cron_enrich_leads()
        logs = self.env["llm.call.log"].search([("res_id", "=", lead.id)])
        self.assertEqual(len(logs), 1)
        self.assertEqual(len(self.server.requests), 1)
        self.assertRecordValues(
            logs,
            [
                {
                    "purpose": "scoring",
                    "user_id": self.user_sales_salesman.id,
                    "company_id": lead.company_id.id,
                    "res_model": "crm.lead",
                    "provider_id": provider.id,
                    "model_name": "test-model",
                    "tokens_in": 12,
                    "tokens_out": 34,
                    "outcome": "ok",
                }
            ],
        )
        self.assertIn("ERP roll-out", logs.content_sent)
        # the salesperson sees his row, another salesperson does not
        Log = self.env["llm.call.log"]
        self.assertEqual(Log.with_user(self.user_sales_salesman).search([]), logs)
        self.assertFalse(Log.with_user(self.user_sales_leads).search([]))
        self.assertIn(logs, Log.with_user(self.user_sales_manager).search([]))

    def test_unusable_answer_is_logged_as_invalid(self):
        self._create_provider()
        self.server.default = (200, {}, openai_body("The lead looks fine."), 0)
        lead = self._full_lead()
        self.env["crm.lead"]._ai_enrich(lead)
        log = self.env["llm.call.log"].search([("res_id", "=", lead.id)])
        self.assertEqual((log.outcome, log.error_kind), ("invalid", "invalid_answer"))

    def test_errors_do_not_echo_the_provider_answer(self):
        self._create_provider()
        self.server.default = (400, {}, {"error": {"message": "INTERNAL-DETAIL-42"}}, 0)
        lead = self._full_lead()
        self.env["crm.lead"]._ai_enrich(lead)
        self.assertNotIn("INTERNAL-DETAIL-42", lead.ai_enrichment_error)
        self.assertIn("HTTP 400", lead.ai_enrichment_error)
        log = self.env["llm.call.log"].search([("res_id", "=", lead.id)])
        self.assertIn("INTERNAL-DETAIL-42", log.with_user(self.user_sales_manager).error_detail)

    def test_redirects_are_not_followed(self):
        self._create_provider()
        self.server.default = (302, {"Location": "http://127.0.0.1:9/elsewhere"}, "", 0)
        result = self.env["llm.service"]._request("test", [{"role": "user", "content": "x"}])
        self.assertFalse(result["success"])
        self.assertIn("redirect", result["error"])
        self.assertEqual(len(self.server.requests), 1)

    def test_purpose_switched_off_sends_nothing(self):
        self._create_provider()
        self._set_config(purpose_scoring=False)
        lead = self._full_lead()
        self.env["crm.lead"]._ai_enrich(lead)
        self.assertEqual(self.server.requests, [])
        self.assertEqual(lead.ai_enrichment_status, "completed")
        self.assertEqual(lead.ai_analysis_method, "rules")

    def test_retention_purges_old_rows(self):
        self._create_provider()
        self.env["llm.service"]._request("test", [{"role": "user", "content": "x"}])
        self.env["llm.service"]._request("test", [{"role": "user", "content": "y"}])
        old, recent = self.env["llm.call.log"].search([], order="id", limit=2)
        old.sudo().write({"date": fields.Datetime.now() - timedelta(days=91)})
        self.env["llm.call.log"]._gc_old_calls()
        self.assertFalse(old.exists())
        self.assertTrue(recent.exists())
        self._set_config(log_retention_days=0)  # keep forever
        recent.sudo().write({"date": fields.Datetime.now() - timedelta(days=900)})
        self.env["llm.call.log"]._gc_old_calls()
        self.assertTrue(recent.exists())


@tagged("llm_lead_scoring")
class TestGatewayBudget(LlmLeadScoringCommon):
    def test_rate_limit_refuses_the_call_at_the_cap_and_the_lead_waits(self):
        self._create_provider()
        self._set_config(budget_requests_per_minute=2)
        backlog = self.env["crm.lead"].search(
            [("ai_enrichment_status", "in", ("pending", "failed"))]
        )
        backlog.write({"ai_enrichment_status": "completed"})  # only this test's leads queued
        leads = self.env["crm.lead"].create(
            [{"name": "Budget lead %s" % i, "description": "<p>need %s</p>" % i} for i in range(3)]
        )
        self.env["crm.lead"]._cron_enrich_leads()
        self.assertEqual(len(self.server.requests), 2, "the third call is refused")
        done, waiting = leads[:2], leads[2]
        self.assertEqual(set(done.mapped("ai_enrichment_status")), {"completed"})
        # scored by rules now, still queued for the LLM after the window, no attempt used
        self.assertEqual(waiting.ai_enrichment_status, "pending")
        self.assertEqual(waiting.ai_analysis_method, "rules")
        self.assertEqual(waiting.ai_enrichment_attempts, 0)
        self.assertIn("requests per minute", waiting.ai_enrichment_error)
        self.assertGreater(waiting.ai_next_retry_date, fields.Datetime.now())
        self.assertEqual(self.env["llm.call.log"].search_count([("purpose", "=", "scoring")]), 2)
        # the next run inside the window sends nothing
        self.env["crm.lead"]._cron_enrich_leads()
        self.assertEqual(len(self.server.requests), 2)
        # after the window the lead completes with the LLM
        self.env["llm.call.log"].search([]).write(
            {"date": fields.Datetime.now() - timedelta(minutes=2)}
        )
        waiting.write({"ai_next_retry_date": fields.Datetime.now() - timedelta(seconds=1)})
        self.env["crm.lead"]._cron_enrich_leads()
        self.assertEqual(len(self.server.requests), 3)
        self.assertEqual(waiting.ai_enrichment_status, "completed")
        self.assertEqual(waiting.ai_analysis_method, "llm")

    def test_daily_tokens_warn_managers_at_80_percent_then_refuse(self):
        provider = self._create_provider(max_tokens=100)
        # each answer reports 1000 tokens; the cap is 2400 tokens a day
        self.server.default = (200, {}, openai_body(analysis_json(), 600, 400), 0)
        self._set_config(budget_tokens_per_day=2400)
        lead_a, lead_b, lead_c = (self._full_lead(name="Tokens %s" % i) for i in range(3))
        Lead = self.env["crm.lead"]
        Lead._ai_enrich(lead_a)
        self.assertFalse(provider.activity_ids)
        Lead._ai_enrich(lead_b)  # 2000 of 2400: over 80 %
        activities = provider.activity_ids
        self.assertTrue(activities)
        self.assertIn(self.user_sales_manager, activities.user_id)
        self.assertIn("80", activities[0].summary)
        Lead._ai_enrich(lead_c)  # would pass the cap: refused, no HTTP
        self.assertEqual(len(self.server.requests), 2)
        self.assertEqual(lead_c.ai_enrichment_status, "pending")
        self.assertIn("tokens per day", lead_c.ai_enrichment_error)
        self.assertIn("100", provider.activity_ids.sorted("id")[-1].summary)
        # warned once per window and level
        count = len(provider.activity_ids)
        Lead._ai_enrich(lead_c)
        self.assertEqual(len(provider.activity_ids), count)

    def test_monthly_cost_cap(self):
        self._create_provider(price_input=1000000.0, price_output=0.0)
        self._set_config(budget_monthly_cost=5.0)
        service = self.env["llm.service"]
        first = service._request("test", [{"role": "user", "content": "x"}])  # 12 tokens: 12.0
        self.assertTrue(first["success"])
        second = service._request("test", [{"role": "user", "content": "y"}])
        self.assertEqual(second["error_kind"], "budget")
        self.assertIn("monthly", second["error"])
        self.assertEqual(len(self.server.requests), 1)


@tagged("llm_lead_scoring")
class TestGatewayPrivacy(LlmLeadScoringCommon):
    def test_personal_data_removed_from_everything_sent(self):
        self._create_provider()
        self._set_config(exclude_personal_data=True)
        lead = self._full_lead(
            description="<p>Call Alice Martin on +32 475 12 34 56 or write to "
            "alice.martin@acme.example.com; her assistant Bob Stone too.</p>"
        )
        customer = self.env["res.partner"].create(
            {"name": "Bob Stone", "email": "bob.stone@acme.example.com"}
        )
        lead.message_post(
            body="Hello, Bob Stone here (bob.stone@acme.example.com, 0475 99 88 77).",
            author_id=customer.id,
            message_type="email",
        )
        self.env["crm.lead"]._ai_enrich(lead)
        sent = _sent_text(self.server.requests[0])
        for secret in ("Alice", "Martin", "alice.martin@", "475 12 34 56", "Bob", "Stone"):
            self.assertNotIn(secret, sent)
        self.assertIn("[email]", sent)
        self.assertIn("[phone]", sent)
        log = self.env["llm.call.log"].search([("res_id", "=", lead.id)])
        self.assertNotIn("Alice", log.content_sent)
        self.assertIn("[contact]", log.content_sent)

    def test_research_keeps_only_contacts_from_the_lead(self):
        self._create_provider()
        self._set_config(enable_customer_research=True)
        lead = self._full_lead(website="https://acme.example.com")
        self.server.default = (
            200,
            {},
            openai_body(
                "Acme (https://acme.example.com/about) makes tools. See also "
                "https://invented.example.org and call +1 555 0100 200 or sales@invented.io."
            ),
            0,
        )
        action = lead.with_user(self.user_sales_salesman).action_ai_research()
        message = action["params"]["message"]
        self.assertIn("https://acme.example.com/about", message)
        for invented in ("invented.example.org", "555 0100 200", "sales@invented.io"):
            self.assertNotIn(invented, message)
        log = self.env["llm.call.log"].search([("purpose", "=", "research")])
        self.assertEqual(len(log), 1)
