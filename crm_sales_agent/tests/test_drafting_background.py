import json
import time

from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import SalesAgentLLMCommon, call_kw

GOOD_EMAIL = "Subject: Your chairs\n\nHello Carla,\nthe 40 chairs can ship in May.\nSam"
REFUSALS = ("odoo.exceptions.AccessError", "odoo.exceptions.UserError")
DRAFT = "crm.sales.agent.draft"


@tagged("post_install", "-at_install", "crm_sales_agent")
class TestDraftingBackground(SalesAgentLLMCommon, HttpCase):
    """ "Draft with AI" never holds the browser: the request queues an AI job and returns,
    the job cron writes the draft and notifies its author."""

    registry_test_mode = False  # SalesAgentCommon already runs the registry in test mode

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lead = cls.Lead.create(
            {
                "name": "Office chairs",
                "type": "opportunity",
                "user_id": cls.user_sales_salesman.id,
                "team_id": cls.sales_team_1.id,
                "partner_id": cls.customer.id,
                "description": "40 ergonomic chairs before May",
            }
        )
        cls.Draft = cls.env[DRAFT].with_user(cls.user_sales_salesman)

    def setUp(self):
        super().setUp()
        self.provider = self._provider()

    def _new_draft(self, kind="email", **vals):
        return self.Draft.create(dict({"lead_id": self.lead.id, "kind": kind}, **vals))

    def _notifications(self, user):
        """The live notifications sent to ``user`` (bus messages, newest last)."""
        channel = json.dumps(
            [self.env.cr.dbname, "res.partner", user.partner_id.id], separators=(",", ":")
        )
        rows = self.env["bus.bus"].sudo().search([("channel", "=", channel)], order="id")
        messages = [json.loads(row.message) for row in rows]
        return [m for m in messages if m["type"] == "simple_notification"]

    def _rpc(self, model, method, args, kwargs=None):
        return call_kw(self, model, method, args, kwargs).json()

    def _refused(self, answer):
        return "error" in answer and answer["error"]["data"]["name"] in REFUSALS

    # ------------------------------------------------------------
    # BACKGROUND
    # ------------------------------------------------------------

    def test_slow_server_the_click_returns_at_once(self):
        def slow(payload):
            time.sleep(2)
            return 200, GOOD_EMAIL

        draft = self._new_draft()
        self.authenticate(self.user_sales_salesman.login, self.user_sales_salesman.login)
        with self.llm_answers(slow) as requests:
            answer = self._rpc(DRAFT, "action_generate", [[draft.id]])
            self.assertNotIn("error", answer)
            self.assertEqual(answer["result"]["res_id"], draft.id)  # the wizard stays open
            self.assertFalse(requests, "the browser's request must not wait on the AI")
            self.env.invalidate_all()
            self.assertEqual(draft.state, "working")
            self.assertIn("notified", draft.generation_note)
            self.assertFalse(draft.body)
            self.env["llm.job"]._cron_run_jobs()
            self.assertEqual(len(requests), 1)
        self.assertEqual(draft.state, "ready")
        self.assertEqual((draft.subject, draft.is_template), ("Your chairs", False))
        self.assertIn("40 chairs can ship in May", draft.body)
        notice = self._notifications(self.user_sales_salesman)[-1]
        self.assertEqual(notice["payload"]["type"], "success")
        self.assertIn("Office chairs", notice["payload"]["message"])
        # the audit row names the salesperson who asked, not the cron
        log = self.env["llm.call.log"].search(
            [("purpose", "=", "drafting"), ("res_id", "=", self.lead.id)]
        )
        self.assertEqual((log.user_id, log.outcome), (self.user_sales_salesman, "ok"))

    def test_the_same_pending_request_is_not_paid_twice(self):
        first, second = self._new_draft(), self._new_draft()
        with self.llm_answers(lambda payload: (200, GOOD_EMAIL)) as requests:
            first.action_generate()
            first.action_generate()  # a second click while it is being written
            second.action_generate()  # the same request from another window
            self.assertEqual(first.job_id, second.job_id)
            self.env["llm.job"]._cron_run_jobs()
            self.assertEqual(len(requests), 1)
        self.assertEqual((first.state, second.state), ("ready", "ready"))
        self.assertEqual(first.body, second.body)
        # asked again once answered: a new request (a new draft is wanted)
        with self.llm_answers(lambda payload: (200, GOOD_EMAIL)) as requests:
            self._generate(first)
            self.assertEqual(len(requests), 1)

    def test_cancel_before_the_call_sends_nothing(self):
        draft = self._new_draft()
        with self.llm_answers(lambda payload: (200, GOOD_EMAIL)) as requests:
            draft.action_generate()
            job = draft.job_id.sudo()
            draft.action_cancel()
            self.assertEqual((draft.state, job.state), ("cancelled", "cancelled"))
            self.env["llm.job"]._cron_run_jobs()
            self.assertFalse(requests)
        self.assertFalse(draft.body)
        self.assertEqual(draft.state, "cancelled")
        self.assertFalse(self._notifications(self.user_sales_salesman))

    def test_cancel_during_the_call_drops_the_answer(self):
        draft = self._new_draft()
        draft.action_generate()
        job = draft.job_id.sudo()
        job.write({"state": "processing"})
        draft.action_cancel()
        with self.llm_answers(lambda payload: (200, GOOD_EMAIL)):
            job._run(time.monotonic() + 30)
        self.assertEqual((job.state, draft.state), ("cancelled", "cancelled"))
        self.assertFalse(draft.body)

    def test_an_echo_is_shown_as_rejected_and_can_be_retried(self):
        draft = self._new_draft()
        with self.llm_answers(lambda payload: (200, payload["messages"][-1]["content"])):
            self._generate(draft)
        self.assertEqual(draft.state, "rejected")
        self.assertTrue(draft.is_template)
        self.assertNotIn("<lead_data>", draft.body)
        self.assertIn("not usable", draft.generation_note)
        self.assertIn("data markers", draft.generation_note)
        notice = self._notifications(self.user_sales_salesman)[-1]["payload"]
        self.assertEqual(notice["type"], "warning")
        self.assertIn("Retry", notice["message"])
        log = self.env["llm.call.log"].search(
            [("purpose", "=", "drafting"), ("res_id", "=", self.lead.id)]
        )
        self.assertEqual(log.outcome, "invalid")
        with self.llm_answers(lambda payload: (200, GOOD_EMAIL)) as requests:
            draft.action_retry()
            self.assertEqual(draft.state, "working")
            self.env["llm.job"]._cron_run_jobs()
            self.assertEqual(len(requests), 1)
        self.assertEqual((draft.state, draft.is_template), ("ready", False))

    def test_a_failed_call_fails_at_once_and_can_be_retried(self):
        draft = self._new_draft("sms")
        with self.llm_answers(lambda payload: (503, "overloaded")) as requests:
            self._generate(draft)
            self.assertEqual(len(requests), 1)
            # not re-sent minutes later behind the user's back
            self.env["llm.job"]._cron_run_jobs()
            self.assertEqual(len(requests), 1)
        self.assertEqual(draft.state, "failed")
        self.assertIn("did not answer", draft.generation_note)
        self.assertEqual(draft.job_id.sudo().state, "failed")
        with self.llm_answers(lambda payload: (200, "Hi Carla, can we call tomorrow at 10?")):
            draft.action_retry()
            self.env["llm.job"]._cron_run_jobs()
        self.assertEqual(draft.state, "ready")
        self.assertEqual(draft.sms_parts, 1)

    def test_sms_asks_fewer_tokens_and_over_two_parts_is_rejected(self):
        draft = self._new_draft("sms")
        with self.llm_answers(lambda payload: (200, "Hello, " + "we have chairs. " * 40)) as reqs:
            self._generate(draft)
            self.assertEqual(reqs[0]["payload"]["max_tokens"], 200)
        self.assertEqual(draft.state, "rejected")
        self.assertIn("SMS parts", draft.generation_note)

    def test_a_stuck_job_ends_failed_and_the_draft_says_so(self):
        draft = self._new_draft()
        draft.action_generate()
        job = draft.job_id.sudo()
        job.write({"state": "processing", "processing_since": "2020-01-01 00:00:00"})
        job.write({"attempts": 2})
        with mute_logger("odoo.addons.llm_lead_scoring.models.llm_job"):
            self.env["llm.job"]._requeue_stuck()
        self.assertEqual(job.state, "failed")
        self.assertEqual(draft.state, "failed")
        self.assertIn("Interrupted", draft.generation_note)

    def test_lead_button_reopens_the_draft_and_composer_works(self):
        lead = self.lead.with_user(self.user_sales_salesman)
        action = lead.action_sales_agent_draft()
        self.assertFalse(action.get("res_id"))
        draft = self._new_draft()
        with self.llm_answers(lambda payload: (200, GOOD_EMAIL)):
            draft.action_generate()
            self.assertEqual(lead.action_sales_agent_draft()["res_id"], draft.id)
            self.env["llm.job"]._cron_run_jobs()
        action = lead.action_sales_agent_draft()
        self.assertEqual(action["res_id"], draft.id)
        composer = draft.action_open_composer()
        self.assertEqual(composer["context"]["default_subject"], "Your chairs")
        self.assertIn("40 chairs can ship in May", composer["context"]["default_body"])
        self.assertEqual(composer["context"]["default_partner_ids"], self.customer.ids)
        # another user does not get this draft back
        leader_action = self.lead.with_user(self.user_sales_leads).action_sales_agent_draft()
        self.assertFalse(leader_action.get("res_id"))

    def test_drafts_go_before_other_background_jobs(self):
        tone = self.env["llm.job"]._enqueue(
            "tone", self.lead, "Say the tone", [{"role": "user", "content": "Hello there"}]
        )
        draft = self._new_draft()
        draft.action_generate()
        batch = self.env["llm.job"]._lock_batch()
        self.assertEqual(batch[:1], draft.job_id.sudo())
        self.assertIn(tone, batch)

    def test_draft_for_without_ui(self):
        Draft = self.env[DRAFT].with_user(self.user_sales_salesman)
        stored = self.env[DRAFT].search_count([])
        with self.llm_answers(lambda payload: (200, GOOD_EMAIL)) as requests:
            result = Draft._draft_for(self.lead, "email", "Mention May")
            self.assertIn("Mention May", requests[0]["payload"]["messages"][1]["content"])
        self.assertEqual(result["subject"], "Your chairs")
        self.assertFalse(result["is_template"])
        with self.llm_answers(lambda payload: (200, payload["messages"][-1]["content"])):
            result = Draft._draft_for(self.lead, "sms", None)
        self.assertTrue(result["is_template"])
        self.assertIn("data markers", result["note"])
        self.assertEqual(self.env[DRAFT].search_count([]), stored)  # nothing stored

    # ------------------------------------------------------------
    # ACCESS (JSON-RPC, as the web client calls them)
    # ------------------------------------------------------------

    def test_access_per_role(self):
        portal = mail_new_test_user(self.env, login="dr_portal", groups="base.group_portal")
        employee = mail_new_test_user(self.env, login="dr_employee", groups="base.group_user")
        colleague_lead = self.Lead.create(
            {"name": "Colleague lead", "user_id": self.user_sales_manager.id}
        )
        salesman_draft = self._new_draft()
        salesman_draft.sudo().write({"body": "Hello", "generated": True})
        methods = ("action_generate", "action_retry", "action_cancel", "action_refresh")
        sequence = ("action_generate", "action_cancel", "action_retry", "action_refresh")
        # role: (user, lead he drafts on, allowed)
        roles = {
            "portal": (portal, self.lead, False),
            "employee": (employee, self.lead, False),
            "salesperson_other_lead": (self.user_sales_salesman, colleague_lead, False),
            "salesperson_own_lead": (self.user_sales_salesman, self.lead, True),
            "team_leader": (self.user_sales_leads, colleague_lead, True),
            "manager": (self.user_sales_manager, self.lead, True),
        }
        with self.llm_answers(lambda payload: (200, GOOD_EMAIL)) as requests:
            for role, (user, lead, allowed) in roles.items():
                with self.subTest(role=role):
                    self.authenticate(user.login, user.login)
                    answer = self._rpc(DRAFT, "create", [{"lead_id": lead.id}])
                    button = self._rpc("crm.lead", "action_sales_agent_draft", [[lead.id]])
                    if not allowed:
                        self.assertTrue(self._refused(answer), answer)
                        self.assertTrue(self._refused(button), button)
                        draft_id = salesman_draft.id if role != "salesperson_other_lead" else None
                        if draft_id is None:  # his draft, moved to a lead he may not write
                            draft_id = self._new_draft().id
                            self.env[DRAFT].browse(draft_id).sudo().write(
                                {"lead_id": colleague_lead.id, "body": "Hello"}
                            )
                        for method in methods + ("action_open_composer", "action_post_note"):
                            refused = self._rpc(DRAFT, method, [[draft_id]])
                            self.assertTrue(self._refused(refused), "%s %s" % (role, method))
                        continue
                    self.assertNotIn("error", answer)
                    self.assertNotIn("error", button)
                    draft_id = answer["result"]
                    for method in sequence + ("action_cancel",):
                        result = self._rpc(DRAFT, method, [[draft_id]])
                        self.assertNotIn("error", result, "%s %s" % (role, method))
                    # someone else's draft (transient: its creator's only)
                    if user != self.user_sales_salesman:
                        other = self._rpc(DRAFT, "action_generate", [[salesman_draft.id]])
                        self.assertTrue(self._refused(other), role)
            self.env.invalidate_all()
            Job = self.env["llm.job"].sudo()
            self.assertEqual(Job.search_count([("state", "!=", "cancelled")]), 0)
            self.assertEqual(Job.search_count([]), 6)  # generated, then retried, per role
            self.assertFalse(requests)
