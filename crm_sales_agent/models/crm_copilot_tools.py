import uuid
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression
from odoo.tools import SQL, html2plaintext

from odoo.addons.crm_executive_dashboard.models.crm_executive_dashboard import (
    KPI_KEYS,
    OPEN_DOMAIN,
)

LIST_LIMIT = 10  # records listed by a list tool (the figure counts them all)
PERIODS = (
    "today",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
    "last_n_days",
)
DEFAULT_PERIOD = "this_year"
BREAKDOWNS = ("team", "salesperson", "stage", "source", "lost_reason")
DRAFT_KINDS = ("email", "sms", "call_script")


def _schema(properties, required=()):
    return {"type": "object", "properties": properties, "required": list(required)}


_FILTERS = {
    "period": {"type": "string", "enum": list(PERIODS)},
    "days": {"type": "integer", "description": "for last_n_days"},
    "team": {"type": "string", "description": "sales team name"},
    "salesperson": {"type": "string", "description": "salesperson name, or 'me'"},
}
_LEAD = {"lead": {"type": "string", "description": "the lead's name or id"}}

# the tools the model may call: name -> (description, JSON schema of the arguments)
TOOLS = {
    "kpi": (
        "A figure of the executive dashboard (same definitions) for a period and filters.",
        _schema(dict(_FILTERS, metric={"type": "string", "enum": list(KPI_KEYS)}), ["metric"]),
    ),
    "breakdown": (
        "Leads created in the period (lost ones for lost_reason) counted by a dimension.",
        _schema(dict(_FILTERS, by={"type": "string", "enum": list(BREAKDOWNS)}), ["by"]),
    ),
    "pipeline_by_stage": (
        "Open pipeline per stage (count, expected revenue), as on the dashboard.",
        _schema(dict(_FILTERS)),
    ),
    "list_at_risk": ("My open opportunities the sales agent rates at risk.", _schema({})),
    "list_not_contacted": (
        "My open leads without any contact for N days.",
        _schema({"days": {"type": "integer"}}, ["days"]),
    ),
    "list_top_scored": (
        "Open leads with the highest AI quality score or win probability.",
        _schema({"by": {"type": "string", "enum": ["quality", "win_probability"]}}),
    ),
    "list_overdue_activities": ("My overdue activities on leads.", _schema({})),
    "list_escalations": ("Open escalations I can see.", _schema({})),
    "lead_summary": ("A lead's fields, AI analysis, risk and last interactions.", _schema(_LEAD)),
    "search_crm": (
        "Full-text search over leads, contacts and the chatter of leads.",
        _schema({"query": {"type": "string"}}, ["query"]),
    ),
    "draft_message": (
        "Draft an email, SMS or call script for a lead (not sent).",
        _schema(
            dict(
                _LEAD,
                kind={"type": "string", "enum": list(DRAFT_KINDS)},
                instructions={"type": "string"},
            ),
            ["lead"],
        ),
    ),
    "propose_activity": (
        "Propose to schedule an activity on a lead (the user confirms).",
        _schema(
            dict(_LEAD, summary={"type": "string"}, days={"type": "integer"}),
            ["lead", "summary"],
        ),
    ),
    "propose_stage": (
        "Propose to move a lead to a stage (the user confirms).",
        _schema(dict(_LEAD, stage={"type": "string"}), ["lead", "stage"]),
    ),
    "propose_note": (
        "Propose to log an internal note on a lead (the user confirms).",
        _schema(dict(_LEAD, note={"type": "string"}), ["lead", "note"]),
    ),
}


