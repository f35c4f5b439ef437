from datetime import date, timedelta

from freezegun import freeze_time
from markupsafe import Markup

from odoo import fields
from odoo.tests import tagged

from .common import SalesAgentCommon, SalesAgentLLMCommon

NOW = "2024-06-12 10:00:00"  # a Wednesday


@tagged("crm_sales_agent")
class TestRisk(SalesAgentCommon):
    @freeze_time(NOW)
    def test_risk_no_contact(self):
        fresh = self._lead(age_days=1, name="Fresh")
        idle = self._lead(age_days=4, name="Idle")
        very_idle = self._lead(age_days=7, name="Very idle")
        self.Lead._cron_escalate()
        self.assertEqual(fresh.sales_agent_risk_level, "none")
        self.assertEqual(idle.sales_agent_risk_level, "low")
        self.assertEqual(idle.sales_agent_risk_reasons, "Never contacted, created 4 days ago")
        self.assertEqual(very_idle.sales_agent_risk_level, "medium")
        self.assertEqual(very_idle.sales_agent_next_action, "Make a first contact")
        self.assertEqual(very_idle.sales_agent_next_action_date, date(2024, 6, 12))
        self.assertEqual(
            very_idle.sales_agent_next_action_type_id, self.env.ref("mail.mail_activity_data_call")
        )
        # the "At risk" filter searches the assessment kept in its own table
        leads = fresh | idle | very_idle
        self.assertEqual(
            self.Lead.search(
                [("id", "in", leads.ids), ("sales_agent_risk_level", "in", ("medium", "high"))]
            ),
            very_idle,
        )
        self.assertEqual(
            self.Lead.with_user(self.user_sales_salesman).search(
                [("id", "in", leads.ids), ("sales_agent_risk_level", "=", "low")]
            ),
            idle,
        )
        # a second run updates the one assessment row of each lead
        states = leads.sales_agent_state_ids
        self.assertEqual(len(states), 3)
        self.Lead._cron_escalate()
        self.assertEqual(leads.sales_agent_state_ids, states)
        self.assertEqual(idle.sales_agent_risk_reasons, "Never contacted, created 4 days ago")

    @freeze_time(NOW)
    def test_risk_closing_date_passed(self):
        lead = self._lead(
            age_days=1, type="opportunity", date_deadline=fields.Date.today() - timedelta(days=5)
        )
        self.Lead._cron_escalate()
        self.assertEqual(lead.sales_agent_risk_level, "medium")
        self.assertEqual(lead.sales_agent_risk_reasons, "Expected closing date passed 5 days ago")
        self.assertTrue(lead.sales_agent_next_action.startswith("Confirm the decision date"))

    @freeze_time(NOW)
    def test_risk_overdue_activity(self):
        lead = self._lead(age_days=1)
        lead.activity_schedule(
            "mail.mail_activity_data_call",
            user_id=self.user_sales_salesman.id,
            date_deadline=fields.Date.today() - timedelta(days=2),
        )
        self.Lead._cron_escalate()
        self.assertEqual(lead.sales_agent_risk_level, "low")
        self.assertEqual(
            lead.sales_agent_risk_reasons, "1 overdue activities, the oldest by 2 days"
        )
        self.assertEqual(
            lead.sales_agent_next_action, "Complete or reschedule the overdue activities"
        )

    def test_risk_stuck_in_stage(self):
        """The usual time in a stage is the dashboard's norm: the 90th percentile of the time
        won deals stayed in it (2 days here), from the stage history: a lead there for 10 days
        is stuck, one there for 2 days is not. The history deals are won (the norms learn from
        won deals only since they are the dashboard's Bottlenecks norms)."""
        with freeze_time("2024-05-01 10:00:00"):
            history = self.Lead.browse()
            for index in range(3):
                history |= self._lead(
                    age_days=0,
                    type="opportunity",
                    name="History %s" % index,
                    stage_id=self.stage_team1_1.id,
                )
            self.flush_tracking()
        with freeze_time("2024-05-03 10:00:00"):
            history.write({"stage_id": self.stage_team1_2.id})
            self.flush_tracking()
        with freeze_time("2024-05-06 10:00:00"):
            history.write({"stage_id": self.stage_gen_won.id})
            self.flush_tracking()
        with freeze_time(NOW):
            self.assertAlmostEqual(
                self.Lead._sales_agent_stage_usual_days()[self.stage_team1_1.id], 2.0
            )
            stuck = self._lead(age_days=10, type="opportunity", stage_id=self.stage_team1_1.id)
            moving = self._lead(
                age_days=10,
                stage_age_days=2,
                type="opportunity",
                stage_id=self.stage_team1_1.id,
                name="Moving",
            )
            self._post_email(stuck, self.user_sales_salesman)
            self._post_email(moving, self.user_sales_salesman)
            self.Lead._cron_escalate()
        self.assertEqual(stuck.sales_agent_risk_level, "medium")
        self.assertEqual(stuck.sales_agent_risk_reasons, "In stage New for 10 days (usually 2.0)")
        self.assertEqual(stuck.sales_agent_next_action, "Book a meeting to move the deal past New")
        self.assertEqual(moving.sales_agent_risk_level, "none")

    @freeze_time(NOW)
    def test_risk_high_score_unattended(self):
        lead = self._lead(age_days=2)
        lead.sudo().write({"ai_probability_score": 85})
        self.Lead._cron_escalate()
        self.assertEqual(lead.sales_agent_risk_level, "medium")
        self.assertEqual(
            lead.sales_agent_risk_reasons, "High quality score (85) not contacted for 48 hours"
        )
        self.assertEqual(lead.sales_agent_next_action, "Call now: this is a high-potential lead")

    @freeze_time(NOW)
    def test_next_action_reply_and_ai(self):
        """Reply when the customer wrote last; otherwise the AI analysis' next action."""
        waiting = self._lead(age_days=10, name="Waiting")
        with freeze_time("2024-06-08 10:00:00"):
            self._post_inbound(waiting, "Could you send the price list?")
        analysed = self._lead(age_days=1, name="Analysed")
        analysed.sudo().write({"ai_next_action": "Send the case study of a similar customer"})
        self.Lead._cron_escalate()
        self.assertEqual(waiting.sales_agent_next_action, "Reply to the customer's last message")
        self.assertEqual(waiting.sales_agent_next_action_reason, "No contact for 4 days")
        self.assertEqual(
            waiting.sales_agent_next_action_type_id, self.env.ref("mail.mail_activity_data_email")
        )
        self.assertEqual(
            analysed.sales_agent_next_action, "Send the case study of a similar customer"
        )
        self.assertEqual(analysed.sales_agent_next_action_reason, "Suggested by the AI analysis")
        self.assertEqual(analysed.sales_agent_next_action_date, date(2024, 6, 14))

    @freeze_time(NOW)
    def test_next_action_apply(self):
        lead = self._lead(age_days=8)
        self.Lead._cron_escalate()
        lead.with_user(self.user_sales_salesman).action_sales_agent_apply_next_action()
        activity = self._agent_activities(lead, "next_action")
        self.assertEqual(activity.summary, "Make a first contact")
        self.assertEqual(activity.user_id, self.user_sales_salesman)
        self.assertEqual(activity.date_deadline, date(2024, 6, 12))
        self.assertEqual(activity.activity_type_id, self.env.ref("mail.mail_activity_data_call"))

    @freeze_time(NOW)
    def test_risk_switched_off(self):
        self._set_config(risk_enabled=False, escalation_enabled=False)
        lead = self._lead(age_days=8)
        self.Lead._cron_escalate()
        self.assertFalse(lead.sales_agent_risk_level)
        self.assertFalse(lead.sales_agent_next_action)


