from odoo import api, models
from odoo.tools import SQL


class CrmLead(models.Model):
    """The sales agent's settings: fields of the company (res_company.py), so each company's
    leads are handled with their own company's settings."""

    _inherit = "crm.lead"

    @api.model
    def _sales_agent_config(self, company=None):
        """The sales agent settings of ``company`` (default: the current one), see
        res_company.py: {setting: value}, managers as user ids or False."""
        config = self.env["res.company"]._ai_settings("sales_agent_", company)
        config["batch_size"] = max(config["batch_size"], 1)  # a LIMIT 0 would do nothing
        return config

    @api.model
    def _sales_agent_companies(self):
        """The companies whose leads the crons handle, each with its own settings; leads
        without a company go with the current company (see ``_sales_agent_company_where``)."""
        return self.env["res.company"].sudo().search([]) | self.env.company.sudo()

    @api.model
    def _sales_agent_company_where(self, company, where):
        """``where`` (an SQL condition on ``crm_lead l``) limited to the leads of
        ``company``."""
        if company == self.env.company:
            return SQL("(l.company_id = %s OR l.company_id IS NULL) AND (%s)", company.id, where)
        return SQL("l.company_id = %s AND (%s)", company.id, where)
