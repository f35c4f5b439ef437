from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import fields

from .common import PERIOD, DashboardCommon


def percentile(values, fraction):
    """PostgreSQL's ``percentile_cont``, in plain Python (linear interpolation)."""
    values = sorted(values)
    position = fraction * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


class AnalysesCommon(DashboardCommon):
    """The dashboard's fixture (``DashboardCommon``, its leads have no stage history) plus leads
    whose stages really moved through the ORM with tracking on, in March 2019, with UTM data,
    lost reasons, AI scores and campaign costs.

    LEAD  COMPANY TEAM  USER      SOURCE/CAMPAIGN  CREATED  MOVES (day: stage)         END
    h1    main    A     salesman  web / spring      03-01   03: qual, 06: prop, 10: won  won 2000
    h2    main    A     salesman  web               03-02   05: qual, 12: won            won 5000
    h3    main    A     other     fair              03-03   04: qual, 08 lost (price)    lost 500
    h4    main    A     manager   fair / spring     03-05   -                            open
    h5    main    A     salesman  web               03-07   08: qual, 09: prop           open
    h6    c2      C2    manager   web               03-04   06: qual, 20: won          won 3000 AUD
    Costs: spring campaign 310 USD over March; web source 300 USD over 03-16..04-14 (16 of its
    30 days in March); a cost of company_2 (100 AUD on the fair source).
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Stage = cls.env["crm.stage"]
        cls.stage_qual = Stage.create({"name": "Dash Qualified", "sequence": 2})
        cls.stage_prop = Stage.create({"name": "Dash Proposal", "sequence": 3})
        cls.source_web = cls.env["utm.source"].create({"name": "Dash Web"})
        cls.source_fair = cls.env["utm.source"].create({"name": "Dash Fair"})
        cls.medium_email = cls.env["utm.medium"].create({"name": "Dash Email"})
        cls.campaign = cls.env["utm.campaign"].create({"name": "Dash Spring"})
        cls.reason_price = cls.env["crm.lost.reason"].create({"name": "Dash Too expensive"})
        specs = [
            # key, company, team, user, source, campaign, created, moves, end, revenue, score
            (
                "h1",
                cls.company_main,
                cls.team_a,
                cls.user_salesman,
                cls.source_web,
                cls.campaign,
                1,
                [(3, cls.stage_qual), (6, cls.stage_prop), (10, cls.stage_won)],
                "won",
                2000,
                80,
            ),
            (
                "h2",
                cls.company_main,
                cls.team_a,
                cls.user_salesman,
                cls.source_web,
                None,
                2,
                [(5, cls.stage_qual), (12, cls.stage_won)],
                "won",
                5000,
                None,
            ),
            (
                "h3",
                cls.company_main,
                cls.team_a,
                cls.user_other,
                cls.source_fair,
                None,
                3,
                [(4, cls.stage_qual)],
                "lost",
                500,
                30,
            ),
            (
                "h4",
                cls.company_main,
                cls.team_a,
                cls.user_manager,
                cls.source_fair,
                cls.campaign,
                5,
                [],
                "open",
                800,
                None,
            ),
            (
                "h5",
                cls.company_main,
                cls.team_a,
                cls.user_salesman,
                cls.source_web,
                None,
                7,
                [(8, cls.stage_qual), (9, cls.stage_prop)],
                "open",
                1200,
                55,
            ),
            (
                "h6",
                cls.company_2,
                cls.team_c2,
                cls.user_manager,
                cls.source_web,
                None,
                4,
                [(6, cls.stage_qual), (20, cls.stage_won)],
                "won",
                3000,
                None,
            ),
        ]
        Lead = cls.env["crm.lead"].with_context(mail_create_nolog=True)
        cls.history = {}
        moves = {}
        for (
            key,
            company,
            team,
            user,
            source,
            campaign,
            day,
            lead_moves,
            _end,
            revenue,
            score,
        ) in specs:
            with freeze_time("2019-03-%02d 09:00:00" % day):
                lead = Lead.create(
                    {
                        "name": key,
                        "type": "opportunity",
                        "company_id": company.id,
                        "team_id": team.id,
                        "user_id": user.id,
                        "source_id": source.id,
                        "campaign_id": campaign.id if campaign else False,
                        "medium_id": cls.medium_email.id if campaign else False,
                        "expected_revenue": revenue,
                        "stage_id": cls.stage_new.id,
                    }
                )
                cls.env.flush_all()
                cls.env.cr.precommit.run()
            cls.history[key] = lead
            for move_day, stage in lead_moves:
                moves.setdefault(move_day, []).append((lead, stage))
            cls.env.cr.execute(
                """UPDATE crm_lead SET create_date = %s, date_last_stage_update = %s,
                          ai_last_enrichment_date = %s, ai_probability_score = %s
                    WHERE id = %s""",
                (
                    "2019-03-%02d 09:00:00" % day,
                    "2019-03-%02d 09:00:00" % day,
                    "2019-03-20 00:00:00" if score is not None else None,
                    score or 0,
                    lead.id,
                ),
            )
        cls.env["crm.lead"].invalidate_model()
        for move_day in sorted(moves):
            with freeze_time("2019-03-%02d 09:00:00" % move_day):
                for lead, stage in moves[move_day]:
                    lead.write({"stage_id": stage.id})
                cls.env.flush_all()
                cls.env.cr.precommit.run()
        with freeze_time("2019-03-08 09:00:00"):
            cls.history["h3"].action_set_lost(lost_reason_id=cls.reason_price.id)
            cls.env.flush_all()
            cls.env.cr.precommit.run()
        # closing dates at the day of the last move (the ORM's "now" is the transaction's)
        for key, day in (("h1", 10), ("h2", 12), ("h3", 8), ("h6", 20)):
            cls.env.cr.execute(
                "UPDATE crm_lead SET date_closed = %s WHERE id = %s",
                ("2019-03-%02d 09:00:00" % day, cls.history[key].id),
            )
        cls.env.cr.execute(
            "UPDATE crm_lead SET active = FALSE, probability = 0 WHERE id = %s",
            (cls.history["h3"].id,),
        )
        cls.env["crm.lead"].invalidate_model()
        cls.env["crm.campaign.cost"].create(
            [
                {
                    "campaign_id": cls.campaign.id,
                    "date_from": "2019-03-01",
                    "date_to": "2019-03-31",
                    "amount": 310,
                    "company_id": cls.company_main.id,
                    "currency_id": cls.usd.id,
                },
                {
                    "source_id": cls.source_web.id,
                    "date_from": "2019-03-16",
                    "date_to": "2019-04-14",
                    "amount": 300,
                    "company_id": cls.company_main.id,
                    "currency_id": cls.usd.id,
                },
                {
                    "source_id": cls.source_fair.id,
                    "date_from": "2019-03-01",
                    "date_to": "2019-03-31",
                    "amount": 100,
                    "company_id": cls.company_2.id,
                    "currency_id": cls.aud.id,
                },
            ]
        )

    # ------------------------------------------------------------
    # INDEPENDENT COUNTS (plain Python over the records and their chatter)
    # ------------------------------------------------------------

    def visible_leads(self, user, company_ids):
        env = self.env(user=user, context={"allowed_company_ids": company_ids})
        ids = [lead.id for lead in list(self.leads.values()) + list(self.history.values())]
        return env["crm.lead"].with_context(active_test=False).search([("id", "in", ids)])

    def stage_changes(self, lead):
        """[(date, old stage id, new stage id)] of a lead, from its messages, oldest first."""
        changes = []
        for message in lead.sudo().message_ids:
            for value in message.tracking_value_ids:
                if value.field_id.name == "stage_id":
                    changes.append(
                        (message.date, message.id, value.old_value_integer, value.new_value_integer)
                    )
        return [(date, old, new) for date, _id, old, new in sorted(changes)]

    def stays(self, lead):
        """[(stage id, days)] of the completed stays of a lead in a stage."""
        result, start = [], lead.create_date
        for date, old, _new in self.stage_changes(lead):
            if old:
                result.append((old, (date - start).total_seconds() / 86400.0))
            start = date
        return result

    def won_history(self, user, company_ids):
        """The won deals the norms of March 2019 learn from, as the user reads them."""
        stop = self.day("2019-04-01 00:00:00")
        return [
            lead
            for lead in self.visible_leads(user, company_ids)
            if lead.active
            and lead.stage_id.is_won
            and lead.date_closed
            and stop - timedelta(days=365) <= lead.date_closed < stop
        ]

    def in_period(self, value):
        start = datetime.fromisoformat(PERIOD[0])
        stop = datetime.fromisoformat(PERIOD[1]).replace(hour=23, minute=59, second=59)
        return bool(value) and start <= value <= stop

    def analysis(self, user, company_ids, name, **kwargs):
        return (
            self.env["crm.executive.dashboard"]
            .with_user(user)
            .with_context(allowed_company_ids=company_ids)
            .get_analysis(name, *PERIOD, **kwargs)
        )

    def count(self, user, company_ids, domain):
        env = self.env(user=user, context={"allowed_company_ids": company_ids})
        return env["crm.lead"].with_context(active_test=False).search_count(domain)

    @staticmethod
    def day(value):
        return fields.Datetime.to_datetime(value)
