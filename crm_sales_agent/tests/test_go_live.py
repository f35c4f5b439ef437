from datetime import date, timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import api, fields
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import SalesAgentCommon

NOW = "2024-06-12 10:00:00"  # a Wednesday


@tagged("crm_sales_agent")
class TestGoLive(SalesAgentCommon):
    """The agent acts only on leads that went quiet after its go-live date."""

    def _overdue_lead(self, name, created_days_ago, days_late=5):
        lead = self._lead(age_days=created_days_ago, type="opportunity", name=name)
        lead.activity_schedule(
            "mail.mail_activity_data_call",
            user_id=self.user_sales_salesman.id,
            date_deadline=fields.Date.today() - timedelta(days=days_late),
        )
        return lead

    def test_go_live_set_at_install(self):
        """Every company has a go-live date, and new companies get theirs."""
        company = self.env["res.company"].create({"name": "Go-live Co"})
        self.assertEqual(company.sales_agent_go_live_date, fields.Date.context_today(company))
        self.assertIn("go_live_date", self.Lead._sales_agent_config(company))

    @freeze_time(NOW)
    def test_followup_only_after_go_live(self):
        """Go-live on June 5: a lead quiet since May gets nothing; one last contacted on
        June 6 (quiet 6 days) gets its follow-up; a lead created after go-live too."""
        self._set_config(go_live_date=date(2024, 6, 5))
        old_quiet = self._lead(age_days=40, name="Quiet since May")
        with freeze_time("2024-06-06 09:00:00"):
            contacted = self._lead(age_days=30, name="Contacted after go-live")
            self._post_email(contacted, self.user_sales_salesman, subject="Our offer")
        new_after = self._lead(age_days=5, name="Created after go-live")
        self.env["crm.sales.agent.followup"]._cron_create_followups()
        self.assertFalse(self._agent_activities(old_quiet))
        self.assertEqual(
            self._agent_activities(contacted, "followup").summary,
            "No contact for 6 days since “Our offer” was sent",
        )
        self.assertEqual(len(self._agent_activities(new_after, "followup")), 1)
        # moving the go-live back brings the older backlog in
        self._set_config(go_live_date=date(2024, 4, 1))
        self.env["crm.sales.agent.followup"]._cron_create_followups()
        self.assertEqual(len(self._agent_activities(old_quiet, "followup")), 1)

    @freeze_time(NOW)
    def test_escalation_only_after_go_live(self):
        """An overdue follow-up on a lead quiet since before go-live is not escalated (its
        risk is still assessed); the same on a lead created after go-live is."""
        self._set_config(go_live_date=date(2024, 6, 5))
        before = self._overdue_lead("Quiet before go-live", created_days_ago=30)
        after = self._overdue_lead("Created after go-live", created_days_ago=6)
        self.env["crm.sales.agent.lead.state"]._cron_assess()
        Escalation = self.env["crm.sales.agent.escalation"]
        self.assertFalse(Escalation.search([("lead_id", "=", before.id)]))
        self.assertEqual(before.sales_agent_risk_level, "high")
        self.assertEqual(
            Escalation.search([("lead_id", "=", after.id)]).mapped("rule"), ["overdue_followup"]
        )


@tagged("crm_sales_agent")
class TestDryRun(SalesAgentCommon):
    def _counts(self):
        self.env.flush_all()
        counts = {}
        for table in (
            "mail_activity",
            "mail_message",
            "mail_followers",
            "crm_sales_agent_escalation",
            "crm_sales_agent_lead_state",
        ):
            self.env.cr.execute("SELECT COUNT(*), MAX(id) FROM %s" % table)
            counts[table] = self.env.cr.fetchone()
        return counts

    @freeze_time(NOW)
    def test_dry_run_counts_and_writes_nothing(self):
        # the leads of the fixtures are acted on first, to count only the ones below
        self.Lead._cron_create_followups()
        self.Lead._cron_escalate()
        self._lead(age_days=0, name="New")
        self._lead(age_days=6, name="Idle, salesman")
        self._lead(age_days=6, name="Idle, unassigned", user_id=False)
        overdue = self._lead(age_days=1, type="opportunity", name="Overdue")
        overdue.activity_schedule(
            "mail.mail_activity_data_call",
            user_id=self.user_sales_salesman.id,
            date_deadline=fields.Date.today() - timedelta(days=5),
        )
        before = self._counts()
        action = (
            self.env["crm.sales.agent.dry.run"]
            .with_user(self.user_sales_manager)
            ._action_preview(self.env.company)
        )
        self.assertEqual(self._counts(), before, "a dry run writes nothing")
        wizard = self.env["crm.sales.agent.dry.run"].browse(action["res_id"])
        lines = {(line.kind, line.rule, line.user_id): line.count for line in wizard.line_ids}
        self.assertEqual(
            lines,
            {
                ("activity", "new_lead", self.user_sales_salesman): 1,
                ("activity", "followup", self.user_sales_salesman): 1,
                ("activity", "followup", self.user_sales_manager): 1,
                ("escalation", "overdue_followup", self.user_sales_salesman): 1,
            },
        )
        self.assertEqual((wizard.activity_count, wizard.escalation_count), (3, 1))
        # the real runs create what the dry run announced
        self.Lead._cron_create_followups()
        self.Lead._cron_escalate()
        after = self._counts()
        self.assertEqual(
            after["mail_activity"][0] - before["mail_activity"][0], 3 + 1
        )  # 3 follow-ups and the manager's escalation activity
        self.assertEqual(
            after["crm_sales_agent_escalation"][0] - before["crm_sales_agent_escalation"][0], 1
        )

    def test_dry_run_managers_only(self):
        with self.assertRaises(AccessError):
            self.env["crm.sales.agent.dry.run"].with_user(self.user_sales_salesman)._action_preview(
                self.env.company
            )
        settings = self.env["res.config.settings"].create({})
        action = settings.action_sales_agent_dry_run()
        self.assertEqual(action["res_model"], "crm.sales.agent.dry.run")
        server_action = self.env.ref("crm_sales_agent.crm_sales_agent_dry_run_action")
        self.assertEqual(
            server_action.with_user(self.user_sales_manager).run()["res_model"],
            "crm.sales.agent.dry.run",
        )


