from datetime import date, datetime

from freezegun import freeze_time

from odoo.tests import tagged

from .common import SalesAgentCommon

NOW = "2024-06-12 10:00:00"  # a Wednesday


@tagged("crm_sales_agent")
class TestFollowupCron(SalesAgentCommon):
    @freeze_time(NOW)
    def test_followup_lead_without_contact(self):
        """A lead untouched for 3 days (leads' default) gets one follow-up for its salesperson,
        saying why, due today (a working day); a younger one gets nothing."""
        old = self._lead(age_days=4, name="Old lead")
        young = self._lead(age_days=2, name="Young lead")
        self.Lead._cron_create_followups()
        activity = self._agent_activities(old, "followup")
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, self.user_sales_salesman)
        self.assertEqual(activity.activity_type_id, self.followup_type)
        self.assertEqual(activity.summary, "No contact for 4 days since the lead was created")
        self.assertEqual(activity.date_deadline, date(2024, 6, 12))
        self.assertFalse(self._agent_activities(young, "followup"))

    @freeze_time(NOW)
    def test_followup_opportunity_threshold(self):
        """Opportunities wait 7 days by default, and the thresholds are settings."""
        opp_5 = self._lead(age_days=5, type="opportunity", name="Opp 5 days")
        opp_8 = self._lead(age_days=8, type="opportunity", name="Opp 8 days")
        self.Lead._cron_create_followups()
        self.assertFalse(self._agent_activities(opp_5))
        self.assertEqual(
            self._agent_activities(opp_8).summary,
            "No contact for 8 days since the opportunity was created",
        )
        self._set_config(followup_opportunity_days=4)
        self.Lead._cron_create_followups()
        self.assertEqual(len(self._agent_activities(opp_5, "followup")), 1)

    def test_followup_summary_from_last_email(self):
        """The summary names the last contact: 'since "Our proposal" was sent'."""
        with freeze_time("2024-06-03 09:00:00"):
            lead = self._lead(age_days=20, type="opportunity")
            self._post_email(lead, self.user_sales_salesman, subject="Our proposal")
        with freeze_time(NOW):
            self.Lead._cron_create_followups()
        self.assertEqual(
            self._agent_activities(lead, "followup").summary,
            "No contact for 9 days since “Our proposal” was sent",
        )

    def test_followup_summary_unanswered_customer(self):
        with freeze_time("2024-06-01 09:00:00"):
            lead = self._lead(age_days=20, type="opportunity")
            self._post_inbound(lead, "Can you send me the price list?")
        with freeze_time(NOW):
            self.Lead._cron_create_followups()
        self.assertEqual(
            self._agent_activities(lead, "followup").summary,
            "No answer for 11 days to the customer's last message",
        )

    @freeze_time(NOW)
    def test_followup_recent_contact_or_planned_activity(self):
        """A recent contact or any planned activity means no follow-up."""
        contacted = self._lead(age_days=10, name="Contacted")
        self._post_email(contacted, self.user_sales_salesman)
        planned = self._lead(age_days=10, name="Planned")
        planned.activity_schedule(
            "mail.mail_activity_data_call", user_id=self.user_sales_salesman.id
        )
        self.Lead._cron_create_followups()
        self.assertFalse(self._agent_activities(contacted + planned))

    @freeze_time(NOW)
    def test_followup_unassigned_goes_to_team_leader(self):
        """The team leader gets the follow-up, follows the lead with the default subtypes, as
        mail.activity.create would subscribe them, and their activity counter is refreshed."""
        lead = self._lead(age_days=5, user_id=False, name="Unassigned lead")
        leader = self.user_sales_manager.partner_id
        self.assertNotIn(leader, lead.message_partner_ids)
        self.env["bus.bus"].search([]).unlink()
        self.Lead._cron_create_followups()
        activity = self._agent_activities(lead, "followup")
        self.assertEqual(activity.user_id, self.user_sales_manager)
        self.assertEqual(activity.res_name, "Unassigned lead")
        self.assertTrue(activity.automated)
        self.assertIn("No contact for 5 days since the lead was created", activity.summary)
        self.assertFalse(activity.note, "no note repeating the summary")
        self.assertIn(activity, lead.activity_ids)
        follower = lead.message_follower_ids.filtered(lambda f: f.partner_id == leader)
        self.assertEqual(len(follower), 1)
        self.assertEqual(
            follower.subtype_ids, self.env["mail.message.subtype"].default_subtypes("crm.lead")[0]
        )
        self.assertEqual(
            self.env["bus.bus"].search_count(
                [
                    ("message", "like", "mail.activity/updated"),
                    ("channel", "like", '"res.partner",%s]' % leader.id),
                ]
            ),
            1,
        )
        # a second run subscribes nobody twice and creates nothing
        self.Lead._cron_create_followups()
        self.assertEqual(len(self._agent_activities(lead)), 1)
        self.assertEqual(
            len(lead.message_follower_ids.filtered(lambda f: f.partner_id == leader)), 1
        )

    def test_followup_deadline_on_working_day(self):
        """On a Saturday the deadline is Monday; with Monday a public holiday, Tuesday."""
        with freeze_time("2024-06-15 10:00:00"):  # Saturday
            lead = self._lead(age_days=5)
            self.Lead._cron_create_followups()
            self.assertEqual(self._agent_activities(lead).date_deadline, date(2024, 6, 17))
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Public holiday",
                "calendar_id": False,
                "company_id": self.env.company.id,
                "date_from": datetime(2024, 6, 24, 0, 0),
                "date_to": datetime(2024, 6, 24, 23, 59),
            }
        )
        with freeze_time("2024-06-22 10:00:00"):  # Saturday before the holiday
            lead_2 = self._lead(age_days=5, name="Second")
            self.Lead._cron_create_followups()
            self.assertEqual(self._agent_activities(lead_2).date_deadline, date(2024, 6, 25))

    @freeze_time(NOW)
    def test_followup_idempotent(self):
        """Running the cron twice creates nothing more: one open agent follow-up per lead."""
        leads = self._lead(age_days=5, name="A") + self._lead(age_days=9, name="B")
        self.Lead._cron_create_followups()
        first = self._agent_activities(leads)
        self.assertEqual(len(first), 2)
        self.Lead._cron_create_followups()
        self.assertEqual(self._agent_activities(leads), first)

    @freeze_time(NOW)
    def test_followup_won_lost_archived_left_alone(self):
        won = self._lead(age_days=10, type="opportunity", name="Won")
        lost = self._lead(age_days=10, type="opportunity", name="Lost")
        archived = self._lead(age_days=10, name="Archived")
        won.action_set_won()
        lost.action_set_lost()
        archived.action_archive()
        self.Lead._cron_create_followups()
        self.assertFalse(self._agent_activities(won + lost + archived))
        self.assertFalse(
            self.Lead.with_context(active_test=False)
            .browse((won + lost + archived).ids)
            .activity_ids
        )

    def test_followup_cancelled_or_done_not_recreated_until_rule_fires_again(self):
        with freeze_time(NOW):
            cancelled = self._lead(age_days=5, name="Cancelled")
            done = self._lead(age_days=5, name="Done")
            self.Lead._cron_create_followups()
            self._agent_activities(cancelled).unlink()
            self._agent_activities(done).action_feedback(feedback="Called, no answer")
            self.Lead._cron_create_followups()
            self.assertFalse(self._agent_activities(cancelled + done))
        with freeze_time("2024-06-14 10:00:00"):  # 2 days later: still within 3 days
            self.Lead._cron_create_followups()
            self.assertFalse(self._agent_activities(cancelled + done))
        with freeze_time("2024-06-15 11:00:00"):  # 3 days after the follow-up / the call
            self.Lead._cron_create_followups()
            self.assertEqual(len(self._agent_activities(cancelled, "followup")), 1)
            self.assertEqual(
                self._agent_activities(done, "followup").summary,
                "No contact for 3 days since the last Follow-up",
            )

    @freeze_time(NOW)
    def test_new_lead_call_within_24_hours(self):
        """A new lead gets a call due the next working day, once, even if cancelled."""
        lead = self._lead(age_days=0)
        self.Lead._cron_create_followups()
        call = self._agent_activities(lead, "new_lead")
        self.assertEqual(call.summary, "Call within 24 hours")
        self.assertEqual(call.activity_type_id, self.env.ref("mail.mail_activity_data_call"))
        self.assertEqual(call.date_deadline, date(2024, 6, 13))
        self.assertEqual(call.user_id, self.user_sales_salesman)
        call.unlink()
        self.Lead._cron_create_followups()
        self.assertFalse(self._agent_activities(lead))

    @freeze_time("2024-06-14 16:00:00")  # Friday
    def test_new_lead_call_friday_due_today(self):
        """Tomorrow is not a working day and today is: within 24 hours means today."""
        lead = self._lead(age_days=0)
        self.Lead._cron_create_followups()
        self.assertEqual(self._agent_activities(lead, "new_lead").date_deadline, date(2024, 6, 14))

    @freeze_time("2024-06-15 10:00:00")  # Saturday
    def test_new_lead_call_weekend_due_monday(self):
        """Neither today nor tomorrow is a working day: the next working day."""
        lead = self._lead(age_days=0)
        self.Lead._cron_create_followups()
        self.assertEqual(self._agent_activities(lead, "new_lead").date_deadline, date(2024, 6, 17))

    def test_new_lead_call_holiday_tomorrow(self):
        """Wednesday with a public holiday on Thursday: due Wednesday, not five days later;
        the Wednesday after (a normal day): due Thursday."""
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Public holiday",
                "calendar_id": False,
                "company_id": self.env.company.id,
                "date_from": datetime(2024, 6, 13, 0, 0),
                "date_to": datetime(2024, 6, 13, 23, 59),
            }
        )
        with freeze_time(NOW):
            lead = self._lead(age_days=0, name="Eve of a holiday")
            self.Lead._cron_create_followups()
            self.assertEqual(
                self._agent_activities(lead, "new_lead").date_deadline, date(2024, 6, 12)
            )
        with freeze_time("2024-06-19 10:00:00"):
            lead = self._lead(age_days=0, name="Normal Wednesday")
            self.Lead._cron_create_followups()
            self.assertEqual(
                self._agent_activities(lead, "new_lead").date_deadline, date(2024, 6, 20)
            )

    @freeze_time(NOW)
    def test_new_lead_old_leads_not_welcomed(self):
        lead = self._lead(age_days=3)
        self.Lead._cron_create_followups()
        self.assertFalse(self._agent_activities(lead, "new_lead"))

    @freeze_time(NOW)
    def test_stage_entry_activities_and_plan(self):
        """Entering a stage plans its configured activities and its activity plan, once."""
        self.env["crm.sales.agent.stage.activity"].create(
            {
                "stage_id": self.stage_team1_2.id,
                "activity_type_id": self.env.ref("mail.mail_activity_data_call").id,
                "summary": "Review the proposal with the customer",
                "days": 3,
            }
        )
        plan = self.env["mail.activity.plan"].create(
            {
                "name": "Proposition plan",
                "res_model": "crm.lead",
                "template_ids": [
                    (
                        0,
                        0,
                        {
                            "activity_type_id": self.env.ref("mail.mail_activity_data_todo").id,
                            "summary": "Prepare the contract",
                            "responsible_type": "on_demand",
                        },
                    ),
                    (
                        0,
                        0,
                        {
                            "activity_type_id": self.env.ref("mail.mail_activity_data_todo").id,
                            "summary": "Check the credit",
                            "responsible_type": "other",
                            "responsible_id": self.user_sales_manager.id,
                        },
                    ),
                ],
            }
        )
        self.stage_team1_2.sales_agent_plan_id = plan
        lead = self._lead(age_days=10, type="opportunity", stage_id=self.stage_team1_1.id)
        self.Lead._cron_create_followups()  # first stage handled: nothing configured for it
        self.assertFalse(self._agent_activities(lead, "stage"))
        lead.stage_id = self.stage_team1_2
        self.Lead._cron_create_followups()
        activities = self._agent_activities(lead, "stage").sorted("summary")
        self.assertEqual(
            activities.mapped("summary"),
            ["Check the credit", "Prepare the contract", "Review the proposal with the customer"],
        )
        self.assertEqual(
            activities.mapped("user_id"), self.user_sales_manager + self.user_sales_salesman
        )
        review = activities.filtered(lambda a: a.summary.startswith("Review"))
        self.assertEqual(review.date_deadline, date(2024, 6, 17))  # Wed + 3 days -> Sat -> Mon
        self.Lead._cron_create_followups()
        self.assertEqual(self._agent_activities(lead, "stage"), activities)

    @freeze_time(NOW)
    def test_switches_off(self):
        self._set_config(
            followup_enabled=False, new_lead_call_enabled=False, stage_activities_enabled=False
        )
        leads = self._lead(age_days=0, name="New") + self._lead(age_days=10, name="Idle")
        self.Lead._cron_create_followups()
        self.assertFalse(self._agent_activities(leads))
        self._set_config(followup_enabled=True)
        self.Lead._cron_create_followups()
        self.assertEqual(self._agent_activities(leads).mapped("sales_agent_rule"), ["followup"])

    @freeze_time(NOW)
    def test_settings_switch_off_through_the_form(self):
        """Unticking a default-on automation in the settings really switches it off."""
        settings = self.env["res.config.settings"].create({})
        self.assertTrue(settings.sales_agent_followup_enabled)
        settings.sales_agent_followup_enabled = False
        settings.sales_agent_followup_lead_days = 5
        settings.execute()
        config = self.Lead._sales_agent_config()
        self.assertFalse(config["followup_enabled"])
        self.assertEqual(config["followup_lead_days"], 5)
        self.assertFalse(self.env["res.config.settings"].create({}).sales_agent_followup_enabled)

    def test_cron_records(self):
        for xmlid in (
            "crm_sales_agent.ir_cron_sales_agent_followup",
            "crm_sales_agent.ir_cron_sales_agent_escalate",
        ):
            cron = self.env.ref(xmlid)
            self.assertEqual(cron.numbercall, -1)
            self.assertTrue(cron.active)
        with freeze_time(NOW):
            lead = self._lead(age_days=6)
            self.env.ref("crm_sales_agent.ir_cron_sales_agent_followup").method_direct_trigger()
            self.assertEqual(len(self._agent_activities(lead, "followup")), 1)
