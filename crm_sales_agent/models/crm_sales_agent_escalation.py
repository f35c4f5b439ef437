from datetime import timedelta

from markupsafe import Markup, escape

from odoo import _, api, fields, models
from odoo.tools import SQL, format_amount

from .crm_lead import RISK_LEVELS

ESCALATION_RULES = [
    ("overdue_followup", "Overdue follow-up"),
    ("high_value", "High-value deal at risk"),
    ("high_score", "High quality score not contacted"),
]


class CrmSalesAgentEscalation(models.Model):
    _name = "crm.sales.agent.escalation"
    _description = "Sales Agent Escalation"
    _order = "date desc, id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name")
    lead_id = fields.Many2one(
        "crm.lead",
        string="Lead/Opportunity",
        required=True,
        index=True,
        ondelete="cascade",
        check_company=True,
    )
    rule = fields.Selection(ESCALATION_RULES, string="Rule", required=True)
    level = fields.Integer(string="Level", required=True, default=1)
    reason = fields.Text(string="Reason")
    from_user_id = fields.Many2one(
        "res.users",
        string="From",
        ondelete="set null",
        help="Salesperson of the lead when it was escalated.",
    )
    to_user_id = fields.Many2one(
        "res.users", string="To", required=True, ondelete="restrict", index=True
    )
    team_id = fields.Many2one("crm.team", string="Sales Team", ondelete="set null", index=True)
    company_id = fields.Many2one("res.company", string="Company", index=True)
    date = fields.Datetime(string="Date", required=True, default=fields.Datetime.now)
    state = fields.Selection(
        [("open", "Open"), ("resolved", "Resolved")],
        string="Status",
        required=True,
        default="open",
        index=True,
    )
    resolved_date = fields.Datetime(string="Resolved On", readonly=True)
    resolution = fields.Char(string="Resolution", readonly=True)
    activity_id = fields.Many2one("mail.activity", string="Activity", ondelete="set null")
    company_currency = fields.Many2one(related="lead_id.company_currency")
    expected_revenue = fields.Monetary(
        related="lead_id.expected_revenue", currency_field="company_currency"
    )
    lead_user_id = fields.Many2one(related="lead_id.user_id", string="Salesperson")
    lead_stage_id = fields.Many2one(related="lead_id.stage_id", string="Stage")

    def init(self):
        # one open escalation per lead, rule and level (the cron relies on it too)
        self.env.cr.execute(
            """CREATE UNIQUE INDEX IF NOT EXISTS crm_sales_agent_escalation_open_uniq
                   ON crm_sales_agent_escalation (lead_id, rule, level) WHERE state = 'open'"""
        )

    @api.depends("lead_id", "rule", "level")
    def _compute_name(self):
        rules = dict(self._fields["rule"]._description_selection(self.env))
        for escalation in self:
            escalation.name = _(
                "%(rule)s (level %(level)s): %(lead)s",
                rule=rules.get(escalation.rule, ""),
                level=escalation.level,
                lead=escalation.lead_id.display_name or "",
            )

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_resolve(self):
        self._resolve(_("Resolved by %(user)s", user=self.env.user.name))
        return True

    def action_open_lead(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.lead",
            "res_id": self.lead_id.id,
            "view_mode": "form",
        }

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    def _resolve(self, resolution):
        """Close open escalations and cancel the manager activities they created."""
        escalations = self.filtered(lambda e: e.state == "open")
        if not escalations:
            return
        activities = escalations.sudo().activity_id
        escalations.write(
            {"state": "resolved", "resolved_date": fields.Datetime.now(), "resolution": resolution}
        )
        activities.unlink()

    # ------------------------------------------------------------
    # BUSINESS: the escalation rules (run by the assessment cron, see
    # crm.sales.agent.lead.state._cron_assess, with each batch's assessments)
    # ------------------------------------------------------------

    @api.model
    def _sales_agent_resolve_closed(self):
        """Open escalations of leads that were won, lost or archived are resolved."""
        Escalation = self.sudo()
        Escalation.flush_model()
        self.env.cr.execute(
            SQL(
                """SELECT e.id FROM crm_sales_agent_escalation e
                     JOIN crm_lead l ON l.id = e.lead_id
                LEFT JOIN crm_stage s ON s.id = l.stage_id
                    WHERE e.state = 'open' AND (NOT l.active OR COALESCE(s.is_won, FALSE))"""
            )
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        if ids:
            Escalation.browse(ids)._resolve(_("The lead was closed"))

    @api.model
    def _sales_agent_escalation_rules(self, lead, assessment, config):
        """Escalation rules whose condition holds for ``lead``: {rule: reason}, where the
        reason is a function returning the text. Most leads of a run already have their
        escalation (or none may be opened): the texts, an amount formatted in the company's
        currency among them, are written only for the escalations created."""
        facts = assessment["facts"]
        rules = {}
        if (
            config["escalation_overdue_enabled"]
            and facts.get("overdue")
            and facts["overdue"][1] > config["escalation_overdue_days"]
        ):
            rules["overdue_followup"] = lambda: _(
                "A follow-up is overdue by %(days)s days", days=facts["overdue"][1]
            )
        if (
            config["escalation_high_value_enabled"]
            and lead.expected_revenue >= config["escalation_high_value_amount"]
            and assessment["level"] in ("medium", "high")
        ):
            rules["high_value"] = lambda: _(
                "Deal of %(amount)s at %(level)s risk: %(reasons)s",
                amount=format_amount(self.env, lead.expected_revenue, lead.company_currency),
                level=dict(RISK_LEVELS)[assessment["level"]].lower(),
                reasons="; ".join(assessment["reasons"]),
            )
        if config["escalation_high_score_enabled"] and facts.get("high_score_idle"):
            rules["high_score"] = lambda: _(
                "Quality score %(score)s and no contact for %(hours)s hours",
                score=round(lead.ai_probability_score),
                hours=int(facts["idle_hours"]),
            )
        return rules

    @api.model
    def _sales_agent_escalation_chain(self, lead, config, context):
        """[level-1 recipient, level-2 recipient]: the configured manager or the team leader,
        then the configured second-level manager or the company's first sales manager."""
        Users = self.env["res.users"].sudo()
        company = lead.company_id or self.env.company
        # ``config`` is the settings of the lead's company (the crons go company by company)
        if ("configured", company.id) not in context["managers"]:
            context["managers"]["configured", company.id] = tuple(
                Users.browse(config[key]).exists() if config[key] else Users
                for key in ("escalation_manager_id", "escalation_level2_manager_id")
            )
        first, second = context["managers"]["configured", company.id]
        first = first or lead.team_id.user_id
        if not second:
            key = (company.id, first.id, lead.user_id.id)
            if key not in context["managers"]:
                group = self.env.ref("sales_team.group_sale_manager")
                context["managers"][key] = Users.search(
                    [
                        ("groups_id", "in", group.id),
                        ("share", "=", False),
                        ("company_ids", "in", company.id),
                        (
                            "id",
                            "not in",
                            (first + lead.user_id).ids + [self.env.ref("base.user_root").id],
                        ),
                    ],
                    order="id",
                    limit=1,
                )
            second = context["managers"][key]
        return [user for user in (first, second) if user and user != lead.user_id]

    @api.model
    def _sales_agent_escalate(self, leads, assessments, config, context):
        """Resolve escalations whose salesperson acted, create new ones (for leads that went
        quiet after the go-live date) and second levels. In a dry run (``context["report"]``
        a list) the escalations that would be created are reported, nothing is written."""
        now = context["now"]
        go_live = context["go_live"]
        report = context.get("report")
        Escalation = self.sudo()
        cooldown = now - timedelta(days=config["escalation_cooldown_days"])
        existing = Escalation.search(
            [
                ("lead_id", "in", leads.ids),
                "|",
                ("state", "=", "open"),
                ("resolved_date", ">=", cooldown),
            ]
        )
        by_lead = {}
        for escalation in existing:
            by_lead.setdefault(escalation.lead_id.id, []).append(escalation)
        to_resolve = {}
        new_vals = []
        for lead in leads:
            assessment = assessments[lead.id]
            active_rules = self._sales_agent_escalation_rules(lead, assessment, config)
            last_contact = assessment["last_contact"]
            quiet_since = max(d for d in (last_contact, lead.create_date) if d)
            open_by_rule, recently_resolved = {}, set()
            for escalation in by_lead.get(lead.id, []):
                if escalation.state != "open":
                    recently_resolved.add(escalation.rule)
                    continue
                acted = (last_contact and last_contact > escalation.date) or (
                    lead.date_last_stage_update and lead.date_last_stage_update > escalation.date
                )
                if acted:
                    to_resolve.setdefault(_("The salesperson acted"), []).append(escalation.id)
                    recently_resolved.add(escalation.rule)
                elif escalation.rule not in active_rules:
                    to_resolve.setdefault(_("The condition no longer holds"), []).append(
                        escalation.id
                    )
                    recently_resolved.add(escalation.rule)
                else:
                    open_by_rule.setdefault(escalation.rule, {})[escalation.level] = escalation
            chain = None
            for rule, reason in active_rules.items():
                opened = open_by_rule.get(rule, {})
                if not opened:
                    if rule in recently_resolved or quiet_since < go_live:
                        continue
                    level = 1
                elif (
                    1 in opened
                    and 2 not in opened
                    and (now - opened[1].date >= timedelta(days=config["escalation_level2_days"]))
                ):
                    level = 2
                else:
                    continue
                if chain is None:
                    chain = self._sales_agent_escalation_chain(lead, config, context)
                if len(chain) < level:
                    continue
                new_vals.append(
                    {
                        "lead_id": lead.id,
                        "rule": rule,
                        "level": level,
                        "reason": reason(),
                        "from_user_id": lead.user_id.id,
                        "to_user_id": chain[level - 1].id,
                        "team_id": lead.team_id.id,
                        "company_id": lead.company_id.id,
                        "date": now,
                    }
                )
        if report is not None:
            report += [
                {"kind": "escalation", "rule": vals["rule"], "user_id": vals["from_user_id"]}
                for vals in new_vals
            ]
            return
        for resolution, ids in to_resolve.items():
            Escalation.browse(ids)._resolve(resolution)
        if new_vals:
            self._sales_agent_create_escalations(new_vals, context)

    @api.model
    def _sales_agent_create_escalations(self, vals_list, context):
        """The escalations, their managers' activities and a note on each lead, through the
        ORM in one batch each (``mail.activity.create``, ``_message_log_batch``)."""
        Lead = self.env["crm.lead"]
        escalation_type = self.env.ref("crm_sales_agent.mail_activity_type_sales_agent_escalation")
        rules = dict(self._fields["rule"]._description_selection(self.env))
        users = self.env["res.users"].sudo().browse([vals["to_user_id"] for vals in vals_list])
        users.mapped("name")  # prefetch
        leads = Lead.browse([vals["lead_id"] for vals in vals_list])
        leads.mapped("company_id")  # prefetch
        activity_vals = []
        for vals in vals_list:
            lead = Lead.browse(vals["lead_id"])
            activity_vals.append(
                {
                    "res_id": lead.id,
                    "activity_type_id": escalation_type.id,
                    "user_id": vals["to_user_id"],
                    "summary": _(
                        "Escalation (level %(level)s): %(rule)s",
                        level=vals["level"],
                        rule=rules[vals["rule"]],
                    )[:250],
                    "note": escape(vals["reason"]),
                    "date_deadline": Lead._sales_agent_working_day(
                        lead.company_id or self.env.company, 0, context["day_cache"]
                    ),
                    "sales_agent_rule": "escalation",
                }
            )
        activities = Lead._sales_agent_create_activities(activity_vals)
        for vals, activity in zip(vals_list, activities, strict=True):
            vals["activity_id"] = activity.id
        self.sudo().create(vals_list)
        notes = {}
        for vals in vals_list:
            note = Markup("<p>%s</p>") % _(
                "Escalated to %(user)s (level %(level)s): %(rule)s. %(reason)s",
                user=self.env["res.users"].browse(vals["to_user_id"]).name,
                level=vals["level"],
                rule=rules[vals["rule"]],
                reason=vals["reason"],
            )
            notes[vals["lead_id"]] = notes.get(vals["lead_id"], Markup("")) + note
        Lead.browse(list(notes))._message_log_batch(notes)
