from odoo.tests import tagged

from .common import SalesAgentLLMCommon


@tagged("crm_sales_agent")
class TestDraftingQuality(SalesAgentLLMCommon):
    """What a small local model writes is checked before it is shown as a draft."""

    def _generate(self, kind, answer):
        lead = self._lead(age_days=1, name="Office chairs", description="<p>40 chairs</p>")
        draft = self.env["crm.sales.agent.draft"].create({"lead_id": lead.id, "kind": kind})
        with self.llm_answers(lambda payload: (200, answer(payload))):
            draft.action_generate()
            self.env["llm.job"]._cron_run_jobs()
        return draft

    def test_an_echo_of_the_prompt_is_not_a_draft(self):
        self._provider()
        draft = self._generate("email", lambda payload: payload["messages"][-1]["content"])
        self.assertTrue(draft.is_template)
        self.assertNotIn("<lead_data>", draft.body)
        self.assertIn("data markers", draft.generation_note)
        log = self.env["llm.call.log"].search(
            [("purpose", "=", "drafting"), ("res_id", "=", draft.lead_id.id)]
        )
        self.assertEqual((log.outcome, log.error_kind), ("invalid", "invalid_answer"))

    def test_a_json_dump_is_not_a_draft(self):
        self._provider()
        draft = self._generate("email", lambda payload: '{"subject": "Hi", "body": "Hello"}')
        self.assertTrue(draft.is_template)
        self.assertIn("JSON", draft.generation_note)

    def test_an_sms_over_two_parts_is_not_a_draft(self):
        self._provider()
        draft = self._generate("sms", lambda payload: "Hello, " + "we have chairs. " * 40)
        self.assertTrue(draft.is_template)
        self.assertIn("SMS parts", draft.generation_note)

    def test_a_real_draft_is_kept(self):
        self._provider()
        draft = self._generate(
            "sms", lambda payload: "Hello, your 40 chairs are ready. Can we call tomorrow?"
        )
        self.assertFalse(draft.is_template)
        self.assertEqual(draft.sms_parts, 1)
