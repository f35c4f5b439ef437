from datetime import datetime, time, timedelta

import pytz

from odoo import _, api, models
from odoo.tools import SQL

# the lead fields the crons read: a batch fetches these alone (one narrow query) instead of
# the hundred-odd columns of crm_lead that the first field read would load otherwise
LEAD_FIELDS = [
    "name",
    "type",
    "active",
    "company_id",
    "user_id",
    "team_id",
    "stage_id",
    "create_date",
    "date_last_stage_update",
    "date_deadline",
    "expected_revenue",
    "ai_probability_score",
    "ai_next_action",
]
# a stage needs this many past stays before its usual duration is trusted
STUCK_MIN_SAMPLES = 3


class CrmLead(models.Model):
    """What the sales agent reads about many leads at once (one query per batch each)."""

    _inherit = "crm.lead"

    # ------------------------------------------------------------
    # CRONS (bound to their models; these names stay for callers of earlier versions)
    # ------------------------------------------------------------

    @api.model
    def _cron_create_followups(self):
        """See crm.sales.agent.followup._cron_create_followups."""
        return self.env["crm.sales.agent.followup"]._cron_create_followups()

    @api.model
    def _cron_escalate(self):
        """See crm.sales.agent.lead.state._cron_assess (risk, next action, escalations)."""
        return self.env["crm.sales.agent.lead.state"]._cron_assess()

    # ------------------------------------------------------------
    # BUSINESS: calendar and go-live
    # ------------------------------------------------------------

    @api.model
    def _sales_agent_tz(self, company):
        calendar = company.resource_calendar_id
        return pytz.timezone(calendar.tz or company.partner_id.tz or "UTC")

    @api.model
    def _sales_agent_working_day(self, company, offset_days, cache):
        """First working day of the company's calendar (its leaves and public holidays
        included) on or after today + offset_days."""
        key = (company.id, offset_days)
        if key in cache:
            return cache[key]
        calendar = company.resource_calendar_id
        tz = self._sales_agent_tz(company)
        start_day = datetime.now(tz).date() + timedelta(days=offset_days)
        day = start_day
        if calendar:
            start = tz.localize(datetime.combine(start_day, time.min))
            end = calendar.plan_days(1, start, compute_leaves=True)
            if end:
                day = end.astimezone(tz).date()
        cache[key] = day
        return day

    @api.model
    def _sales_agent_within_24_hours(self, company, cache):
        """Deadline of a "within 24 hours" activity: tomorrow's working day, or today when
        today is a working day and tomorrow is not (a Friday, the eve of a holiday)."""
        key = (company.id, "24h")
        if key not in cache:
            today = datetime.now(self._sales_agent_tz(company)).date()
            next_day = self._sales_agent_working_day(company, 1, cache)
            if (
                next_day != today + timedelta(days=1)
                and self._sales_agent_working_day(company, 0, cache) == today
            ):
                next_day = today
            cache[key] = next_day
        return cache[key]

    @api.model
    def _sales_agent_go_live(self, company, config):
        """The agent's go-live date of ``company`` as a naive UTC datetime (midnight in the
        company's time zone): the agent acts only on leads that went quiet after it."""
        go_live = config["go_live_date"]
        if not go_live:
            return datetime.min
        tz = self._sales_agent_tz(company)
        start = tz.localize(datetime.combine(go_live, time.min))
        return start.astimezone(pytz.utc).replace(tzinfo=None)

    # ------------------------------------------------------------
    # BUSINESS: bulk reads
    # ------------------------------------------------------------

    @api.model
    def _sales_agent_last_interactions(self, lead_ids):
        """Latest contact and latest inbound message of many leads, in one query.

        Same definition of a contact as ``llm.service._engagement_counts``: a done activity
        or a non-internal email or comment; inbound when its author is not an internal user.
        :return dict: {lead_id: {"last": {...} or None, "inbound": {...} or None}}
        """
        result = {lead_id: {"last": None, "inbound": None} for lead_id in lead_ids}
        if not lead_ids:
            return result
        self.env.cr.execute(
            SQL(
                """
            WITH contacts AS (
                SELECT m.id, m.res_id, m.date, m.subject, m.body, m.mail_activity_type_id,
                       EXISTS(SELECT 1 FROM res_users u
                               WHERE u.partner_id = m.author_id AND u.share IS NOT TRUE) AS by_user
                  FROM mail_message m
             LEFT JOIN mail_message_subtype st ON st.id = m.subtype_id
                 WHERE m.model = 'crm.lead' AND m.res_id = ANY(%s)
                   AND (m.mail_activity_type_id IS NOT NULL
                        OR (m.message_type IN ('email', 'comment')
                            AND NOT COALESCE(m.is_internal, FALSE)
                            AND NOT COALESCE(st.internal, FALSE)))
            )
            (SELECT DISTINCT ON (res_id) 'last', res_id, id, date, subject, mail_activity_type_id,
                    by_user, NULL
               FROM contacts ORDER BY res_id, date DESC, id DESC)
            UNION ALL
            (SELECT DISTINCT ON (res_id) 'inbound', res_id, id, date, subject, NULL, FALSE, body
               FROM contacts WHERE mail_activity_type_id IS NULL AND NOT by_user
           ORDER BY res_id, date DESC, id DESC)
            """,
                list(lead_ids),
            )
        )
        for kind, res_id, msg_id, date, subject, type_id, by_user, body in self.env.cr.fetchall():
            result[res_id][kind] = {
                "id": msg_id,
                "date": date,
                "subject": subject,
                "activity_type_id": type_id,
                "by_user": by_user,
                "body": body,
            }
        return result

    @api.model
    def _sales_agent_overdue(self, lead_ids, today):
        """{lead_id: (overdue activity count, oldest overdue deadline)}, escalations excluded."""
        if not lead_ids:
            return {}
        self.env["mail.activity"].flush_model(
            ["res_model", "res_id", "date_deadline", "sales_agent_rule"]
        )
        self.env.cr.execute(
            SQL(
                """SELECT res_id, COUNT(*), MIN(date_deadline) FROM mail_activity
                    WHERE res_model = 'crm.lead' AND res_id = ANY(%s) AND date_deadline < %s
                      AND sales_agent_rule IS DISTINCT FROM 'escalation'
                 GROUP BY res_id""",
                list(lead_ids),
                today,
            )
        )
        return {res_id: (count, oldest) for res_id, count, oldest in self.env.cr.fetchall()}

    @api.model
    def _sales_agent_stage_usual_days(self):
        """Usual days in each stage: the dashboard's per-stage norms (its Bottlenecks page),
        the 90th percentile of the time won deals of the last 365 days stayed in the stage,
        from the dashboard's stage history (kept for the day); all leads of all companies (the
        agent runs as superuser).
        :return dict: {stage_id: days} for stages learned from at least STUCK_MIN_SAMPLES deals
        """
        return self.env["crm.executive.dashboard"].sudo()._stuck_norms(STUCK_MIN_SAMPLES)

    # ------------------------------------------------------------
    # BUSINESS: activities
    # ------------------------------------------------------------

    @api.model
    def _sales_agent_create_activities(self, vals_list):
        """Create agent activities of many leads through the ORM, in one batched
        ``mail.activity.create`` (so every module's override of it applies), with
        ``mail_activity_quick_update``: no assignment email (a run could send thousands); the
        assignees' activity counters are refreshed by the create.

        ``mail.activity.create`` subscribes the assignees (one ``message_subscribe`` per
        assignee). In 17.0 it does so through ``browse(res_ids)`` with one id per activity, and
        two activities of one assignee on a lead they do not follow yet (stage activities,
        escalations by several rules) then insert the same follower twice (unique
        constraint): those assignees are subscribed to those leads first.

        :param vals_list: [{res_id, activity_type_id, user_id, summary, note, date_deadline,
            sales_agent_rule}] of crm.lead activities
        :return: the activities, in the order of ``vals_list``
        """
        Activity = self.env["mail.activity"].sudo()
        if not vals_list:
            return Activity
        pairs = {}
        for vals in vals_list:
            pair = (vals["user_id"], vals["res_id"])
            pairs[pair] = pairs.get(pair, 0) + 1
        repeated = {}
        for (user_id, lead_id), count in pairs.items():
            if count > 1:
                repeated.setdefault(user_id, []).append(lead_id)
        for user in self.env["res.users"].sudo().browse(list(repeated)):
            self.sudo().browse(repeated[user.id]).message_subscribe(partner_ids=user.partner_id.ids)
        Activity = Activity.with_context(mail_activity_quick_update=True)
        # the leads' names (res_name) computed together and given to the create with the
        # other stored computed field of an open activity: else the create inserts without
        # them and recomputes them with one UPDATE per activity
        leads = Activity.env["crm.lead"].browse(
            list(dict.fromkeys(vals["res_id"] for vals in vals_list))
        )
        names = dict(zip(leads.ids, leads.mapped("display_name"), strict=True))
        model_id = self.env["ir.model"]._get_id("crm.lead")
        return Activity.create(
            [
                {
                    "res_model_id": model_id,
                    "res_name": names[vals["res_id"]],
                    "date_done": False,
                    "automated": True,
                    **vals,
                }
                for vals in vals_list
            ]
        )

    # ------------------------------------------------------------
    # BUSINESS: small helpers
    # ------------------------------------------------------------

    def _sales_agent_responsible(self):
        """Salesperson, or the team leader when the lead is unassigned."""
        self.ensure_one()
        return self.user_id or self.team_id.user_id

    def _sales_agent_kind_label(self):
        return _("opportunity") if self.type == "opportunity" else _("lead")