@tagged("crm_sales_agent")
class TestTone(SalesAgentLLMCommon):
    def test_tone_negative_with_llm(self):
        self._provider()
        lead = self._lead(age_days=1)
        self._post_inbound(lead, "This is unacceptable. We are cancelling the project.")
        with self.llm_answers(lambda payload: (200, "negative")) as requests:
            # the agent's batch only queues the question: no HTTP while its rows are locked
            self.Lead._cron_escalate()
            self.assertFalse(requests)
            self.assertFalse(lead.sales_agent_tone)
            self.env["llm.job"]._cron_run_jobs()
            ours = [
                r for r in requests if "unacceptable" in r["payload"]["messages"][-1]["content"]
            ]
            self.assertEqual(len(ours), 1)
            self.assertIn("tone", ours[0]["payload"]["messages"][0]["content"])
            # the next run reads the answer
            self.Lead._cron_escalate()
            sent = len(requests)
            self.assertEqual(lead.sales_agent_tone, "negative")
            self.assertIn(
                "Negative tone in the customer's latest message", lead.sales_agent_risk_reasons
            )
            self.assertEqual(lead.sales_agent_risk_level, "medium")
            self.assertEqual(
                lead.sales_agent_next_action, "Call the customer to address their concerns"
            )
            # the same message is not analysed twice
            self.Lead._cron_escalate()
            self.env["llm.job"]._cron_run_jobs()
            self.assertEqual(len(requests), sent)
            self.assertEqual(lead.sales_agent_tone, "negative")

    def test_unreadable_tone_is_asked_once_and_stored_unknown(self):
        self._provider()
        lead = self._lead(age_days=1)
        self._post_inbound(lead, "Hmm, let me think about your offer.")
        with self.llm_answers(lambda payload: (200, "**The tone is hard to say**")) as requests:
            for _run in range(3):
                self.Lead._cron_escalate()
                self.env["llm.job"]._cron_run_jobs()
            ours = [r for r in requests if "let me think" in str(r["payload"])]
            self.assertEqual(len(ours), 1, "one paid call, not one per run")
        self.assertEqual(lead.sales_agent_tone, "unknown")
        with self.llm_answers(lambda payload: (200, "**Negative**")) as requests:
            self._post_inbound(lead, "This is not acceptable.")
            self.Lead._cron_escalate()
            self.env["llm.job"]._cron_run_jobs()
            self.Lead._cron_escalate()
            self.assertEqual(len([r for r in requests if "not acceptable" in str(r["payload"])]), 1)
        self.assertEqual(lead.sales_agent_tone, "negative")

    def test_tone_skipped_without_provider_or_on_failure(self):
        lead = self._lead(age_days=1)
        self._post_inbound(lead, "This is unacceptable.")
        with self.llm_answers(lambda payload: (200, "negative")) as requests:
            self.Lead._cron_escalate()
            self.assertFalse(requests)
        self.assertFalse(lead.sales_agent_tone)
        self.assertEqual(lead.sales_agent_risk_level, "none")
        self._provider()
        with self.llm_answers(lambda payload: (500, "boom")) as requests:
            self.Lead._cron_escalate()
            self.env["llm.job"]._cron_run_jobs()
            self.Lead._cron_escalate()
            self.assertTrue(requests)
        self.assertFalse(lead.sales_agent_tone)
        self.assertEqual(lead.sales_agent_risk_level, "none")


