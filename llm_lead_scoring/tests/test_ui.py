from odoo.tests import HttpCase, tagged

from .common import LlmLeadScoringCommon, analysis_json, openai_body

RESEARCH = "Acme Industries sells industrial equipment in Belgium; it needs an ERP for 50 users."


def answer(payload):
    """The local server: each purpose its answer, as a working model would."""
    text = " ".join(str(m.get("content")) for m in payload.get("messages", []))
    if "Reply with the single word: OK" in text:
        return (200, {}, openai_body("OK"), 0)
    if "You summarise what a CRM lead's own data says" in text:
        return (200, {}, openai_body(RESEARCH), 0)
    return (200, {}, openai_body(analysis_json()), 0)


@tagged("post_install", "-at_install", "llm_lead_scoring")
class TestLeadScoringUi(LlmLeadScoringCommon, HttpCase):
    """The AI of a lead and of a provider in a real browser: every button clicked."""

    def test_score_a_lead_in_the_browser(self):
        self.server.default = answer
        provider = self._create_provider()
        # new leads are not queued by themselves: the empty state, then the click
        self._set_config(enable_customer_research=True, auto_enrich_new_leads=False)
        lead = self._full_lead()
        self.assertFalse(lead.ai_enrichment_status)
        url = "/web#id=%s&model=crm.lead&view_type=form" % lead.id
        login = self.user_sales_salesman.login
        self.start_tour(url, "llm_lead_scoring_queue_tour", login=login)
        self.assertFalse(self.server.requests, "the click does not wait on the AI")
        self.assertEqual(lead.ai_requested_by, self.user_sales_salesman)
        self.env["crm.lead"]._cron_enrich_leads()
        self.assertEqual(lead.ai_analysis_method, "llm")
        self.start_tour(url, "llm_lead_scoring_scored_tour", login=login)
        provider_url = "/web#id=%s&model=llm.provider&view_type=form" % provider.id
        self.start_tour(provider_url, "llm_lead_scoring_provider_tour", login="admin")
        purposes = set(self.env["llm.call.log"].search([]).mapped("purpose"))
        self.assertLessEqual({"research", "scoring", "test"}, purposes)
