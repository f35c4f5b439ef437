from odoo import api, fields, models


class CrmLeadScoreHistory(models.Model):
    _name = "crm.lead.score.history"
    _description = "Lead Quality Score History"
    _order = "date desc, id desc"
    _rec_name = "lead_id"

    lead_id = fields.Many2one(
        "crm.lead", string="Lead", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="lead_id.company_id", store=True)
    date = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    score = fields.Float(digits=(16, 1), required=True)
    previous_score = fields.Float(digits=(16, 1))
    change = fields.Float(digits=(16, 1), compute="_compute_change", store=True)
    trend = fields.Selection(
        [("new", "New"), ("up", "Up"), ("down", "Down"), ("stable", "Stable")], required=True
    )
    method = fields.Selection(
        [("rules", "Rules"), ("llm", "Rules + LLM"), ("learned", "Learned model")],
        help="How the quality score was judged. 'Learned model': an entry written before the "
        "win probability got a field of its own (ai_win_probability), when that score was one.",
    )
    reason = fields.Char(help="Why the score was computed: enrichment, install, manual ...")

    @api.depends("score", "previous_score", "trend")
    def _compute_change(self):
        for entry in self:
            entry.change = 0.0 if entry.trend == "new" else entry.score - entry.previous_score
