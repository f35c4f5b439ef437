from odoo.tests import HttpCase, tagged

from .common import SalesAgentLLMCommon

GOOD_EMAIL = "Subject: Your chairs\n\nHello Carla,\nthe 40 chairs can ship in May.\nSam"


@tagged("post_install", "-at_install", "crm_sales_agent")
class TestDraftingUi(SalesAgentLLMCommon, HttpCase):
    """ "Draft with AI" in a real browser, as a salesperson: every button of the wizard in
    each of its states (still working, cancelled, ready, rejected), with the AI job cron run
    between the tours as the cron worker would."""

    registry_test_mode = False  # SalesAgentCommon already runs the registry in test mode

    def test_drafting_in_the_browser(self):
        self._provider()
        lead = self.Lead.create(
            {
                "name": "Office chairs",
                "type": "opportunity",
                "user_id": self.user_sales_salesman.id,
                "team_id": self.sales_team_1.id,
                "partner_id": self.customer.id,
                "description": "40 ergonomic chairs before May",
            }
        )
        url = "/web#id=%s&model=crm.lead&view_type=form" % lead.id
        login = self.user_sales_salesman.login
        Draft = self.env["crm.sales.agent.draft"]
        messages = lead.message_ids
        with self.llm_answers(lambda payload: (200, GOOD_EMAIL)) as requests:
            self.start_tour(url, "crm_sales_agent_drafting_tour", login=login)
            self.assertFalse(requests, "no click waits on the AI")
            drafts = Draft.search([("lead_id", "=", lead.id)], order="id")
            self.assertEqual(drafts.mapped("state"), ["working"])
            self.env["llm.job"]._cron_run_jobs()
            self.assertEqual(len(requests), 1, "the cancelled request was never sent")
            self.start_tour(url, "crm_sales_agent_drafting_ready_tour", login=login)
        self.assertEqual(lead.message_ids, messages, "the composer was discarded: nothing sent")
        self.assertFalse(self.env["mail.mail"].search([("model", "=", "crm.lead")]))
        with self.llm_answers(lambda payload: (200, payload["messages"][-1]["content"])):
            self.env["llm.job"]._cron_run_jobs()
        self.assertEqual(drafts.state, "rejected", "an echo of the prompt is not a draft")
        self.start_tour(url, "crm_sales_agent_drafting_rejected_tour", login=login)
        self.assertEqual(drafts.state, "cancelled")
