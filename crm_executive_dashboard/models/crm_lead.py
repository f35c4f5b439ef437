from odoo import models, tools
from odoo.tools import SQL

# the columns of crm_lead the dashboard reads: with them in an index, its main query and its
# activity counts read the index alone (index-only scans) instead of the wide lead rows
DASHBOARD_COLUMNS = (
    "id",
    "date_closed",
    "company_id",
    "team_id",
    "user_id",
    "stage_id",
    "active",
    "type",
    "probability",
    "expected_revenue",
    "date_last_stage_update",
    "ai_last_enrichment_date",
    "ai_probability_score",
    "ai_completeness_score",
    "ai_clarity_score",
    "ai_engagement_score",
    "ai_enrichment_status",
)

FORECAST_COLUMNS = (
    "type",
    "stage_id",
    "company_id",
    "team_id",
    "user_id",
    "create_date",
    "probability",
    "expected_revenue",
)


class CrmLead(models.Model):
    _inherit = "crm.lead"

    def _auto_init(self):
        res = super()._auto_init()
        # the dashboard selects the leads closed in a period and the open opportunities by
        # expected closing date; without these a one-year period scans the whole table
        tools.create_index(
            self._cr,
            "crm_lead_date_closed_dashboard_idx",
            self._table,
            ["date_closed"],
            where="date_closed IS NOT NULL",
        )
        # the open leads by expected closing date, with what the forecast reads (index-only)
        self._cr.execute("DROP INDEX IF EXISTS crm_lead_date_deadline_open_dashboard_idx")
        if not tools.index_exists(self._cr, "crm_lead_forecast_dashboard_idx"):
            self._cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (date_deadline) INCLUDE (%s) "
                    "WHERE date_closed IS NULL AND active",
                    SQL.identifier("crm_lead_forecast_dashboard_idx"),
                    SQL.identifier(self._table),
                    SQL(", ").join(SQL.identifier(column) for column in FORECAST_COLUMNS),
                )
            )
        if not tools.index_exists(self._cr, "crm_lead_dashboard_idx"):
            self._cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (create_date) INCLUDE (%s)",
                    SQL.identifier("crm_lead_dashboard_idx"),
                    SQL.identifier(self._table),
                    SQL(", ").join(SQL.identifier(column) for column in DASHBOARD_COLUMNS),
                )
            )
        # the team and salesperson of the counted leads (active or lost) in id order, to match
        # them with their activities (merge join, see the dashboard's _query_activities)
        if not tools.index_exists(self._cr, "crm_lead_counted_dashboard_idx"):
            self._cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (id) INCLUDE (team_id, user_id, company_id) "
                    "WHERE active OR probability = 0",
                    SQL.identifier("crm_lead_counted_dashboard_idx"),
                    SQL.identifier(self._table),
                )
            )
        # the top AI-scored leads: read in the order of this index, the first ones are found
        # without sorting the scored leads
        if not tools.index_exists(self._cr, "crm_lead_ai_top_dashboard_idx"):
            self._cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (ai_probability_score DESC, id DESC) "
                    "WHERE ai_probability_score IS NOT NULL",
                    SQL.identifier("crm_lead_ai_top_dashboard_idx"),
                    SQL.identifier(self._table),
                )
            )
        return res


class MailActivity(models.Model):
    _inherit = "mail.activity"

    def _auto_init(self):
        res = super()._auto_init()
        # the activities of leads in lead order, with their deadline, for the dashboard's
        # overdue counts
        if not tools.index_exists(self._cr, "mail_activity_lead_dashboard_idx"):
            self._cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (res_id) INCLUDE (date_deadline) "
                    "WHERE res_model = 'crm.lead'",
                    SQL.identifier("mail_activity_lead_dashboard_idx"),
                    SQL.identifier(self._table),
                )
            )
        return res


class MailMessage(models.Model):
    _inherit = "mail.message"

    def _auto_init(self):
        res = super()._auto_init()
        # the activities done on leads, for the dashboard (small: done activities of leads
        # only): by date, for short periods, and in lead order, to be matched with the leads
        # without sorting them on long ones
        for name, key, include in (
            ("mail_message_lead_activity_dashboard_idx", "date", "res_id"),
            ("mail_message_lead_activity_res_dashboard_idx", "res_id", "date"),
        ):
            if not tools.index_exists(self._cr, name):
                self._cr.execute(
                    SQL(
                        "CREATE INDEX %s ON %s (%s) INCLUDE (%s) "
                        "WHERE model = 'crm.lead' AND mail_activity_type_id IS NOT NULL",
                        SQL.identifier(name),
                        SQL.identifier(self._table),
                        SQL.identifier(key),
                        SQL.identifier(include),
                    )
                )
        return res
