from datetime import timedelta

from markupsafe import escape

from odoo import _, api, fields, models
from odoo.tools import SQL

# events older than this are not "new" any more: a lead created or moved long ago gets
# no welcome call or stage activities when the agent is switched on later
RECENT_EVENT_DAYS = 2
BOOKKEEPING_COLUMNS = ["welcome_done", "stage_done_id", "followup_date"]


class CrmSalesAgentFollowup(models.AbstractModel):
    """The follow-up rules of the sales agent and their cron: a call within 24 hours for new
    leads, the activities of a stage when a lead enters it, one follow-up when a lead has no
    planned activity and no contact for N days. Only leads that went quiet (were created,
    entered their stage, had their last contact) after the company's go-live date."""

    _name = "crm.sales.agent.followup"
    _inherit = ["crm.sales.agent.batch.mixin"]
    _description = "Sales Agent: Follow-ups"

    _sales_agent_cron_xmlid = "crm_sales_agent.ir_cron_sales_agent_followup"

    # ------------------------------------------------------------
    # CRON
    # ------------------------------------------------------------

    @api.model
    def _cron_create_followups(self):
        """Welcome calls, stage activities and inactivity follow-ups, in locked batches, one
        company after the other with the settings of the leads' company."""
        if not self.env.context.get("lang"):
            return self._sales_agent_with_lang()._cron_create_followups()
        return self._sales_agent_followup_run()

    @api.model
    def _sales_agent_followup_run(self, companies=None, report=None):
        """One run of the rules over ``companies`` (default: all). ``report``: dry run, the
        activities the run would create are appended to this list and nothing is written."""
        Lead = self.env["crm.lead"]
        now = fields.Datetime.now()
        context = {"day_cache": {}, "now": now, "report": report}
        jobs = []
        for company in companies or Lead._sales_agent_companies():
            config = Lead._sales_agent_config(company)
            enabled = {
                "new_lead": config["new_lead_call_enabled"],
                "stage": config["stage_activities_enabled"],
                "followup": config["followup_enabled"],
            }
            if not any(enabled.values()):
                continue
            go_live = Lead._sales_agent_go_live(company, config)
            where = Lead._sales_agent_company_where(
                company, self._sales_agent_followup_where(config, enabled, now, go_live)
            )
            jobs.append(
                {
                    "company": company,
                    "config": config,
                    "where": where,
                    "enabled": enabled,
                    "go_live": go_live,
                }
            )
        return self._sales_agent_run_batches(
            jobs,
            lambda leads, job: self._sales_agent_followup_batch(leads, job, context),
            dry_run=report is not None,
        )

    @api.model
    def _sales_agent_followup_where(self, config, enabled, now, go_live):
        """SQL condition on ``crm_lead l``: the leads one of the enabled rules may apply to."""
        recent = max(now - timedelta(days=RECENT_EVENT_DAYS), go_live)
        idle_before = now - timedelta(
            days=min(config["followup_lead_days"], config["followup_opportunity_days"])
        )
        # what the rules already did is in the lead's state row, looked up by its unique index
        # (a join would be planned on the statistics of a table that the first run fills)
        conditions = []
        if enabled["new_lead"]:
            conditions.append(
                SQL(
                    """(l.create_date >= %s AND NOT COALESCE((SELECT st.welcome_done
                         FROM crm_sales_agent_lead_state st WHERE st.lead_id = l.id), FALSE))""",
                    recent,
                )
            )
        if enabled["stage"]:
            conditions.append(
                SQL(
                    """(l.date_last_stage_update >= %s AND l.stage_id IS DISTINCT FROM (
                        SELECT st.stage_done_id FROM crm_sales_agent_lead_state st
                         WHERE st.lead_id = l.id))""",
                    recent,
                )
            )
        if enabled["followup"]:
            # quiet since go-live: created after it, or a message after it (a superset of the
            # contacts, checked lead by lead in the batch)
            conditions.append(
                SQL(
                    """(GREATEST(l.create_date, (SELECT st.followup_date
                          FROM crm_sales_agent_lead_state st WHERE st.lead_id = l.id)) < %s
                        AND NOT EXISTS (SELECT 1 FROM mail_activity a
                                         WHERE a.res_model = 'crm.lead' AND a.res_id = l.id)
                        AND (l.create_date >= %s OR EXISTS (
                             SELECT 1 FROM mail_message m
                              WHERE m.model = 'crm.lead' AND m.res_id = l.id
                                AND m.date >= %s)))""",
                    idle_before,
                    go_live,
                    go_live,
                )
            )
        return SQL(" OR ").join(conditions)

    # ------------------------------------------------------------
    # RULES
    # ------------------------------------------------------------

    @api.model
    def _sales_agent_followup_batch(self, leads, job, context):
        config, enabled, go_live = job["config"], job["enabled"], job["go_live"]
        Lead = self.env["crm.lead"]
        now = context["now"]
        recent = max(now - timedelta(days=RECENT_EVENT_DAYS), go_live)
        counts = self.env["llm.service"]._engagement_counts(leads.ids)
        day_cache = context["day_cache"]
        activity_vals = []
        # what the rules already did: {lead id: (welcome done, stage done id, followup date)}
        State = self.env["crm.sales.agent.lead.state"]
        done = State._sales_agent_read(leads.ids, BOOKKEEPING_COLUMNS)
        nothing_done = (False, None, None)
        # bookkeeping to write: {lead id: {column: value}}, only for the leads one of whose
        # rules was evaluated
        marks = {}
        has_activity = {lead.id for lead in leads if counts[lead.id]["activities_planned"]}
        call_type = self.env.ref("mail.mail_activity_data_call")
        # 1. new lead: a call within 24 hours
        for lead in leads.filtered(lambda lead: not done.get(lead.id, nothing_done)[0]):
            if lead.create_date < recent:
                continue  # never selected for this rule again, whatever the flag
            marks.setdefault(lead.id, {})["welcome"] = True
            if not enabled["new_lead"]:
                continue
            user = lead._sales_agent_responsible()
            if not user or lead.id in has_activity or counts[lead.id]["last_contact"]:
                continue
            activity_vals.append(
                {
                    "res_id": lead.id,
                    "activity_type_id": call_type.id,
                    "user_id": user.id,
                    "summary": _("Call within 24 hours"),
                    "note": escape(
                        _(
                            "New %(kind)s: call the contact within 24 hours.",
                            kind=lead._sales_agent_kind_label(),
                        )
                    ),
                    "date_deadline": Lead._sales_agent_within_24_hours(
                        lead.company_id or self.env.company, day_cache
                    ),
                    "sales_agent_rule": "new_lead",
                }
            )
            has_activity.add(lead.id)
        # 2. entering a stage: its configured activities and activity plan
        for lead in leads.filtered(
            lambda lead: (lead.stage_id.id or None) != done.get(lead.id, nothing_done)[1]
        ):
            if not (lead.date_last_stage_update and lead.date_last_stage_update >= recent):
                # an old stage entry is never selected for this rule again; recorded only
                # when the lead is written anyway (below)
                continue
            marks.setdefault(lead.id, {})["stage"] = lead.stage_id.id or None
            if not (enabled["stage"] and lead.stage_id):
                continue
            vals = self._sales_agent_stage_activity_vals(lead, day_cache)
            if vals:
                activity_vals += vals
                has_activity.add(lead.id)
        # 3. no planned activity and no contact for N days (since after go-live): one follow-up
        if enabled["followup"]:
            candidates = leads.filtered(lambda lead: lead.id not in has_activity)
            interactions = Lead._sales_agent_last_interactions(candidates.ids)
            followup_type = self.env.ref("crm_sales_agent.mail_activity_type_sales_agent_followup")
            for lead in candidates:
                days_limit = (
                    config["followup_opportunity_days"]
                    if lead.type == "opportunity"
                    else config["followup_lead_days"]
                )
                last_contact = counts[lead.id]["last_contact"]
                quiet_since = max(d for d in (last_contact, lead.create_date) if d)
                if quiet_since < go_live:
                    continue  # went quiet before the agent went live: left to the team
                reference = max(quiet_since, done.get(lead.id, nothing_done)[2] or quiet_since)
                if now - reference < timedelta(days=days_limit):
                    continue
                user = lead._sales_agent_responsible()
                if not user:
                    continue
                idle_days = (now - quiet_since).days
                summary = self._sales_agent_followup_summary(
                    lead, idle_days, interactions[lead.id]["last"]
                )
                activity_vals.append(
                    {
                        "res_id": lead.id,
                        "activity_type_id": followup_type.id,
                        "user_id": user.id,
                        "summary": summary[:250],
                        # a note repeating the summary costs its HTML sanitising for
                        # nothing: only the summary too long for its field gets one
                        "note": escape(summary) if len(summary) > 250 else False,
                        "date_deadline": Lead._sales_agent_working_day(
                            lead.company_id or self.env.company, 0, day_cache
                        ),
                        "sales_agent_rule": "followup",
                    }
                )
                marks.setdefault(lead.id, {})["followup"] = now
        if context["report"] is not None:
            context["report"] += [
                {"kind": "activity", "rule": vals["sales_agent_rule"], "user_id": vals["user_id"]}
                for vals in activity_vals
            ]
            return
        Lead._sales_agent_create_activities(activity_vals)
        rows = []
        for lead in leads.filtered(lambda lead: lead.id in marks):
            mark = marks[lead.id]
            rows.append(
                (
                    lead.id,
                    True,  # an old lead is never welcomed: the flag holds for every lead written
                    mark.get("stage", lead.stage_id.id or None),
                    mark.get("followup", done.get(lead.id, nothing_done)[2]),
                )
            )
        State._sales_agent_upsert(BOOKKEEPING_COLUMNS, rows)

    @api.model
    def _sales_agent_stage_activity_vals(self, lead, day_cache):
        """Activities configured for the lead's current stage (and its activity plan)."""
        Lead = self.env["crm.lead"]
        stage = lead.stage_id
        company = lead.company_id or self.env.company
        user = lead._sales_agent_responsible()
        vals_list = []
        for config in stage.sales_agent_activity_ids:
            if not user:
                break
            vals_list.append(
                {
                    "res_id": lead.id,
                    "activity_type_id": config.activity_type_id.id,
                    "user_id": user.id,
                    "summary": config.summary,
                    "note": config.note or False,
                    "date_deadline": Lead._sales_agent_working_day(company, config.days, day_cache),
                    "sales_agent_rule": "stage",
                }
            )
        plan = stage.sales_agent_plan_id
        if plan and plan.active and plan.company_id in (company, self.env["res.company"]):
            for template in plan.template_ids:
                responsible = template._determine_responsible(user, lead)["responsible"]
                if not responsible:
                    continue
                delay_type = template.activity_type_id
                days = (
                    delay_type.delay_count
                    if delay_type.delay_unit == "days"
                    else (delay_type.delay_count * (7 if delay_type.delay_unit == "weeks" else 30))
                )
                vals_list.append(
                    {
                        "res_id": lead.id,
                        "activity_type_id": template.activity_type_id.id,
                        "user_id": responsible.id,
                        "summary": template.summary or template.activity_type_id.summary or False,
                        "note": template.note or False,
                        "date_deadline": Lead._sales_agent_working_day(company, days, day_cache),
                        "sales_agent_rule": "stage",
                    }
                )
        return vals_list

    @api.model
    def _sales_agent_followup_summary(self, lead, idle_days, last):
        """Why the follow-up exists, from the latest interaction."""
        if not last:
            return _(
                "No contact for %(days)s days since the %(kind)s was created",
                days=idle_days,
                kind=lead._sales_agent_kind_label(),
            )
        if last["activity_type_id"]:
            activity = self.env["mail.activity.type"].browse(last["activity_type_id"])
            return _(
                "No contact for %(days)s days since the last %(activity)s",
                days=idle_days,
                activity=activity.name,
            )
        if last["by_user"]:
            if last["subject"]:
                return _(
                    "No contact for %(days)s days since “%(subject)s” was sent",
                    days=idle_days,
                    subject=last["subject"],
                )
            return _("No contact for %(days)s days since our last message", days=idle_days)
        return _("No answer for %(days)s days to the customer's last message", days=idle_days)
