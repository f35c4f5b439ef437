from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL


class CrmLead(models.Model):
    _inherit = "crm.lead"

    # Stage history (read from the tracking values of ``stage_id``), searchable so that the
    # dashboard's analyses can open the leads behind their figures with a plain domain
    dashboard_visited_stage_ids = fields.Many2many(
        "crm.stage",
        string="Stages Visited",
        compute="_compute_dashboard_stage_history",
        search="_search_dashboard_visited_stage_ids",
        help="The stages the lead has been in: its current stage and every stage of its stage "
        "history.",
    )
    dashboard_reached_stage_ids = fields.Many2many(
        "crm.stage",
        string="Stages Reached",
        compute="_compute_dashboard_stage_history",
        search="_search_dashboard_reached_stage_ids",
        help="The funnel stages the lead reached: every stage up to (in the order of the "
        "stages) the furthest stage it has been in.",
    )

    def _compute_dashboard_stage_history(self):
        stages = self.env["crm.stage"].sudo().search([], order="sequence, id")
        rank = {stage.id: index for index, stage in enumerate(stages)}
        visited = {lead.id: set(lead.stage_id.ids) for lead in self}
        real_ids = [lead_id for lead_id in visited if isinstance(lead_id, int)]
        if real_ids:
            self.env.cr.execute(
                SQL(
                    """SELECT m.res_id, v.old_value_integer, v.new_value_integer
                         FROM mail_message m
                         JOIN mail_tracking_value v ON v.mail_message_id = m.id
                        WHERE m.model = 'crm.lead' AND m.res_id = ANY(%s) AND v.field_id = %s""",
                    real_ids,
                    self._dashboard_stage_field_id(),
                )
            )
            for lead_id, old, new in self.env.cr.fetchall():
                visited[lead_id].update(stage for stage in (old, new) if stage in rank)
        for lead in self:
            ids = visited[lead.id]
            lead.dashboard_visited_stage_ids = [(6, 0, sorted(ids))]
            furthest = max((rank[stage] for stage in ids if stage in rank), default=-1)
            lead.dashboard_reached_stage_ids = [(6, 0, stages[: furthest + 1].ids)]

    @api.model
    def _dashboard_stage_field_id(self):
        return self.env["ir.model.fields"]._get("crm.lead", "stage_id").id

    @api.model
    def _dashboard_stage_ids_arg(self, operator, value):
        if operator not in ("in", "="):
            raise UserError(_("Stage history can only be searched with 'in' or '='."))
        ids = value if isinstance(value, (list, tuple)) else [value]
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise UserError(_("Stage history is searched by stage ids."))
        return list(ids)

    @api.model
    def _dashboard_visited_sql(self, stage_ids):
        """SQL of the ids of the leads that have been in one of ``stage_ids``."""
        self.flush_model(["stage_id"])
        self.env["mail.message"].flush_model(["model", "res_id"])
        self.env["mail.tracking.value"].flush_model(
            ["field_id", "old_value_integer", "new_value_integer", "mail_message_id"]
        )
        return SQL(
            """(SELECT id FROM crm_lead WHERE stage_id = ANY(%(stages)s)
               UNION
               SELECT m.res_id FROM mail_tracking_value v
                 JOIN mail_message m ON m.id = v.mail_message_id
                WHERE v.field_id = %(field)s AND m.model = 'crm.lead'
                  AND (v.new_value_integer = ANY(%(stages)s)
                       OR v.old_value_integer = ANY(%(stages)s)))""",
            stages=stage_ids,
            field=self._dashboard_stage_field_id(),
        )

    def _search_dashboard_visited_stage_ids(self, operator, value):
        ids = self._dashboard_stage_ids_arg(operator, value)
        return [("id", "in", self._dashboard_visited_sql(ids))]

    def _search_dashboard_reached_stage_ids(self, operator, value):
        """Reached stage S = has been in S or in a stage after it (order of the stages)."""
        ids = self._dashboard_stage_ids_arg(operator, value)
        stages = self.env["crm.stage"].sudo().search([], order="sequence, id")
        positions = [index for index, stage in enumerate(stages) if stage.id in ids]
        if not positions:
            return [("id", "in", [])]
        return [("id", "in", self._dashboard_visited_sql(stages[min(positions) :].ids))]
