from odoo import api, fields, models
from odoo.tools import SQL

from .crm_lead import RISK_LEVELS, TONES


class CrmSalesAgentLeadState(models.Model):
    """Risk and next action of one lead, as the escalation cron last assessed them, and the
    follow-up cron's bookkeeping of the lead (which rules already fired).

    Kept out of ``crm_lead`` on purpose: a ``crm_lead`` row carries some 35 indexes (trigram
    ones included), so rewriting the assessment of 100,000 leads there cost about 35 s per
    run, and marking the leads a follow-up run went through about 7 s. This narrow table has
    two indexes and is upserted in one statement per batch; the lead shows its values through
    related fields (searchable, read-only).

    Its cron assesses every open lead (risk, next action, see crm_lead.py) and hands the
    assessments to the escalation rules (crm.sales.agent.escalation).
    """

    _name = "crm.sales.agent.lead.state"
    _inherit = ["crm.sales.agent.batch.mixin"]
    _description = "Sales Agent Assessment of a Lead"
    _rec_name = "lead_id"

    _sales_agent_cron_xmlid = "crm_sales_agent.ir_cron_sales_agent_escalate"

    lead_id = fields.Many2one(
        "crm.lead", string="Lead/Opportunity", required=True, ondelete="cascade", readonly=True
    )
    risk_level = fields.Selection(RISK_LEVELS, string="Risk", readonly=True)
    risk_reasons = fields.Text(string="Risk Reasons", readonly=True)
    risk_date = fields.Datetime(string="Risk Assessed On", readonly=True)
    tone = fields.Selection(TONES, string="Tone of Last Inbound Message", readonly=True)
    tone_message_id = fields.Many2one(
        "mail.message",
        string="Message Whose Tone Was Analysed",
        readonly=True,
        ondelete="set null",
        index="btree_not_null",
    )
    next_action = fields.Char(string="Suggested Next Action", readonly=True)
    next_action_reason = fields.Char(string="Why", readonly=True)
    next_action_date = fields.Date(string="By", readonly=True)
    next_action_type_id = fields.Many2one(
        "mail.activity.type", string="Next Action Type", readonly=True, ondelete="set null"
    )

    # follow-up bookkeeping (set by the follow-up cron, never by the escalation cron)
    welcome_done = fields.Boolean(string="Welcome Call Planned", readonly=True)
    stage_done_id = fields.Many2one(
        "crm.stage",
        string="Stage Whose Activities Were Planned",
        readonly=True,
        ondelete="set null",
    )
    followup_date = fields.Datetime(string="Last Agent Follow-up", readonly=True)

    _sql_constraints = [
        ("lead_uniq", "UNIQUE(lead_id)", "A lead has one sales agent assessment."),
    ]

    # ------------------------------------------------------------
    # CRON
    # ------------------------------------------------------------

    @api.model
    def _cron_assess(self):
        """Assess risk and next action of open leads, escalate and auto-resolve, in batches,
        one company after the other with the settings of the leads' company."""
        if not self.env.context.get("lang"):
            return self._sales_agent_with_lang()._cron_assess()
        return self._sales_agent_assess_run()

    @api.model
    def _sales_agent_assess_run(self, companies=None, report=None):
        """One run over ``companies`` (default: all). ``report``: dry run, the escalations
        the run would create are appended to this list and nothing is written (no tone
        analysis either: it would call the LLM)."""
        Lead = self.env["crm.lead"]
        Escalation = self.env["crm.sales.agent.escalation"]
        dry_run = report is not None
        jobs = []
        for company in companies or Lead._sales_agent_companies():
            config = Lead._sales_agent_config(company)
            go_live = Lead._sales_agent_go_live(company, config)
            if dry_run and config["escalation_enabled"]:
                # a dry run reports escalations only: the leads that may get one, i.e. with
                # an open escalation or created or with a message since go-live (a superset
                # of the contacts, checked lead by lead)
                where = SQL(
                    """l.create_date >= %s
                       OR EXISTS (SELECT 1 FROM mail_message m
                                   WHERE m.model = 'crm.lead' AND m.res_id = l.id
                                     AND m.date >= %s)
                       OR EXISTS (SELECT 1 FROM crm_sales_agent_escalation e
                                   WHERE e.lead_id = l.id AND e.state = 'open')""",
                    go_live,
                    go_live,
                )
            elif config["risk_enabled"] or config["escalation_enabled"]:
                where = SQL("TRUE")
            else:
                continue
            if not dry_run or config["escalation_enabled"]:
                jobs.append(
                    {
                        "company": company,
                        "config": config,
                        "where": Lead._sales_agent_company_where(company, where),
                        "go_live": go_live,
                    }
                )
        if not jobs:
            return True
        self.env.flush_all()
        if not dry_run and any(job["config"]["escalation_enabled"] for job in jobs):
            Escalation._sales_agent_resolve_closed()
            if self._sales_agent_auto_commit():
                # closed leads' escalations are resolved whatever happens to the batches
                self.env.cr.commit()  # pylint: disable=invalid-commit
        context = Lead._sales_agent_assess_context()
        context["report"] = report

        def process(leads, job):
            config = job["config"]
            context["use_tone"] = bool(
                not dry_run and config["tone_analysis_enabled"] and config["risk_enabled"]
            )
            context["go_live"] = job["go_live"]
            assessments = leads._sales_agent_assess(config, context)
            if config["risk_enabled"] and not dry_run:
                leads._sales_agent_write_assessments(assessments, context["now"])
            if config["escalation_enabled"]:
                Escalation._sales_agent_escalate(leads, assessments, config, context)

        return self._sales_agent_run_batches(jobs, process, dry_run=dry_run)

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    @api.model
    def _sales_agent_read(self, lead_ids, columns):
        """{lead_id: (values of ``columns``)} of the leads' state rows, in one query (the
        related fields of crm.lead cost more than a whole assessment when read for every lead
        of a batch). ``columns``: ASSESSMENT_COLUMNS or BOOKKEEPING_COLUMNS (constants)."""
        if not lead_ids:
            return {}
        self.env.cr.execute(
            SQL(
                "SELECT lead_id, %s FROM crm_sales_agent_lead_state WHERE lead_id = ANY(%s)",
                SQL(", ").join(SQL.identifier(col) for col in columns),
                list(lead_ids),
            )
        )
        return {row[0]: tuple(row[1:]) for row in self.env.cr.fetchall()}

    @api.model
    def _sales_agent_upsert(self, columns, rows):
        """Insert or update the state rows of many leads in one statement, writing ``columns``
        only (the other columns of new rows stay empty until their cron fills them).

        :param columns: ASSESSMENT_COLUMNS or BOOKKEEPING_COLUMNS (constants)
        :param rows: [(lead_id, values of ``columns``...)]
        """
        if not rows:
            return
        uid = self.env.uid
        now = self.env.cr.now()
        self.env.cr.execute(
            SQL(
                """INSERT INTO crm_sales_agent_lead_state
                           (lead_id, %s, create_uid, write_uid, create_date, write_date)
                    VALUES %s
               ON CONFLICT (lead_id) DO UPDATE SET %s, write_uid = EXCLUDED.write_uid,
                           write_date = EXCLUDED.write_date""",
                SQL(", ").join(SQL.identifier(col) for col in columns),
                SQL(", ").join(SQL("%s", (*row, uid, uid, now, now)) for row in rows),
                SQL(", ").join(
                    SQL("%s = EXCLUDED.%s", SQL.identifier(col), SQL.identifier(col))
                    for col in columns
                ),
            )
        )
        # forget the cached state rows and the related fields of crm.lead showing them
        self.invalidate_model()
        Lead = self.env["crm.lead"]
        Lead.browse([row[0] for row in rows]).invalidate_recordset(
            ["sales_agent_state_ids"]
            + [
                name
                for name, field in Lead._fields.items()
                if field.related and field.related.startswith("sales_agent_state_ids.")
            ]
        )