@tagged("crm_sales_agent")
class TestOrmWrites(SalesAgentCommon):
    @freeze_time(NOW)
    def test_activities_and_notes_through_the_orm(self):
        """Activities are created by one batched mail.activity.create (an override in another
        module runs), followers through message_subscribe, notes by mail.message.create."""
        Activity = self.registry["mail.activity"]
        Message = self.registry["mail.message"]
        original_activity_create = Activity.create
        original_message_create = Message.create
        seen = {"activities": [], "messages": [], "subscribe": 0}

        @api.model_create_multi
        def activity_create(model, vals_list):
            seen["activities"].append(len(vals_list))
            return original_activity_create(model, vals_list)

        @api.model_create_multi
        def message_create(model, vals_list):
            seen["messages"] += [vals.get("body") for vals in vals_list]
            return original_message_create(model, vals_list)

        Lead = self.registry["crm.lead"]
        original_subscribe = Lead.message_subscribe

        def message_subscribe(records, *args, **kwargs):
            seen["subscribe"] += 1
            return original_subscribe(records, *args, **kwargs)

        self.Lead._cron_create_followups()
        self.Lead._cron_escalate()
        leads = self._lead(age_days=6, name="A") + self._lead(age_days=7, name="B")
        overdue = self._lead(age_days=1, type="opportunity", name="Overdue")
        overdue.activity_schedule(
            "mail.mail_activity_data_call",
            user_id=self.user_sales_salesman.id,
            date_deadline=fields.Date.today() - timedelta(days=5),
        )
        with (
            patch.object(Activity, "create", activity_create),
            patch.object(Message, "create", message_create),
            patch.object(Lead, "message_subscribe", message_subscribe),
        ):
            self.Lead._cron_create_followups()
            self.assertEqual(seen["activities"], [2], "one batched create for the batch")
            self.Lead._cron_escalate()
        self.assertEqual(seen["activities"], [2, 1])
        self.assertTrue(seen["subscribe"])
        self.assertTrue(any("Escalated to" in str(body) for body in seen["messages"]))
        activities = self._agent_activities(leads, "followup")
        self.assertEqual(len(activities), 2)
        for activity in activities:
            # what mail.activity's ORM create sets
            self.assertEqual(activity.res_model_id, self.env["ir.model"]._get("crm.lead"))
            self.assertTrue(activity.automated)
            self.assertEqual(activity.create_uid, self.env.user)
            lead = self.Lead.browse(activity.res_id)
            self.assertIn(self.user_sales_salesman.partner_id, lead.message_partner_ids)
        self.assertEqual(
            set(activities.mapped("res_name")), {"A", "B"}, "res_name computed by the ORM"
        )


@tagged("crm_sales_agent")
class TestTimeBudget(SalesAgentCommon):
    """A run stops starting batches at its time budget, keeps its place, triggers its cron
    and the next run goes on from there."""

    def _run_until_done(self, model, method, cron_xmlid, leads):
        Model = self.registry[model]
        cron = self.env.ref(cron_xmlid)
        Trigger = self.env["ir.cron.trigger"]
        runs = 0
        with patch.object(Model, "_sales_agent_time_budget", lambda self: 0):
            while True:
                triggers = Trigger.search_count([("cron_id", "=", cron.id)])
                runs += 1
                done = getattr(self.env[model], method)()
                if done:
                    break
                self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), triggers + 1)
                self.assertTrue(
                    self.env["ir.config_parameter"].get_param(
                        "crm_sales_agent.cron_progress.%s" % model
                    )
                )
                self.assertLess(runs, 50)
        self.assertFalse(
            self.env["ir.config_parameter"].get_param("crm_sales_agent.cron_progress.%s" % model)
        )
        return runs

    @freeze_time(NOW)
    def test_followup_cron_budget_and_retrigger(self):
        self.Lead._cron_create_followups()
        self._set_config(batch_size=1)
        leads = self._lead(age_days=6, name="A") + self._lead(age_days=6, name="B")
        leads += self._lead(age_days=6, name="C")
        runs = self._run_until_done(
            "crm.sales.agent.followup",
            "_cron_create_followups",
            "crm_sales_agent.ir_cron_sales_agent_followup",
            leads,
        )
        self.assertGreaterEqual(runs, 3)
        self.assertEqual(len(self._agent_activities(leads, "followup")), 3)

    @freeze_time(NOW)
    def test_assessment_cron_budget_and_retrigger(self):
        self._set_config(batch_size=2)
        leads = self._lead(age_days=6, name="A") + self._lead(age_days=6, name="B")
        leads += self._lead(age_days=6, name="C")
        runs = self._run_until_done(
            "crm.sales.agent.lead.state",
            "_cron_assess",
            "crm_sales_agent.ir_cron_sales_agent_escalate",
            leads,
        )
        self.assertGreaterEqual(runs, 2)
        self.assertEqual(set(leads.mapped("sales_agent_risk_level")), {"medium"})
