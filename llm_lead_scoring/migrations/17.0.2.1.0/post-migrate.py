"""ai_probability_score is the quality score only (rules + LLM, 0-100); before 17.0.2.1.0 it
held the learned win probability on leads scored by a model (ai_score_method 'learned'). Those
values are knowable and are put back to the quality composite the scoring computed at the same
time (ai_enrichment_data -> scores -> probability), or 0 for a lead that a model rescored but
that was never scored itself. The win probability is ai_win_probability, untouched here. Score
history entries with the method 'learned' stay as they were: they record what was shown then."""

from odoo.tools import SQL


def migrate(cr, version):
    cr.execute(
        SQL(
            """UPDATE crm_lead
                  SET ai_probability_score = COALESCE(
                          (ai_enrichment_data -> 'scores' ->> 'probability')::numeric, 0)
                WHERE ai_score_method = 'learned'"""
        )
    )
