import json

from odoo.tests import tagged

from .common import SalesAgentLLMCommon

PERSONAL = (
    "Carla",
    "Customer",  # the contact's name, in full and in parts
    "carla@customer.example.com",
    "+32 475 98 76 54",
    "Diego",
    "Dalton",
    "diego.dalton@customer.example.com",
)


@tagged("crm_sales_agent")
class TestPrivacy(SalesAgentLLMCommon):
    """With "Do Not Send Personal Data", nothing personal leaves Odoo: drafting and tone
    prompts included; internal notes never leave Odoo unless the company allows it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.colleague = cls.env["res.partner"].create(
            {
                "name": "Diego Dalton",
                "email": "diego.dalton@customer.example.com",
                "phone": "+32 475 11 22 33",
            }
        )

    def _lead_with_history(self):
        lead = self._lead(
            age_days=1,
            name="Office chairs",
            contact_name="Carla Customer",
            email_from="Carla Customer <carla@customer.example.com>",
            phone="+32 475 98 76 54",
            description="<p>Carla needs 40 chairs; call her on +32 475 98 76 54.</p>",
        )
        lead.message_post(
            body="Diego Dalton here (diego.dalton@customer.example.com, +32 475 11 22 33): "
            "this price is unacceptable, Carla agrees.",
            author_id=self.colleague.id,
            message_type="email",
            subtype_xmlid="mail.mt_comment",
        )
        lead.message_post(
            body="INTERNAL-ONLY: our floor price is 9k",
            message_type="comment",
            subtype_xmlid="mail.mt_note",
        )
        return lead

    def _sent(self, requests):
        return json.dumps([r["payload"]["messages"][1:] for r in requests], ensure_ascii=False)

    def _assert_nothing_personal(self, sent):
        for secret in PERSONAL:
            self.assertNotIn(secret, sent)
        self.assertIn("[email]", sent)
        self.assertIn("[contact]", sent)

    def test_drafting_prompt_without_personal_data_or_internal_notes(self):
        self._provider()
        self.env.company.llm_exclude_personal_data = True
        lead = self._lead_with_history()
        with self.llm_answers(lambda payload: (200, "Subject: Chairs\n\nHello")) as requests:
            draft = (
                self.env["crm.sales.agent.draft"]
                .with_user(self.user_sales_salesman)
                .create({"lead_id": lead.id, "kind": "email"})
            )
            self._generate(draft)
            self.assertEqual(len(requests), 1)
            sent = self._sent(requests)
        self._assert_nothing_personal(sent)
        self.assertIn("[phone]", sent)
        self.assertNotIn("INTERNAL-ONLY", sent)
        self.assertIn("unacceptable", sent)  # the customer's words themselves are kept
        log = self.env["llm.call.log"].search(
            [("purpose", "=", "drafting"), ("res_id", "=", lead.id)]
        )
        self.assertEqual((len(log), log.user_id), (1, self.user_sales_salesman))
        self.assertNotIn("Carla", log.content_sent)

    def test_internal_notes_only_when_allowed(self):
        self._provider()
        self.env.company.llm_send_internal_notes = True
        lead = self._lead_with_history()
        with self.llm_answers(lambda payload: (200, "Subject: Chairs\n\nHello")) as requests:
            self._generate(
                self.env["crm.sales.agent.draft"].create({"lead_id": lead.id, "kind": "email"})
            )
            self.assertIn("INTERNAL-ONLY", self._sent(requests))

    def test_tone_prompt_without_personal_data(self):
        self._provider()
        self.env.company.llm_exclude_personal_data = True
        lead = self._lead_with_history()
        with self.llm_answers(lambda payload: (200, "negative")) as requests:
            self.Lead._cron_escalate()
            self.env["llm.job"]._cron_run_jobs()
            self.Lead._cron_escalate()
            ours = [r for r in requests if "unacceptable" in json.dumps(r["payload"])]
            self.assertEqual(len(ours), 1)
            self._assert_nothing_personal(self._sent(ours))
        self.assertEqual(lead.sales_agent_tone, "negative")
        log = self.env["llm.call.log"].search([("purpose", "=", "tone"), ("res_id", "=", lead.id)])
        self.assertEqual(len(log), 1)

    def test_tone_switched_off_for_the_company_sends_nothing(self):
        self._provider()
        self.env.company.llm_purpose_tone = False
        lead = self._lead_with_history()
        with self.llm_answers(lambda payload: (200, "negative")) as requests:
            self.Lead._cron_escalate()
            self.env["llm.job"]._cron_run_jobs()
            self.Lead._cron_escalate()
            self.assertFalse(requests)
        self.assertFalse(lead.sales_agent_tone)

    def test_drafting_refused_by_budget_falls_back_to_template(self):
        self._provider()
        self.env.company.llm_budget_requests_per_minute = 1
        lead = self._lead_with_history()
        Draft = self.env["crm.sales.agent.draft"].with_user(self.user_sales_salesman)
        with self.llm_answers(lambda payload: (200, "Subject: Chairs\n\nHello")) as requests:
            first = Draft.create({"lead_id": lead.id, "kind": "email"})
            second = Draft.create({"lead_id": lead.id, "kind": "email", "instructions": "Be brief"})
            first.action_generate()
            self._generate(second)
            self.assertEqual(len(requests), 1)
        self.assertFalse(first.is_template)
        self.assertTrue(second.is_template)
        self.assertIn("requests per minute", second.generation_note)
