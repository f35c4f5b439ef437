from datetime import datetime

from odoo import fields
from odoo.tests import TransactionCase, new_test_user

PERIOD = ("2019-03-01", "2019-03-31")
PREVIOUS = ("2019-02-01", "2019-02-28")


class DashboardCommon(TransactionCase):
    """Fixture, in March 2019 (far from the demo data, created "now").

    COMPANY----CURRENCY--TEAM------------LEAD-----------STATE------REVENUE--CREATED---CLOSED
    main       USD       team_a          lead_open      open 30%   1000     03-05
                         team_a          lead_won       won        2000     03-02     03-10
                         team_a          lead_lost      lost        500     03-03     03-20
                         (no team)       lead_unassigned lead (no user)    0     03-07
                         team_a          lead_archived  archived, NOT lost  9999  03-08
                         team_a          lead_other     open 60%    700     03-06   (user_other)
                         team_a          lead_prev_won  won         800     02-10     02-20
    company_2  AUD       team_c2         lead_c2_won    won        3000     03-04     03-16
                         team_c2         lead_c2_open   open 50%   1000     03-12

    AUD rates (company main): 1.5 from 2019-01-01, 2.0 from 2019-03-15 (1 USD = x AUD);
    USD rate (company_2): 0.5 from 2019-01-01 (1 AUD = 0.5 USD).
    The salesman owns lead_open, lead_won; the manager owns lead_lost; lead_other belongs to
    user_other (a salesman of team_a); the company_2 leads belong to the multi-company manager.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_main = cls.env.ref("base.main_company")
        cls.usd = cls.env.ref("base.USD")
        cls.aud = cls.env.ref("base.AUD")
        cls.aud.active = True
        cls.company_main.currency_id = cls.usd
        cls.company_2 = cls.env["res.company"].create(
            {"name": "Dashboard C2", "currency_id": cls.aud.id}
        )
        cls.env["res.currency.rate"].create(
            [
                {
                    "currency_id": cls.usd.id,
                    "company_id": cls.company_main.id,
                    "name": "2018-01-01",
                    "rate": 1.0,
                },
                {
                    "currency_id": cls.aud.id,
                    "company_id": cls.company_main.id,
                    "name": "2019-01-01",
                    "rate": 1.5,
                },
                {
                    "currency_id": cls.aud.id,
                    "company_id": cls.company_main.id,
                    "name": "2019-03-15",
                    "rate": 2.0,
                },
                {
                    "currency_id": cls.aud.id,
                    "company_id": cls.company_2.id,
                    "name": "2018-01-01",
                    "rate": 1.0,
                },
                {
                    "currency_id": cls.usd.id,
                    "company_id": cls.company_2.id,
                    "name": "2019-01-01",
                    "rate": 0.5,
                },
            ]
        )
        both = [(6, 0, [cls.company_main.id, cls.company_2.id])]
        cls.user_salesman = new_test_user(
            cls.env,
            "dash_salesman",
            groups="sales_team.group_sale_salesman",
            name="Dash Salesman",
            tz="UTC",
            company_id=cls.company_main.id,
        )
        cls.user_other = new_test_user(
            cls.env,
            "dash_other",
            groups="sales_team.group_sale_salesman",
            name="Dash Other",
            tz="UTC",
            company_id=cls.company_main.id,
        )
        cls.user_manager = new_test_user(
            cls.env,
            "dash_manager",
            groups="sales_team.group_sale_manager",
            name="Dash Manager",
            tz="UTC",
            company_id=cls.company_main.id,
            company_ids=both,
        )
        cls.user_no_crm = new_test_user(
            cls.env, "dash_no_crm", groups="base.group_user", name="Dash No CRM", tz="UTC"
        )
        cls.team_a = cls.env["crm.team"].create({"name": "Dash Team A", "company_id": False})
        cls.team_c2 = cls.env["crm.team"].create(
            {"name": "Dash Team C2", "company_id": cls.company_2.id}
        )
        cls.stage_new = cls.env["crm.stage"].create({"name": "Dash New", "sequence": 1})
        cls.stage_won = cls.env["crm.stage"].create(
            {"name": "Dash Won", "sequence": 70, "is_won": True}
        )
        cls.leads = {}
        specs = [
            # key, company, team, user, type, revenue, probability, state, created, closed
            (
                "lead_open",
                cls.company_main,
                cls.team_a,
                cls.user_salesman,
                "opportunity",
                1000,
                30,
                "open",
                "2019-03-05 10:00:00",
                None,
            ),
            (
                "lead_won",
                cls.company_main,
                cls.team_a,
                cls.user_salesman,
                "opportunity",
                2000,
                100,
                "won",
                "2019-03-02 10:00:00",
                "2019-03-10 10:00:00",
            ),
            (
                "lead_lost",
                cls.company_main,
                cls.team_a,
                cls.user_manager,
                "opportunity",
                500,
                0,
                "lost",
                "2019-03-03 10:00:00",
                "2019-03-20 10:00:00",
            ),
            (
                "lead_unassigned",
                cls.company_main,
                None,
                None,
                "lead",
                0,
                10,
                "open",
                "2019-03-07 10:00:00",
                None,
            ),
            (
                "lead_archived",
                cls.company_main,
                cls.team_a,
                cls.user_salesman,
                "opportunity",
                9999,
                50,
                "archived",
                "2019-03-08 10:00:00",
                "2019-03-09 10:00:00",
            ),
            (
                "lead_other",
                cls.company_main,
                cls.team_a,
                cls.user_other,
                "opportunity",
                700,
                60,
                "open",
                "2019-03-06 10:00:00",
                None,
            ),
            (
                "lead_prev_won",
                cls.company_main,
                cls.team_a,
                cls.user_salesman,
                "opportunity",
                800,
                100,
                "won",
                "2019-02-10 10:00:00",
                "2019-02-20 10:00:00",
            ),
            (
                "lead_c2_won",
                cls.company_2,
                cls.team_c2,
                cls.user_manager,
                "opportunity",
                3000,
                100,
                "won",
                "2019-03-04 10:00:00",
                "2019-03-16 10:00:00",
            ),
            (
                "lead_c2_open",
                cls.company_2,
                cls.team_c2,
                cls.user_manager,
                "opportunity",
                1000,
                50,
                "open",
                "2019-03-12 10:00:00",
                None,
            ),
        ]
        Lead = cls.env["crm.lead"].with_context(tracking_disable=True, mail_create_nolog=True)
        for (
            key,
            company,
            team,
            user,
            lead_type,
            revenue,
            probability,
            state,
            created,
            closed,
        ) in specs:
            lead = Lead.create(
                {
                    "name": key,
                    "type": lead_type,
                    "company_id": company.id,
                    "team_id": team.id if team else False,
                    "user_id": user.id if user else False,
                    "expected_revenue": revenue,
                    "stage_id": (cls.stage_won if state == "won" else cls.stage_new).id,
                }
            )
            cls.leads[key] = lead
            cls.env.flush_all()
            cls.env.cr.execute(
                """UPDATE crm_lead SET create_date = %s, date_closed = %s, probability = %s,
                          automated_probability = %s,
                          active = %s, date_last_stage_update = %s, ai_enrichment_status = NULL,
                          ai_last_enrichment_date = NULL
                    WHERE id = %s""",
                (
                    created,
                    closed,
                    probability,
                    probability,
                    state not in ("lost", "archived"),
                    created,
                    lead.id,
                ),
            )
        cls.env["crm.lead"].invalidate_model()

    # ------------------------------------------------------------
    # INDEPENDENT COUNT (plain Python on the records, Odoo's own conversion)
    # ------------------------------------------------------------

    def expected_kpis(self, user, company_ids, team_ids=None, period=PERIOD):
        """KPIs recomputed record by record, without SQL, for the fixture leads."""
        env = self.env(user=user, context={"allowed_company_ids": company_ids})
        target = env.company.currency_id
        start = datetime.fromisoformat(period[0])
        stop = datetime.fromisoformat(period[1]).replace(hour=23, minute=59, second=59)
        leads = (
            env["crm.lead"]
            .with_context(active_test=False)
            .search([("id", "in", [lead.id for lead in self.leads.values()])])
        )
        if team_ids:
            leads = leads.filtered(lambda lead: lead.team_id.id in team_ids)

        def convert(lead):
            day = fields.Date.to_date(lead.date_closed or lead.create_date)
            return lead.company_id.currency_id._convert(
                lead.expected_revenue, target, env.company, day, round=False
            )

        counted = leads.filtered(lambda lead: lead.active or lead.probability == 0)
        created = counted.filtered(lambda lead: start <= lead.create_date <= stop)
        closed = leads.filtered(lambda lead: lead.date_closed and start <= lead.date_closed <= stop)
        won = closed.filtered(lambda lead: lead.active and lead.stage_id.is_won)
        lost = closed.filtered(lambda lead: not lead.active and lead.probability == 0)
        opportunities = created.filtered(lambda lead: lead.type == "opportunity")
        pipeline = opportunities.filtered(
            lambda lead: lead.active and not lead.date_closed and not lead.stage_id.is_won
        )
        revenue = sum(convert(lead) for lead in won)
        return {
            "total_leads": len(created),
            "total_opportunities": len(opportunities),
            "won_opportunities": len(won),
            "lost_opportunities": len(lost),
            "won_revenue": round(revenue, 2),
            "conversion_rate": round(100.0 * len(opportunities) / len(created), 1)
            if created
            else 0.0,
            "win_rate": round(100.0 * len(won) / (len(won) + len(lost)), 1) if won or lost else 0.0,
            "avg_deal_size": round(revenue / len(won), 2) if won else 0.0,
            "avg_sales_cycle_days": round(
                sum((lead.date_closed - lead.create_date).total_seconds() / 86400 for lead in won)
                / len(won),
                1,
            )
            if won
            else 0.0,
            "pipeline_value": round(sum(convert(lead) for lead in pipeline), 2),
            "weighted_pipeline": round(
                sum(convert(lead) * lead.probability / 100 for lead in pipeline), 2
            ),
        }

    def dashboard(self, user, company_ids, **kwargs):
        return (
            self.env["crm.executive.dashboard"]
            .with_user(user)
            .with_context(allowed_company_ids=company_ids)
            .get_dashboard_data(*PERIOD, **kwargs)
        )
