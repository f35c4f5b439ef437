import random
from datetime import timedelta

from psycopg2.extras import execute_values

from odoo import fields

from ..lib import learning
from .common import LlmLeadScoringCommon

BUDGET_EFFECT = {"confirmed": 1.6, "partly": 0.4, "unknown": -0.6}
PHONE_EFFECT = {"correct": 0.9, None: -0.5}
# linking a customer LOWERS the chance in this history: never proposed as a move
PARTNER_EFFECT = {True: -0.8, False: 0.3}


class BantHistoryCommon(LlmLeadScoringCommon):
    """A closed history where the budget's BANT state, a valid phone and the source matter
    (and a linked customer lowers the chance), trained once for the class."""

    N_CLOSED = 2000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sources = cls.env["utm.source"].create(
            [{"name": "Bant source %s" % n} for n in ("A", "B")]
        )
        cls.stage = cls.env["crm.stage"].search([("is_won", "=", False)], limit=1)
        cls.won_stage = cls.env["crm.stage"].search([("is_won", "=", True)], limit=1)
        cls.partner = cls.env["res.partner"].create({"name": "Bant history customer"})
        cls.closed_ids = cls._insert_leads(cls.N_CLOSED, seed=1, days_ago=400)
        cls.summary = cls.env["llm.scoring.model"]._train_company(cls.env.company)
        cls.model = cls.env["llm.scoring.model"].search(
            [("company_id", "=", cls.env.company.id), ("team_id", "=", False)]
        )

    @classmethod
    def _insert_leads(cls, count, seed, days_ago=0, created=None, closed=None, budget=None):
        """Leads in SQL (fast): closed ones (won or lost by their true probability) unless
        ``closed`` is False; ``created``/``closed`` moments default to a spread in the past."""
        rng = random.Random(seed)
        now = fields.Datetime.now()
        rows = []
        for i in range(count):
            state = budget or rng.choice(list(BUDGET_EFFECT))
            phone = rng.choice(list(PHONE_EFFECT))
            source = rng.randrange(3)  # 2 = no source
            partner = rng.random() < 0.5
            z = (
                -0.8
                + BUDGET_EFFECT[state]
                + PHONE_EFFECT[phone]
                + (0.5, -0.2, -0.6)[source]
                + PARTNER_EFFECT[partner]
            )
            won = rng.random() < learning.sigmoid(z)
            is_closed = closed is not False
            created_at = created or now - timedelta(days=days_ago) + timedelta(
                days=days_ago * 0.9 * i / count
            )
            closed_at = closed if closed not in (None, False) else created_at + timedelta(days=5)
            rows.append(
                (
                    "Bant lead %s-%s" % (seed, i),
                    "opportunity",
                    won or not is_closed,
                    (100.0 if won else 0.0) if is_closed else 20.0,
                    cls.env.company.id,
                    cls.won_stage.id if won and is_closed else cls.stage.id,
                    cls.sources[source].id if source < 2 else None,
                    phone,
                    cls.partner.id if partner else None,
                    state,
                    created_at,
                    closed_at if is_closed else None,
                    "0",
                )
            )
        ids = [
            row[0]
            for row in execute_values(
                cls.env.cr._obj,
                """INSERT INTO crm_lead (name, type, active, probability, company_id, stage_id,
                       source_id, phone_state, partner_id, ai_bant_budget, create_date,
                       date_closed, priority)
                   VALUES %s RETURNING id""",
                rows,
                fetch=True,
            )
        ]
        cls.env.invalidate_all()
        return ids
