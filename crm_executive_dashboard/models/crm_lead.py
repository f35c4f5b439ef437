from odoo import models, tools


class CrmLead(models.Model):
    _inherit = "crm.lead"

    def _auto_init(self):
        res = super()._auto_init()
        # the dashboard selects the leads closed in a period and the open opportunities by
        # expected closing date; without these a one-year period scans the whole table
        tools.create_index(self._cr, "crm_lead_date_closed_dashboard_idx", self._table,
                           ["date_closed"], where="date_closed IS NOT NULL")
        tools.create_index(self._cr, "crm_lead_date_deadline_open_dashboard_idx", self._table,
                           ["date_deadline"], where="date_closed IS NULL AND active")
        return res
