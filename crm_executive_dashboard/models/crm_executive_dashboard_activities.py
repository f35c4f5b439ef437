from odoo import api, models
from odoo.osv import expression
from odoo.tools import SQL

# the leads whose activities count: Odoo's Activities report (crm.activity.report) shows the
# done activities of active leads only (its ``active`` field hides the archived and lost
# ones), and archiving a lead deletes its planned activities
ACTIVITY_LEADS_DOMAIN = [("active", "=", True)]


class CrmExecutiveDashboardActivities(models.AbstractModel):
    _inherit = "crm.executive.dashboard"

    @api.model
    def _activities_done_domain(self, p):
        """The rows of Odoo's Activities report behind the "done" counts of the period (the
        report's ``team_id`` and ``user_id`` are the lead's, like the dashboard's filters)."""
        return expression.AND(
            [
                p["base_domain"],
                [("active", "=", True), ("mail_activity_type_id", "!=", False)],
                self._range_domain("date", p["from_utc"], p["to_utc"]),
            ]
        )

    @api.model
    def _query_activities(self, p):
        """Activities done in the period and overdue today, per team and salesperson of their
        lead, counted as Odoo counts them:

        - done: the messages of done activities (``mail_activity_type_id`` set) of active
          leads, by completion date: the rows of the Activities report (CRM > Reporting >
          Activities) in the period;
        - overdue: the planned activities (``active``: a done activity whose type has *Keep
          Done* is archived, not deleted) of active leads due before today in the user's time
          zone, Odoo's *Late* activities.

        The activities are matched with their leads by merge joins of narrow indexes read in
        lead id order (``crm_lead_active_dashboard_idx``,
        ``mail_message_lead_activity_res_dashboard_idx``,
        ``mail_activity_lead_open_dashboard_idx``), each branch whole in a parallel worker:
        hashing the million leads, or sorting the activities, costs several times more, and
        splitting the leads' scan between the workers made each of them read all the messages
        again (measured on a million leads: 0.30 s instead of 0.33 s). The (team, salesperson)
        groups are rolled up here.
        """
        query = self._lead_query(expression.AND([p["base_domain"], ACTIVITY_LEADS_DOMAIN]))
        self.env["mail.message"].flush_model(["model", "res_id", "mail_activity_type_id", "date"])
        self.env["mail.activity"].flush_model(["res_model", "res_id", "date_deadline", "active"])
        leads = query.subselect("crm_lead.id", "crm_lead.team_id", "crm_lead.user_id")
        sql = SQL(
            """SELECT act.team_id, act.user_id,
                      COUNT(*) FILTER (WHERE act.done), COUNT(*) FILTER (WHERE NOT act.done)
                 FROM (SELECT lead.team_id, lead.user_id, TRUE AS done
                         FROM mail_message m
                         JOIN %(leads)s lead ON lead.id = m.res_id
                        WHERE m.model = 'crm.lead' AND m.mail_activity_type_id IS NOT NULL
                          AND m.date >= %(start)s AND m.date < %(stop)s
                    UNION ALL
                       SELECT lead.team_id, lead.user_id, FALSE
                         FROM mail_activity a
                         JOIN %(leads)s lead ON lead.id = a.res_id
                        WHERE a.res_model = 'crm.lead' AND a.active
                          AND a.date_deadline < %(today)s
                      ) act
             GROUP BY act.team_id, act.user_id""",
            start=p["from_utc"],
            stop=p["to_utc"],
            today=p["today"],
            leads=leads,
        )
        with self._planner(
            jit="off",
            enable_hashjoin="off",
            enable_nestloop="off",
            parallel_setup_cost=0,
            parallel_tuple_cost=0.01,
            min_parallel_index_scan_size="8GB",
            min_parallel_table_scan_size="8GB",
        ):
            self.env.cr.execute(sql)
            rows = self.env.cr.fetchall()
        result = {"teams": {}, "users": {}}
        for team_id, user_id, done, overdue in rows:
            for key, group in ((team_id, result["teams"]), (user_id, result["users"])):
                counts = group.setdefault(key, {"done": 0, "overdue": 0})
                counts["done"] += done
                counts["overdue"] += overdue
        return result
