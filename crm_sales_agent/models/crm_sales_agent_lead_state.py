from odoo import fields, models

from .crm_lead import RISK_LEVELS, TONES


class CrmSalesAgentLeadState(models.Model):
    """Risk and next action of one lead, as the escalation cron last assessed them, and the
    follow-up cron's bookkeeping of the lead (which rules already fired).

    Kept out of ``crm_lead`` on purpose: a ``crm_lead`` row carries some 35 indexes (trigram
    ones included), so rewriting the assessment of 100,000 leads there cost about 35 s per
    run, and marking the leads a follow-up run went through about 7 s. This narrow table has
    two indexes and is upserted in one statement per batch; the lead shows its values through
    related fields (searchable, read-only).
    """

    _name = "crm.sales.agent.lead.state"
    _description = "Sales Agent Assessment of a Lead"
    _rec_name = "lead_id"

    lead_id = fields.Many2one(
        "crm.lead", string="Lead/Opportunity", required=True, ondelete="cascade", readonly=True
    )
    risk_level = fields.Selection(RISK_LEVELS, string="Risk", readonly=True)
    risk_reasons = fields.Text(string="Risk Reasons", readonly=True)
    risk_date = fields.Datetime(string="Risk Assessed On", readonly=True)
    tone = fields.Selection(TONES, string="Tone of Last Inbound Message", readonly=True)
    tone_message_id = fields.Many2one(
        "mail.message",
        string="Message Whose Tone Was Analysed",
        readonly=True,
        ondelete="set null",
        index="btree_not_null",
    )
    next_action = fields.Char(string="Suggested Next Action", readonly=True)
    next_action_reason = fields.Char(string="Why", readonly=True)
    next_action_date = fields.Date(string="By", readonly=True)
    next_action_type_id = fields.Many2one(
        "mail.activity.type", string="Next Action Type", readonly=True, ondelete="set null"
    )

    # follow-up bookkeeping (set by the follow-up cron, never by the escalation cron)
    welcome_done = fields.Boolean(string="Welcome Call Planned", readonly=True)
    stage_done_id = fields.Many2one(
        "crm.stage",
        string="Stage Whose Activities Were Planned",
        readonly=True,
        ondelete="set null",
    )
    followup_date = fields.Datetime(string="Last Agent Follow-up", readonly=True)

    _sql_constraints = [
        ("lead_uniq", "UNIQUE(lead_id)", "A lead has one sales agent assessment."),
    ]
