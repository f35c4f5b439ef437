from odoo import api, fields, models
from odoo.tools import SQL
from odoo.tools.sql import column_exists, create_column

from ..lib.learning import P_MAX, P_MIN


class CrmLead(models.Model):
    _inherit = "crm.lead"

    # Win probability: one meaning, next to the quality score (ai_probability_score)
    ai_win_probability = fields.Float(
        string="Win Probability",
        digits=(16, 1),
        compute="_compute_ai_win_probability",
        store=True,
        readonly=True,
        copy=False,
        group_operator="avg",
        help="Chance (0-100) that this lead is won: the model learned from the company's "
        "closed leads and calibrated on them, or Odoo's Predictive Lead Scoring until a model "
        "is published. Open leads stay within 1-99 %: never certain. Won leads 100, lost 0.",
    )
    ai_thin_evidence = fields.Boolean(
        string="Thin Evidence",
        compute="_compute_ai_thin_evidence",
        help="Some of this lead's values (a source, a tag, a country...) were rare among the "
        "closed leads the model learned from: its win probability rests on little evidence.",
    )

    def _auto_init(self):
        """Installing into a database with a million leads must not compute the new stored
        field lead by lead (over 15 minutes measured): the column is created and filled by
        one UPDATE, with the same rules as the compute."""
        cr = self.env.cr
        if not column_exists(cr, "crm_lead", "ai_win_probability"):
            create_column(cr, "crm_lead", "ai_win_probability", "numeric")
            learned = (
                SQL(
                    """WHEN l.ai_score_method = 'learned'
                            AND l.ai_score_factors ->> 'probability' IS NOT NULL
                       THEN ROUND(100 * (l.ai_score_factors ->> 'probability')::numeric, 1)"""
                )
                if column_exists(cr, "crm_lead", "ai_score_factors")
                else SQL("")
            )
            cr.execute(
                SQL(
                    """UPDATE crm_lead l
                          SET ai_win_probability = CASE
                              WHEN l.active AND s.is_won THEN 100
                              WHEN NOT l.active AND COALESCE(l.probability, 0) = 0 THEN 0
                              %s
                              ELSE LEAST(GREATEST(COALESCE(l.automated_probability, 0), %s), %s)
                              END
                         FROM crm_lead l2 LEFT JOIN crm_stage s ON s.id = l2.stage_id
                        WHERE l2.id = l.id""",
                    learned,
                    100 * P_MIN,
                    100 * P_MAX,
                )
            )
        return super()._auto_init()

    @api.depends(
        "ai_score_factors",
        "ai_score_method",
        "automated_probability",
        "active",
        "probability",
        "stage_id.is_won",
    )
    def _compute_ai_win_probability(self):
        for lead in self:
            payload = lead.ai_score_factors or {}
            if lead.active and lead.stage_id.is_won:
                lead.ai_win_probability = 100.0
            elif not lead.active and not lead.probability:
                lead.ai_win_probability = 0.0
            elif lead.ai_score_method == "learned" and payload.get("probability") is not None:
                lead.ai_win_probability = round(100 * payload["probability"], 1)
            else:
                lead.ai_win_probability = min(
                    max(lead.automated_probability or 0.0, 100 * P_MIN), 100 * P_MAX
                )

    @api.depends("ai_score_factors")
    def _compute_ai_thin_evidence(self):
        for lead in self:
            lead.ai_thin_evidence = bool((lead.ai_score_factors or {}).get("thin"))

    # ------------------------------------------------------------
    # PLS
    # ------------------------------------------------------------

    def _update_automated_probabilities(self):
        """Odoo's PLS cron rewrites automated_probability in SQL: the win probability of the
        open leads without a learned score follows it here, in one UPDATE."""
        res = super()._update_automated_probabilities()
        self._ai_sync_win_probability_with_pls()
        return res

    @api.model
    def _ai_sync_win_probability_with_pls(self):
        self.flush_model()  # pending writes and recomputes first: the UPDATE has the last word
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead l
                      SET ai_win_probability = LEAST(GREATEST(l.automated_probability, %s), %s)
                     FROM crm_stage s
                    WHERE s.id = l.stage_id AND l.active AND s.is_won IS NOT TRUE
                      AND l.ai_score_method IS DISTINCT FROM 'learned'
                      AND l.ai_win_probability IS DISTINCT FROM
                          LEAST(GREATEST(l.automated_probability, %s), %s)""",
                100 * P_MIN,
                100 * P_MAX,
                100 * P_MIN,
                100 * P_MAX,
            )
        )
        self.invalidate_model(["ai_win_probability"])
