from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import SalesAgentCommon

NOW = "2024-06-12 10:00:00"  # a Wednesday


@tagged("crm_sales_agent")
class TestSettings(SalesAgentCommon):
    """The settings are fields of each company, saved the way the settings page saves them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._activate_multi_company()
        cls._open_go_live()
        cls.company_a = cls.company_main
        cls.company_b = cls.company_2
        cls.user_settings_admin = mail_new_test_user(
            cls.env,
            login="user_settings_admin",
            name="Sam Settings Admin",
            email="settings.admin@test.example.com",
            groups="base.group_system,sales_team.group_sale_manager",
            company_id=cls.company_a.id,
            company_ids=[(6, 0, (cls.company_a + cls.company_b).ids)],
        )
        cls.user_head_of_sales.company_ids = [(4, cls.company_b.id)]
        company_fields = cls.env["res.company"]._fields
        cls.boolean_settings = [
            name
            for name, field in company_fields.items()
            if name.startswith("sales_agent_") and field.type == "boolean"
        ]

    def _settings(self, company=None):
        """The settings page of ``company`` as the admin opens it."""
        return (
            self.env["res.config.settings"]
            .with_user(self.user_settings_admin)
            .with_company(company or self.company_a)
            .create({})
        )

    def _save(self, company=None, **values):
        """Save the settings page of ``company`` with ``values`` changed."""
        self.env["res.config.settings"].with_user(self.user_settings_admin).with_company(
            company or self.company_a
        ).create(values).execute()

    def test_booleans_switched_off_stay_off(self):
        self.assertTrue(self.boolean_settings)
        settings = self._settings()
        for name in self.boolean_settings:
            self.assertTrue(settings[name], name)
        self._save(**{name: False for name in self.boolean_settings})
        for name in self.boolean_settings:
            self.assertFalse(self._settings()[name], name)
        # saving the page again without a change: the form sends the values it shows
        names = [name for name in self.env["res.config.settings"]._fields if "sales_agent_" in name]
        shown = self._settings().read(names)[0]
        self._save(**{name: shown[name] for name in self.boolean_settings})
        self._settings().execute()
        settings = self._settings()
        config = self.Lead._sales_agent_config(self.company_a)
        for name in self.boolean_settings:
            self.assertFalse(settings[name], name)
            self.assertIs(config[name[len("sales_agent_") :]], False, name)
        self._save(sales_agent_followup_enabled=True)
        self.assertTrue(self._settings().sales_agent_followup_enabled)
        self.assertFalse(self._settings().sales_agent_risk_enabled)

    def test_zero_where_allowed(self):
        zeros = {
            "sales_agent_high_score_hours": 0,
            "sales_agent_escalation_overdue_days": 0,
            "sales_agent_escalation_cooldown_days": 0,
            "sales_agent_high_score_threshold": 0.0,
            "sales_agent_escalation_high_value_amount": 0.0,
        }
        self._save(**zeros)
        settings = self._settings()
        config = self.Lead._sales_agent_config(self.company_a)
        for name in zeros:
            self.assertEqual(settings[name], 0, name)
            self.assertEqual(config[name[len("sales_agent_") :]], 0, name)
        self._settings().execute()
        self.assertEqual(self._settings().sales_agent_high_score_hours, 0)
        self.assertEqual(self._settings().sales_agent_escalation_overdue_days, 0)

    def test_managers_round_trip_and_clear(self):
        self._save(
            sales_agent_escalation_manager_id=self.user_sales_leads.id,
            sales_agent_escalation_level2_manager_id=self.user_sales_manager.id,
        )
        settings = self._settings()
        self.assertEqual(settings.sales_agent_escalation_manager_id, self.user_sales_leads)
        self.assertEqual(settings.sales_agent_escalation_level2_manager_id, self.user_sales_manager)
        config = self.Lead._sales_agent_config()
        self.assertEqual(config["escalation_manager_id"], self.user_sales_leads.id)
        self.assertEqual(config["escalation_level2_manager_id"], self.user_sales_manager.id)
        self._save(
            sales_agent_escalation_manager_id=False, sales_agent_escalation_level2_manager_id=False
        )
        settings = self._settings()
        self.assertFalse(settings.sales_agent_escalation_manager_id)
        self.assertFalse(settings.sales_agent_escalation_level2_manager_id)
        config = self.Lead._sales_agent_config()
        self.assertIs(config["escalation_manager_id"], False)
        self.assertIs(config["escalation_level2_manager_id"], False)

    def test_two_companies_keep_their_values(self):
        self._save(self.company_a, sales_agent_followup_lead_days=5, sales_agent_risk_enabled=False)
        self._save(
            self.company_b,
            sales_agent_followup_lead_days=9,
            sales_agent_batch_size=20,
            sales_agent_escalation_manager_id=self.user_head_of_sales.id,
        )
        settings_a, settings_b = self._settings(self.company_a), self._settings(self.company_b)
        self.assertEqual(settings_a.company_id, self.company_a)
        self.assertEqual(settings_b.company_id, self.company_b)
        self.assertEqual(settings_a.sales_agent_followup_lead_days, 5)
        self.assertEqual(settings_b.sales_agent_followup_lead_days, 9)
        self.assertFalse(settings_a.sales_agent_risk_enabled)
        self.assertTrue(settings_b.sales_agent_risk_enabled)
        self.assertEqual(settings_a.sales_agent_batch_size, 500)
        self.assertEqual(settings_b.sales_agent_batch_size, 20)
        self.assertFalse(settings_a.sales_agent_escalation_manager_id)
        self.assertEqual(settings_b.sales_agent_escalation_manager_id, self.user_head_of_sales)
        config_a = self.Lead._sales_agent_config(self.company_a)
        config_b = self.Lead._sales_agent_config(self.company_b)
        self.assertEqual(
            (config_a["followup_lead_days"], config_a["risk_enabled"], config_a["batch_size"]),
            (5, False, 500),
        )
        self.assertEqual(
            (config_b["followup_lead_days"], config_b["risk_enabled"], config_b["batch_size"]),
            (9, True, 20),
        )
        self.assertEqual(config_b["escalation_manager_id"], self.user_head_of_sales.id)
        # the current company's settings by default
        self.assertEqual(
            self.Lead.with_company(self.company_b)._sales_agent_config()["followup_lead_days"], 9
        )

    def test_invalid_values_refused(self):
        for values in (
            {"sales_agent_followup_lead_days": -1},
            {"sales_agent_escalation_overdue_days": -2},
            {"sales_agent_followup_opportunity_days": 0},
            {"sales_agent_batch_size": 0},
            {"sales_agent_stuck_factor": 0.5},
        ):
            with self.subTest(values=values), self.assertRaises(ValidationError):
                with self.env.cr.savepoint():
                    self._save(**values)
        self.assertEqual(self._settings().sales_agent_followup_lead_days, 3)

    # crons ------------------------------------------------------

    def _lead_b(self, **vals):
        return self._lead(
            company_id=self.company_b.id,
            team_id=self.team_company2.id,
            user_id=self.user_sales_manager_mc.id,
            **vals,
        )

    @freeze_time(NOW)
    def test_followup_cron_uses_the_lead_company_settings(self):
        self._save(self.company_b, sales_agent_followup_enabled=False)
        lead_a = self._lead(age_days=10, name="Quiet A")
        lead_b = self._lead_b(age_days=10, name="Quiet B")
        self.assertEqual(lead_b.company_id, self.company_b)
        self.Lead._cron_create_followups()
        self.assertEqual(len(self._agent_activities(lead_a, "followup")), 1)
        self.assertFalse(self._agent_activities(lead_b))
        # and the other way round; a lead without company goes with the current company
        self._save(self.company_a, sales_agent_followup_enabled=False)
        self._save(self.company_b, sales_agent_followup_enabled=True)
        lead_a2 = self._lead(age_days=10, name="Quiet A2")
        no_company = self._lead(age_days=10, name="No company", company_id=False, team_id=False)
        self.assertFalse(no_company.company_id)
        self.Lead._cron_create_followups()
        self.assertFalse(self._agent_activities(lead_a2 + no_company))
        self.assertEqual(len(self._agent_activities(lead_b, "followup")), 1)

    @freeze_time(NOW)
    def test_followup_cron_thresholds_per_company(self):
        self._save(self.company_b, sales_agent_followup_lead_days=6)
        lead_a = self._lead(age_days=4, name="A, 4 days")
        lead_b = self._lead_b(age_days=4, name="B, 4 days")
        self.Lead._cron_create_followups()
        self.assertEqual(len(self._agent_activities(lead_a, "followup")), 1)
        self.assertFalse(self._agent_activities(lead_b))

    @freeze_time(NOW)
    def test_escalation_cron_uses_the_lead_company_settings(self):
        self._save(self.company_a, sales_agent_escalation_manager_id=self.user_sales_leads.id)
        self._save(
            self.company_b,
            sales_agent_escalation_manager_id=self.user_head_of_sales.id,
            sales_agent_escalation_overdue_days=0,
        )
        leads = self.Lead
        for lead, days_late in (
            (self._lead(age_days=1, name="A late 4"), 4),
            (self._lead(age_days=1, name="A late 2"), 2),
            (self._lead_b(age_days=1, name="B late 2"), 2),
        ):
            lead.activity_schedule(
                "mail.mail_activity_data_call",
                user_id=lead.user_id.id,
                date_deadline=fields.Date.today() - timedelta(days=days_late),
            )
            leads += lead
        self.Lead._cron_escalate()
        Escalation = self.env["crm.sales.agent.escalation"]
        escalations = [Escalation.search([("lead_id", "=", lead.id)]) for lead in leads]
        # overdue by more than company A's 3 days, or by more than company B's 0, each
        # escalated to its company's manager
        self.assertEqual(escalations[0].rule, "overdue_followup")
        self.assertEqual(escalations[0].to_user_id, self.user_sales_leads)
        self.assertFalse(escalations[1])
        self.assertEqual(escalations[2].rule, "overdue_followup")
        self.assertEqual(escalations[2].to_user_id, self.user_head_of_sales)
        # risk and escalations switched off in company B only
        self._save(
            self.company_b, sales_agent_risk_enabled=False, sales_agent_escalation_enabled=False
        )
        lead_a2 = self._lead(age_days=8, name="A2")
        lead_b2 = self._lead_b(age_days=8, name="B2")
        self.Lead._cron_escalate()
        self.assertEqual(lead_a2.sales_agent_risk_level, "medium")
        self.assertFalse(lead_b2.sales_agent_risk_level)

    @freeze_time(NOW)
    def test_refresh_uses_the_lead_company_settings(self):
        self._save(self.company_b, sales_agent_followup_lead_days=30)
        lead_a = self._lead(age_days=4, name="A")
        lead_b = self._lead_b(age_days=4, name="B")
        (lead_a + lead_b)._sales_agent_refresh()
        self.assertEqual(lead_a.sales_agent_risk_level, "low")
        self.assertEqual(lead_b.sales_agent_risk_level, "none")