class CrmCopilot(models.AbstractModel):
    """The copilot's tools: each runs as the asking user (record rules apply) and returns
    ``{"figures", "records", "proposals", "text", "data"}``; ``text`` is the answer built
    from the results alone (the template used when there is no model, or when the model's
    text cannot be trusted)."""

    _inherit = "crm.copilot"

    # ------------------------------------------------------------
    # HELPERS: periods, names, results
    # ------------------------------------------------------------

    @api.model
    def _copilot_tool_specs(self):
        """{tool: (description, JSON schema of its arguments)} (see ``TOOLS``)."""
        return TOOLS

    @api.model
    def _copilot_today(self):
        return fields.Date.context_today(self)

    @api.model
    def _copilot_period(self, period=None, days=None):
        """``(date_from, date_to, label)`` of a named period, in the user's timezone."""
        today = self._copilot_today()
        period = period or DEFAULT_PERIOD
        if period not in PERIODS:
            raise UserError(_("Unknown period %(period)r.", period=period))
        quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        month = today.replace(day=1)
        week = today - timedelta(days=today.weekday())
        if period == "today":
            return today, today, _("today")
        if period == "this_week":
            return week, today, _("this week")
        if period == "last_week":
            return week - timedelta(days=7), week - timedelta(days=1), _("last week")
        if period == "this_month":
            return month, today, _("this month")
        if period == "last_month":
            start = month - relativedelta(months=1)
            return start, month - timedelta(days=1), _("last month")
        if period == "this_quarter":
            return quarter, today, _("this quarter")
        if period == "last_quarter":
            start = quarter - relativedelta(months=3)
            return start, quarter - timedelta(days=1), _("last quarter")
        if period == "this_year":
            return today.replace(month=1, day=1), today, _("this year")
        if period == "last_year":
            return (
                date(today.year - 1, 1, 1),
                date(today.year - 1, 12, 31),
                _("last year"),
            )
        days = self._copilot_int(days, 30, 1, 5 * 366)
        return (
            today - timedelta(days=days - 1),
            today,
            _("the last %(days)s days", days=days),
        )

    @api.model
    def _copilot_int(self, value, default, low, high):
        try:
            value = int(value) if value not in (None, "", False) else default
        except (TypeError, ValueError):
            raise UserError(_("%(value)r is not a number.", value=value)) from None
        return min(max(value, low), high)

    @api.model
    def _copilot_filters(self, team=None, salesperson=None):
        """``(team_ids, user_ids, label)`` from names, matched against readable records."""
        team_ids, user_ids, labels = [], [], []
        if team:
            teams = self.env["crm.team"].search([("name", "=ilike", team)], limit=1) or self.env[
                "crm.team"
            ].search([("name", "ilike", team)], limit=2)
            if len(teams) != 1:
                raise UserError(_("No single sales team matches %(name)r.", name=team))
            team_ids, labels = teams.ids, labels + [teams.name]
        if salesperson:
            if salesperson.lower() in ("me", "my", "mine", "i"):
                users = self.env.user
            else:
                users = self.env["res.users"].search(
                    [("name", "ilike", salesperson), ("share", "=", False)], limit=2
                )
            if len(users) != 1:
                raise UserError(_("No single salesperson matches %(name)r.", name=salesperson))
            user_ids, labels = users.ids, labels + [users.name]
        return team_ids, user_ids, ", ".join(labels)

    @api.model
    def _copilot_find_lead(self, ref):
        """The lead ``ref`` (id or name) among those the user can read."""
        Lead = self.env["crm.lead"]
        if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
            lead = Lead.search([("id", "=", int(ref))], limit=1)
        else:
            ref = (ref or "").strip()
            lead = Lead.search([("name", "=ilike", ref)], limit=2) if ref else Lead
            if len(lead) != 1 and ref:
                lead = Lead.search([("name", "ilike", ref)], limit=2)
        if len(lead) != 1:
            raise UserError(_("No single lead you can read matches %(ref)r.", ref=ref))
        return lead

    @api.model
    def _copilot_record(self, record):
        return {"model": record._name, "id": record.id, "name": record.display_name}

    @api.model
    def _copilot_result(self, text, figures=(), records=(), proposals=(), data=None):
        return {
            "text": text,
            "figures": list(figures),
            "records": list(records),
            "proposals": list(proposals),
            "data": data if data is not None else {},
        }

    @api.model
    def _copilot_list(self, label, domain, order, model="crm.lead", extra=None):
        """A list tool's result: the count as a figure, the first LIST_LIMIT records."""
        Model = self.env[model]
        count = Model.search_count(domain)
        records = Model.search(domain, order=order, limit=LIST_LIMIT)
        rows = [self._copilot_record(r) for r in records]
        lines = [
            "- %s%s" % (r["name"], extra(rec) if extra else "")
            for r, rec in zip(rows, records, strict=True)
        ]
        text = "%s: %s" % (label, count)
        if lines:
            text += "\n" + "\n".join(lines)
        return self._copilot_result(
            text,
            figures=[{"label": label, "value": count, "domain": domain}],
            records=rows,
            data={"count": count, "items": [r["name"] for r in rows]},
        )

    # ------------------------------------------------------------
    # TOOLS: analytics (the dashboard's computation and definitions)
    # ------------------------------------------------------------

    @api.model
    def _copilot_dashboard_params(self, period=None, days=None, team=None, salesperson=None):
        """The dashboard's parameters (``_dashboard_params``) for a period and filters.

        :return tuple: (params, period label, filters label)
        """
        date_from, date_to, period_label = self._copilot_period(period, days)
        team_ids, user_ids, filters = self._copilot_filters(team, salesperson)
        p = self.env["crm.executive.dashboard"]._dashboard_params(
            date_from, date_to, team_ids, user_ids
        )
        return p, period_label, filters

    @api.model
    def _tool_kpi(self, metric, period=None, days=None, team=None, salesperson=None):
        """One KPI by the dashboard's ``_get_kpis``: its definitions (domains, conversion,
        formulas), without computing the rest of the dashboard."""
        if metric not in KPI_KEYS:
            raise UserError(_("Unknown figure %(metric)r.", metric=metric))
        p, period_label, filters = self._copilot_dashboard_params(period, days, team, salesperson)
        kpi = self.env["crm.executive.dashboard"]._get_kpis(p, [metric])[metric]
        label = "%s (%s%s)" % (
            self._copilot_metric_label(metric),
            period_label,
            ", " + filters if filters else "",
        )
        return self._copilot_result(
            "%s: %s" % (label, kpi["value"]),
            figures=[{"label": label, "value": kpi["value"], "domain": kpi["domain"]}],
            data={"metric": metric, "value": kpi["value"], "period": period_label},
        )

    @api.model
    def _copilot_metric_label(self, metric):
        return {
            "total_leads": _("Leads created"),
            "total_opportunities": _("Opportunities created"),
            "won_opportunities": _("Deals won"),
            "lost_opportunities": _("Deals lost"),
            "won_revenue": _("Revenue won"),
            "conversion_rate": _("Conversion rate (%)"),
            "win_rate": _("Win rate (%)"),
            "avg_deal_size": _("Average deal size"),
            "avg_sales_cycle_days": _("Average sales cycle (days)"),
            "pipeline_value": _("Pipeline value"),
            "weighted_pipeline": _("Weighted pipeline"),
        }[metric]

    @api.model
    def _tool_breakdown(self, by, period=None, days=None, team=None, salesperson=None):
        """Counts by a dimension over the dashboard's KPI domains: leads created in the period
        (the dashboard's *Leads*), or deals lost in it (its *Lost*) for ``lost_reason``."""
        if by not in BREAKDOWNS:
            raise UserError(_("Cannot break down by %(by)r.", by=by))
        date_from, date_to, period_label = self._copilot_period(period, days)
        team_ids, user_ids, filters = self._copilot_filters(team, salesperson)
        Dashboard = self.env["crm.executive.dashboard"]
        p = Dashboard._dashboard_params(date_from, date_to, team_ids, user_ids)
        domains = Dashboard._kpi_domains(p, p["from_utc"], p["to_utc"])
        field = {
            "team": "team_id",
            "salesperson": "user_id",
            "stage": "stage_id",
            "source": "source_id",
            "lost_reason": "lost_reason_id",
        }[by]
        domain = domains["lost_opportunities" if by == "lost_reason" else "total_leads"]
        groups = (
            self.env["crm.lead"]
            .with_context(active_test=False)
            ._read_group(domain, [field], ["__count"], order="__count desc")
        )
        figures = []
        for record, count in groups:
            name = record.display_name if record else _("None")
            figures.append(
                {
                    "label": name,
                    "value": count,
                    "domain": expression.AND([domain, [(field, "=", record.id or False)]]),
                }
            )
        what = _("Lost deals") if by == "lost_reason" else _("Leads created")
        title = "%s by %s (%s%s)" % (what, by.replace("_", " "), period_label, ", " + filters)
        title = title.replace(", )", ")")
        lines = ["- %s: %s" % (f["label"], f["value"]) for f in figures]
        return self._copilot_result(
            title + (":\n" + "\n".join(lines) if lines else ": " + _("none")),
            figures=figures,
            data={f["label"]: f["value"] for f in figures},
        )

    @api.model
    def _tool_pipeline_by_stage(self, period=None, days=None, team=None, salesperson=None):
        p, period_label, filters = self._copilot_dashboard_params(period, days, team, salesperson)
        pipeline = self.env["crm.executive.dashboard"]._get_pipeline(p)
        figures, lines = [], []
        for stage in pipeline:
            figures.append(
                {"label": stage["name"], "value": stage["count"], "domain": stage["domain"]}
            )
            lines.append(
                "- %s: %s (%s)" % (stage["name"], stage["count"], stage["expected_revenue"])
            )
        title = _(
            "Open pipeline by stage, created %(period)s%(filters)s",
            period=period_label,
            filters=", " + filters if filters else "",
        )
        return self._copilot_result(
            title + ":\n" + "\n".join(lines),
            figures=figures,
            data={s["name"]: [s["count"], s["expected_revenue"]] for s in pipeline},
        )

    # ------------------------------------------------------------
    # TOOLS: lists
    # ------------------------------------------------------------

    @api.model
    def _tool_list_at_risk(self):
        domain = expression.AND(
            [
                OPEN_DOMAIN,
                [
                    ("type", "=", "opportunity"),
                    ("user_id", "=", self.env.uid),
                    ("sales_agent_risk_level", "in", ("medium", "high")),
                ],
            ]
        )
        return self._copilot_list(
            _("My open opportunities at risk"),
            domain,
            "expected_revenue desc, id desc",
            extra=lambda lead: " (%s)" % lead.sales_agent_risk_level,
        )

    @api.model
    def _tool_list_not_contacted(self, days=7):
        """My open leads without a contact (the sales agent's definition: a done activity or
        a non-internal email or comment) since ``days`` days, never contacted included."""
        days = self._copilot_int(days, 7, 1, 3650)
        since = fields.Datetime.now() - timedelta(days=days)
        self.env["mail.message"].flush_model(["model", "res_id", "date", "message_type"])
        contacted = SQL(
            """(SELECT m.res_id FROM mail_message m
                 LEFT JOIN mail_message_subtype st ON st.id = m.subtype_id
                WHERE m.model = 'crm.lead' AND m.date >= %s
                  AND (m.mail_activity_type_id IS NOT NULL
                       OR (m.message_type IN ('email', 'comment')
                           AND NOT COALESCE(m.is_internal, FALSE)
                           AND NOT COALESCE(st.internal, FALSE))))""",
            since,
        )
        base = expression.AND([OPEN_DOMAIN, [("user_id", "=", self.env.uid)]])
        ids = self.env["crm.lead"].search(expression.AND([base, [("id", "not in", contacted)]])).ids
        return self._copilot_list(
            _("My open leads not contacted for %(days)s days", days=days),
            [("id", "in", ids)],
            "create_date asc, id",
        )

    @api.model
    def _tool_list_top_scored(self, by="quality"):
        field = "ai_win_probability" if by == "win_probability" else "ai_probability_score"
        label = _("Win probability") if field == "ai_win_probability" else _("Quality score")
        domain = expression.AND([OPEN_DOMAIN, [(field, ">", 0)]])
        return self._copilot_list(
            _("Open leads with the highest %(what)s", what=label.lower()),
            domain,
            "%s desc, id desc" % field,
            extra=lambda lead: " (%s)" % lead[field],
        )

    @api.model
    def _tool_list_overdue_activities(self):
        domain = [
            ("res_model", "=", "crm.lead"),
            ("user_id", "=", self.env.uid),
            ("date_deadline", "<", fields.Date.to_string(self._copilot_today())),
        ]
        return self._copilot_list(
            _("My overdue activities on leads"),
            domain,
            "date_deadline, id",
            model="mail.activity",
            extra=lambda act: " (%s, %s)" % (act.res_name, act.date_deadline),
        )

    @api.model
    def _tool_list_escalations(self):
        return self._copilot_list(
            _("Open escalations"),
            [("state", "=", "open")],
            "date desc, id desc",
            model="crm.sales.agent.escalation",
        )

    # ------------------------------------------------------------
    # TOOLS: one lead, search, drafting
    # ------------------------------------------------------------

    @api.model
    def _tool_lead_summary(self, lead):
        lead = self._copilot_find_lead(lead)
        interactions = self.env["crm.lead"]._sales_agent_last_interactions(lead.ids)[lead.id]
        last = interactions["last"]
        facts = {
            _("Stage"): lead.stage_id.name,
            _("Salesperson"): lead.user_id.name,
            _("Customer"): lead.partner_id.display_name or lead.partner_name,
            # units in the text as the lead form shows them (figures keep the raw values);
            # a zero is left out, as before
            _("Expected revenue"): lead.expected_revenue
            and "%.0f %s" % (lead.expected_revenue, lead.company_currency.name),
            _("Probability"): lead.probability and "%.0f %%" % lead.probability,
            _("Quality score"): lead.ai_probability_score
            and "%.0f / 100" % lead.ai_probability_score,
            _("Win probability"): lead.ai_win_probability and "%.0f %%" % lead.ai_win_probability,
            _("Risk"): lead.sales_agent_risk_level,
            _("Risk reasons"): lead.sales_agent_risk_reasons,
            _("AI summary"): lead.ai_summary if "ai_summary" in lead._fields else False,
            _("Next action"): lead.sales_agent_next_action or lead.ai_next_action,
            _("Last contact"): last and fields.Datetime.to_string(last["date"]),
        }
        facts = {key: value for key, value in facts.items() if value not in (False, None, "")}
        lines = ["- %s: %s" % (key, value) for key, value in facts.items()]
        numbers = [
            (_("Expected revenue"), lead.expected_revenue),
            (_("Quality score"), lead.ai_probability_score),
            (_("Win probability"), lead.ai_win_probability),
        ]
        return self._copilot_result(
            "%s\n%s" % (lead.display_name, "\n".join(lines)),
            figures=[
                {"label": label, "value": value, "domain": [("id", "=", lead.id)]}
                for label, value in numbers
            ],
            records=[self._copilot_record(lead)],
            data={k: str(v) for k, v in facts.items()},
        )

    @api.model
    def _tool_search_crm(self, query):
        hits = self._copilot_search(query)
        lines = ["- %s: %s" % (h["name"], h["snippet"]) for h in hits]
        return self._copilot_result(
            _("Found %(count)s results for %(query)r", count=len(hits), query=query)
            + (":\n" + "\n".join(lines) if lines else "."),
            records=[{"model": h["model"], "id": h["id"], "name": h["name"]} for h in hits],
            data={"hits": [{"name": h["name"], "text": h["snippet"]} for h in hits]},
        )

    @api.model
    def _tool_draft_message(self, lead, kind="email", instructions=None):
        """A draft by the drafting wizard's generator (a template when no AI answers); the
        user opens the wizard to edit and send it: nothing is sent from here."""
        lead = self._copilot_find_lead(lead)
        kind = kind if kind in DRAFT_KINDS else "email"
        draft = self.env["crm.sales.agent.draft"]._draft_for(lead, kind, instructions=instructions)
        text = "%s\n\n%s" % (draft["subject"] or "", html2plaintext(draft["body"] or ""))
        if draft["note"]:
            text += "\n\n(%s)" % draft["note"]
        return self._copilot_result(
            text.strip(),
            records=[self._copilot_record(lead)],
            data={"draft": "given to the user", "is_template": draft["is_template"]},
        )

    # ------------------------------------------------------------
    # TOOLS: proposals (written only by confirm_proposal)
    # ------------------------------------------------------------

    @api.model
    def _copilot_proposal(self, kind, label, lead, params):
        lead.check_access_rule("write")
        proposal = {
            "id": "%s-%s-%s" % (kind, lead.id, uuid.uuid4().hex[:10]),
            "kind": kind,
            "label": label,
            "params": dict(params, lead_id=lead.id),
        }
        return self._copilot_result(
            _("Proposed (click to confirm): %(label)s", label=label),
            records=[self._copilot_record(lead)],
            proposals=[proposal],
            data={"proposal": label, "confirmed": False},
        )

    @api.model
    def _tool_propose_activity(self, lead, summary, days=1):
        lead = self._copilot_find_lead(lead)
        days = self._copilot_int(days, 1, 0, 365)
        deadline = self._copilot_today() + timedelta(days=days)
        label = _(
            "Schedule %(summary)r on %(lead)s for %(date)s",
            summary=summary,
            lead=lead.display_name,
            date=deadline,
        )
        return self._copilot_proposal(
            "activity", label, lead, {"summary": summary, "date_deadline": str(deadline)}
        )

    @api.model
    def _tool_propose_stage(self, lead, stage):
        lead = self._copilot_find_lead(lead)
        stages = self.env["crm.stage"].search([("name", "=ilike", stage)], limit=1)
        stages = stages or self.env["crm.stage"].search([("name", "ilike", stage)], limit=2)
        if len(stages) != 1:
            raise UserError(_("No single stage matches %(name)r.", name=stage))
        label = _("Move %(lead)s to %(stage)s", lead=lead.display_name, stage=stages.name)
        return self._copilot_proposal("stage", label, lead, {"stage_id": stages.id})

    @api.model
    def _tool_propose_note(self, lead, note):
        lead = self._copilot_find_lead(lead)
        if not (note or "").strip():
            raise UserError(_("The note is empty."))
        label = _("Log a note on %(lead)s: %(note)s", lead=lead.display_name, note=note)
        return self._copilot_proposal("note", label, lead, {"note": note})

    @api.model
    def _copilot_apply_proposal(self, proposal):
        """Write a confirmed proposal as the user (record rules apply); the lead it touched."""
        params = proposal["params"]
        lead = self.env["crm.lead"].browse(params["lead_id"]).exists()
        if not lead:
            raise UserError(_("The lead of this proposal no longer exists."))
        lead.check_access_rights("write")
        lead.check_access_rule("write")
        if proposal["kind"] == "activity":
            lead.activity_schedule(
                "mail.mail_activity_data_todo",
                date_deadline=fields.Date.to_date(params["date_deadline"]),
                summary=params["summary"],
                user_id=lead.user_id.id or self.env.uid,
            )
        elif proposal["kind"] == "stage":
            lead.write({"stage_id": params["stage_id"]})
        elif proposal["kind"] == "note":
            lead.message_post(body=params["note"], subtype_xmlid="mail.mt_note")
        else:
            raise UserError(_("Unknown proposal."))
        return lead
