from datetime import timedelta

from odoo import api, fields, models
from odoo.osv import expression

# messages of a session sent back to the model as the conversation so far
HISTORY_MESSAGES = 6


class CrmCopilotSession(models.Model):
    """A conversation of one user with the copilot (own conversations only, see the rules)."""

    _name = "crm.copilot.session"
    _description = "CRM Copilot Conversation"
    _order = "last_date desc, id desc"

    name = fields.Char(string="Title", required=True)
    user_id = fields.Many2one(
        "res.users",
        string="User",
        required=True,
        index=True,
        default=lambda self: self.env.user,
        ondelete="cascade",
    )
    company_id = fields.Many2one(
        "res.company", string="Company", required=True, default=lambda self: self.env.company
    )
    lead_id = fields.Many2one("crm.lead", string="Lead", ondelete="set null")
    last_date = fields.Datetime(string="Last Message", default=fields.Datetime.now, index=True)
    message_ids = fields.One2many("crm.copilot.message", "session_id", string="Messages")
    # proposals already confirmed (their ids), so that a second click writes nothing
    done_proposal_ids = fields.Json(string="Confirmed Proposals", default=list)

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    def _proposal(self, proposal_id):
        """The proposal ``proposal_id`` made in this conversation, or None."""
        self.ensure_one()
        for message in self.message_ids.filtered(lambda m: m.role == "assistant"):
            for proposal in (message.data or {}).get("proposals") or ():
                if proposal.get("id") == proposal_id:
                    return proposal
        return None

    def _history(self):
        """The last exchanges, oldest first, as chat messages (text only: no figures)."""
        self.ensure_one()
        messages = self.message_ids.sorted("id")[-HISTORY_MESSAGES:]
        return [{"role": m.role, "content": m.content} for m in messages]

    @api.autovacuum
    def _gc_copilot_sessions(self):
        """Delete the conversations idle for longer than their company's retention (the
        setting *Keep Copilot Conversations*, days since the last message; 0: kept forever)."""
        now = fields.Datetime.now()
        Company = self.env["res.company"]
        domains = []
        for company in Company.sudo().with_context(active_test=False).search([]):
            days = Company._ai_settings("sales_agent_", company)["copilot_retention_days"]
            if days > 0:
                limit = now - timedelta(days=days)
                domains.append([("company_id", "=", company.id), ("last_date", "<", limit)])
        if domains:
            self.sudo().search(expression.OR(domains)).unlink()


class CrmCopilotMessage(models.Model):
    _name = "crm.copilot.message"
    _description = "CRM Copilot Message"
    _order = "id"

    session_id = fields.Many2one(
        "crm.copilot.session", string="Conversation", required=True, index=True, ondelete="cascade"
    )
    role = fields.Selection(
        [("user", "User"), ("assistant", "Copilot")], string="Role", required=True
    )
    content = fields.Text(string="Text")
    # the answer as returned by ask(): agent, figures, records, proposals, method, error
    data = fields.Json(string="Answer Data")