@tagged("crm_sales_agent")
class TestEscalation(SalesAgentCommon):
    def _escalations(self, lead, **domain):
        search = [("lead_id", "=", lead.id)] + [(k, "=", v) for k, v in domain.items()]
        return self.env["crm.sales.agent.escalation"].search(search, order="level")

    def _overdue_lead(self, days_late=4):
        lead = self._lead(age_days=1, type="opportunity")
        lead.activity_schedule(
            "mail.mail_activity_data_call",
            user_id=self.user_sales_salesman.id,
            date_deadline=fields.Date.today() - timedelta(days=days_late),
        )
        return lead

    def test_overdue_followup_both_levels(self):
        with freeze_time(NOW):
            lead = self._overdue_lead(days_late=4)
            not_late = self._overdue_lead(days_late=3)
            self.Lead._cron_escalate()
            escalation = self._escalations(lead)
            self.assertRecordValues(
                escalation,
                [
                    {
                        "rule": "overdue_followup",
                        "level": 1,
                        "state": "open",
                        "from_user_id": self.user_sales_salesman.id,
                        "to_user_id": self.user_sales_manager.id,
                        "team_id": self.sales_team_1.id,
                        "reason": "A follow-up is overdue by 4 days",
                    }
                ],
            )
            self.assertFalse(self._escalations(not_late))
            activity = escalation.activity_id
            self.assertEqual(activity.user_id, self.user_sales_manager)
            self.assertEqual(activity.activity_type_id, self.escalation_type)
            self.assertEqual(activity.summary, "Escalation (level 1): Overdue follow-up")
            note = lead.message_ids.filtered(lambda m: "Escalated to" in (m.body or ""))
            self.assertEqual(len(note), 1)
            self.assertTrue(note.is_internal)
            self.assertIn(self.user_sales_manager.name, note.body)
            # the same note as mail.thread._message_log_batch would log
            self.assertEqual(
                str(note.body),
                "<p>Escalated to %s (level 1): Overdue follow-up. A follow-up is overdue by 4 days"
                "</p>" % self.user_sales_manager.name,
            )
            reference = lead._message_log_batch({lead.id: Markup("<p>x</p>")})
            for fname in (
                "model",
                "res_id",
                "message_type",
                "subtype_id",
                "is_internal",
                "author_id",
                "email_from",
                "reply_to",
                "record_name",
            ):
                self.assertEqual(note[fname], reference[fname], fname)
            self.assertEqual(note.subtype_id, self.env.ref("mail.mt_note"))
            self.assertTrue(note.message_id)
            self.assertEqual(lead.message_ids[:2], reference | note)
            # idempotent
            self.Lead._cron_escalate()
            self.assertEqual(self._escalations(lead), escalation)
        with freeze_time("2024-06-13 10:00:00"):  # 1 day later: not yet second level
            self.Lead._cron_escalate()
            self.assertEqual(self._escalations(lead), escalation)
        with freeze_time("2024-06-14 10:00:00"):  # 2 days unresolved: next manager up
            self.Lead._cron_escalate()
            escalations = self._escalations(lead)
            self.assertEqual(escalations.mapped("level"), [1, 2])
            self.assertEqual(escalations[1].to_user_id, self.user_head_of_sales)
            self.assertEqual(escalations.mapped("state"), ["open", "open"])
            self.Lead._cron_escalate()
            self.assertEqual(len(self._escalations(lead)), 2)

    def test_auto_resolution_when_salesperson_acts(self):
        with freeze_time(NOW):
            lead = self._overdue_lead()
            self.Lead._cron_escalate()
            escalation = self._escalations(lead)
            manager_activity = escalation.activity_id
        with freeze_time("2024-06-12 15:00:00"):
            self._post_email(lead, self.user_sales_salesman, subject="Sorry for the delay")
            self.Lead._cron_escalate()
        self.assertEqual(escalation.state, "resolved")
        self.assertEqual(escalation.resolution, "The salesperson acted")
        self.assertFalse(manager_activity.exists())
        with freeze_time("2024-06-14 10:00:00"):
            # the activity is still overdue, but the rule waits for its cooldown (7 days)
            self.Lead._cron_escalate()
            self.assertEqual(self._escalations(lead), escalation)
        with freeze_time("2024-06-20 10:00:00"):
            self.Lead._cron_escalate()
            self.assertEqual(len(self._escalations(lead, state="open")), 1)

    def test_auto_resolution_condition_gone_and_closed_lead(self):
        with freeze_time(NOW):
            rescheduled = self._overdue_lead()
            won = self._overdue_lead()
            self.Lead._cron_escalate()
            rescheduled.activity_ids.filtered(lambda a: not a.sales_agent_rule).date_deadline = (
                fields.Date.today() + timedelta(days=1)
            )
            won.action_set_won()
            self.Lead._cron_escalate()
        self.assertEqual(self._escalations(rescheduled).resolution, "The condition no longer holds")
        self.assertEqual(self._escalations(won).state, "resolved")
        self.assertEqual(self._escalations(won).resolution, "The lead was closed")

    @freeze_time(NOW)
    def test_high_value_at_risk(self):
        big = self._lead(
            age_days=1,
            type="opportunity",
            expected_revenue=60000,
            date_deadline=fields.Date.today() - timedelta(days=3),
        )
        small = self._lead(
            age_days=1,
            type="opportunity",
            expected_revenue=10000,
            date_deadline=fields.Date.today() - timedelta(days=3),
        )
        safe = self._lead(age_days=1, type="opportunity", expected_revenue=90000)
        self.Lead._cron_escalate()
        escalation = self._escalations(big)
        self.assertEqual(escalation.rule, "high_value")
        self.assertEqual(escalation.to_user_id, self.user_sales_manager)
        self.assertIn("at medium risk", escalation.reason)
        self.assertFalse(self._escalations(small))
        self.assertFalse(self._escalations(safe))

    def test_high_score_not_contacted(self):
        with freeze_time(NOW):
            lead = self._lead(age_days=0)
            lead.sudo().write({"ai_probability_score": 80})
            self._age(lead, 0)
        with freeze_time("2024-06-12 20:00:00"):  # 10 hours: not yet
            self.Lead._cron_escalate()
            self.assertFalse(self._escalations(lead))
        with freeze_time("2024-06-13 11:00:00"):  # 25 hours
            self.Lead._cron_escalate()
            escalation = self._escalations(lead)
            self.assertEqual(escalation.rule, "high_score")
            self.assertEqual(escalation.reason, "Quality score 80 and no contact for 25 hours")

    def test_several_rules_on_one_lead(self):
        """Three rules at once on one lead: three escalations and activities for the same
        manager (who does not follow the lead yet)."""
        with freeze_time(NOW):
            lead = self._lead(age_days=2, type="opportunity", expected_revenue=80000)
            lead.activity_schedule(
                "mail.mail_activity_data_call",
                user_id=self.user_sales_salesman.id,
                date_deadline=fields.Date.today() - timedelta(days=6),
            )
            lead.sudo().write({"ai_probability_score": 90})
            self.assertNotIn(self.user_sales_manager.partner_id, lead.message_partner_ids)
            self.Lead._cron_escalate()
            escalations = self._escalations(lead)
            self.assertEqual(
                sorted(escalations.mapped("rule")), ["high_score", "high_value", "overdue_followup"]
            )
            self.assertEqual(escalations.to_user_id, self.user_sales_manager)
            self.assertEqual(len(escalations.activity_id), 3)
            self.assertEqual(lead.sales_agent_risk_level, "high")
            self.assertIn(self.user_sales_manager.partner_id, lead.message_partner_ids)

    @freeze_time(NOW)
    def test_configured_manager_and_switches(self):
        self._set_config(escalation_manager_id=self.user_sales_leads.id)
        lead = self._overdue_lead()
        self._set_config(escalation_overdue_enabled=False)
        self.Lead._cron_escalate()
        self.assertFalse(self._escalations(lead))
        self._set_config(escalation_overdue_enabled=True)
        self.Lead._cron_escalate()
        self.assertEqual(self._escalations(lead).to_user_id, self.user_sales_leads)
        self._set_config(escalation_enabled=False)
        other = self._overdue_lead()
        self.Lead._cron_escalate()
        self.assertFalse(self._escalations(other))

    @freeze_time(NOW)
    def test_team_leader_own_lead_goes_up(self):
        """The team leader's own lead escalates directly to the next manager up."""
        lead = self._lead(age_days=1, user_id=self.user_sales_manager.id)
        lead.activity_schedule(
            "mail.mail_activity_data_call",
            user_id=self.user_sales_manager.id,
            date_deadline=fields.Date.today() - timedelta(days=5),
        )
        self.Lead._cron_escalate()
        self.assertEqual(self._escalations(lead).to_user_id, self.user_head_of_sales)

    @freeze_time(NOW)
    def test_manual_resolve_and_menu(self):
        lead = self._overdue_lead()
        self.Lead._cron_escalate()
        escalation = self._escalations(lead).with_user(self.user_sales_manager)
        escalation.action_resolve()
        self.assertEqual(escalation.state, "resolved")
        self.assertIn(self.user_sales_manager.name, escalation.resolution)
        menu = self.env.ref("crm_sales_agent.crm_sales_agent_escalation_menu")
        self.assertEqual(menu.parent_id.parent_id, self.env.ref("crm.crm_menu_root"))
        self.assertEqual(menu.parent_id.groups_id, self.env.ref("sales_team.group_sale_manager"))
