import logging
from email.utils import getaddresses

from odoo import _, api, fields, models

_logger = logging.getLogger(__name__)

# a change of one of these fields re-queues the lead (when the settings say so)
ENRICH_TRIGGER_FIELDS = frozenset(
    {
        "partner_id",
        "contact_name",
        "partner_name",
        "email_from",
        "phone",
        "mobile",
        "description",
        "expected_revenue",
        "probability",
    }
)
# a lead whose data changed is scored again from scratch, at once
REQUEUE_VALUES = {
    "ai_enrichment_status": "pending",
    "ai_enrichment_attempts": 0,
    "ai_next_retry_date": False,
}
SCORE_FIELDS = (
    "ai_probability_score",
    "ai_completeness_score",
    "ai_clarity_score",
    "ai_engagement_score",
)


class CrmLead(models.Model):
    _inherit = "crm.lead"

    # AI scores
    ai_probability_score = fields.Float(
        string="Quality Score",
        digits=(16, 1),
        readonly=True,
        copy=False,
        group_operator="avg",
        help="How well qualified the lead is (0-100): the weighted composite of its "
        "completeness, clarity and engagement, judged by rules and the LLM. It never depends "
        "on a learned model; the chance of winning is the Win Probability.",
    )
    ai_completeness_score = fields.Float(
        string="Completeness", digits=(16, 1), readonly=True, copy=False
    )
    ai_clarity_score = fields.Float(string="Clarity", digits=(16, 1), readonly=True, copy=False)
    ai_engagement_score = fields.Float(
        string="Engagement", digits=(16, 1), readonly=True, copy=False
    )
    ai_score_trend = fields.Selection(
        [("new", "New"), ("up", "Up"), ("down", "Down"), ("stable", "Stable")],
        string="Quality Score Trend",
        readonly=True,
        copy=False,
    )
    ai_score_method = fields.Selection(
        [("rules", "Odoo PLS"), ("learned", "Learned model")],
        string="Win Probability Source",
        readonly=True,
        copy=False,
        help="Where the win probability comes from: Odoo's Predictive Lead Scoring until a "
        "model learned from the company's closed leads is published, then that model.",
    )
    ai_analysis_method = fields.Selection(
        [
            ("rules", "Rules"),
            ("llm", "Rules + LLM"),
            ("fallback", "Rules: the AI answer was unusable"),
        ],
        string="Analysis Method",
        readonly=True,
        copy=False,
        help="Whether an LLM judged the clarity of the need, or rules alone.",
    )
    ai_model_version = fields.Char(string="Model Version", readonly=True, copy=False)
    ai_score_factors = fields.Json(string="Score Factors", readonly=True, copy=False)
    ai_score_explanation = fields.Text(
        string="Why this win probability",
        readonly=True,
        copy=False,
        help="The factors that raise or lower the learned win probability the most.",
    )
    # AI analysis
    ai_analysis_summary = fields.Text(string="AI Summary", readonly=True, copy=False)
    ai_strengths = fields.Text(string="Strengths", readonly=True, copy=False)
    ai_risks = fields.Text(string="Risks", readonly=True, copy=False)
    ai_next_action = fields.Char(string="AI Next Action", readonly=True, copy=False)
    ai_enrichment_data = fields.Json(string="AI Enrichment Data", readonly=True, copy=False)
    # Enrichment state
    ai_enrichment_status = fields.Selection(
        [
            ("pending", "Pending"),
            ("processing", "Processing"),
            ("completed", "Completed"),
            ("failed", "Failed"),
        ],
        string="AI Status",
        readonly=True,
        copy=False,
        index=True,
    )
    ai_last_enrichment_date = fields.Datetime(string="Last AI Scoring", readonly=True, copy=False)
    ai_enrichment_error = fields.Char(string="AI Error", readonly=True, copy=False)
    ai_enrichment_attempts = fields.Integer(string="AI Attempts", readonly=True, copy=False)
    ai_next_retry_date = fields.Datetime(string="AI Next Retry", readonly=True, copy=False)
    ai_processing_since = fields.Datetime(readonly=True, copy=False)
    ai_requested_by = fields.Many2one(
        "res.users",
        string="AI Scoring Asked By",
        readonly=True,
        copy=False,
        help="Who asked to score this lead now: first in line, and told when done.",
    )
    ai_requeue = fields.Boolean(
        readonly=True,
        copy=False,
        help="The lead's data changed while it was being scored: scored again after.",
    )
    auto_enrich = fields.Boolean(
        string="Auto AI Scoring",
        default=True,
        copy=False,
        help="Re-score this lead automatically when its data changes.",
    )
    ai_score_history_ids = fields.One2many(
        "crm.lead.score.history", "lead_id", string="Quality Score History", readonly=True
    )

    def init(self):
        super().init()
        # no index on ai_probability_score: rescoring rewrites it on every open lead, and an
        # indexed column forbids HOT updates (4x slower with crm_lead's ~30 indexes)
        self.env.cr.execute("DROP INDEX IF EXISTS crm_lead__ai_probability_score_index")
        # the cron's backlog query must stay cheap with a million completed leads
        self.env.cr.execute(
            """CREATE INDEX IF NOT EXISTS crm_lead_ai_backlog_idx ON crm_lead (id)
               WHERE ai_enrichment_status IN ('pending', 'failed', 'processing')"""
        )

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        config = self.env["llm.service"]._get_config()
        queue = config["auto_enrich_enabled"] and config["auto_enrich_new_leads"]
        if queue:
            for vals in vals_list:
                if vals.get("auto_enrich", True) and not vals.get("ai_enrichment_status"):
                    vals["ai_enrichment_status"] = "pending"
        leads = super().create(vals_list)
        if queue:
            self._ai_trigger_cron_on_commit()
        return leads

    def write(self, vals):
        changed = ENRICH_TRIGGER_FIELDS.intersection(vals)
        if not changed or "ai_enrichment_status" in vals:
            return super().write(vals)
        if changed == {"probability"} and vals["probability"] in (0, 100):
            return super().write(vals)  # won or lost: nothing left to score
        config = self.env["llm.service"]._get_config()
        if not (config["auto_enrich_enabled"] and config["auto_enrich_on_update"]):
            return super().write(vals)
        watched = self.filtered(lambda lead: lead.auto_enrich and lead.active)
        processing = watched.filtered(lambda lead: lead.ai_enrichment_status == "processing")
        if processing:
            # the result being computed is from the old data: score again once it is written
            super(CrmLead, processing).write({"ai_requeue": True})
        to_queue = watched - processing
        if to_queue == self:
            # same UPDATE statement: no query added
            res = super().write(dict(vals, **REQUEUE_VALUES))
        else:
            res = super().write(vals)
            if to_queue:
                super(CrmLead, to_queue).write(REQUEUE_VALUES)
        if to_queue:
            self._ai_trigger_cron_on_commit()
        return res

    def _ai_trigger_cron_on_commit(self):
        """Ask the scoring cron to run soon, once per transaction, when it commits."""
        cr = self.env.cr
        if cr.precommit.data.get("llm_lead_scoring.trigger"):
            return
        cr.precommit.data["llm_lead_scoring.trigger"] = True
        env = self.env

        def trigger():
            # the cron's id from the cached xmlid lookup (env.ref would also check that the
            # record exists: one query more in every transaction that queues leads)
            cron_id = env["ir.model.data"]._xmlid_to_res_id(
                "llm_lead_scoring.ir_cron_llm_lead_scoring_enrich", raise_if_not_found=False
            )
            if cron_id:
                env["ir.cron"].sudo().browse(cron_id)._trigger()
            cr.precommit.data.pop("llm_lead_scoring.trigger", None)

        cr.precommit.add(trigger)

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_ai_score_now(self):
        """Put this lead first in line of the background scoring and return at once (the
        browser never waits on the AI); the user is notified when its score is written."""
        self.ensure_one()
        self.check_access_rights("write")
        self.check_access_rule("write")
        if self.ai_enrichment_status != "processing":
            super().write(dict(REQUEUE_VALUES, ai_requested_by=self.env.uid))
        self.env.ref("llm_lead_scoring.ir_cron_llm_lead_scoring_enrich").sudo()._trigger()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "title": _("Scoring %(lead)s", lead=self.name),
                "message": _(
                    "The lead is first in line: you will be notified when its score is ready."
                ),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_ai_queue(self):
        """Queue the selected leads for background scoring."""
        self.check_access_rights("write")
        self.check_access_rule("write")
        leads = self.filtered(lambda lead: lead.ai_enrichment_status != "processing")
        super(CrmLead, leads).write(REQUEUE_VALUES)
        self._ai_trigger_cron_on_commit()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "title": _("Queued for AI scoring"),
                "message": _(
                    "%(count)s leads will be scored in the background within a minute.",
                    count=len(leads),
                ),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_ai_research(self):
        """What the lead's own data says about the customer company, through the LLM
        (setting "Customer Research"); shown to the user, nothing is stored."""
        self.ensure_one()
        self.check_access_rights("read")
        self.check_access_rule("read")
        result = self.env["llm.service"]._research(self)
        params = {
            "type": "info" if result["success"] else "warning",
            "title": _("Customer research") if result["success"] else _("No research"),
            "message": result["content"] if result["success"] else result["error"],
            "sticky": True,
        }
        return {"type": "ir.actions.client", "tag": "display_notification", "params": params}

    # ------------------------------------------------------------
    # BUSINESS: privacy
    # ------------------------------------------------------------

    def _ai_personal_names(self):
        """{lead id: names of people} that the privacy setting hides in any text about the
        lead: its contact, the customer's people and the outside authors of its chatter.
        A constant number of queries for any number of leads."""
        names = {lead.id: set() for lead in self}
        for lead in self.sudo():
            found = names[lead.id]
            found.add(lead.contact_name)
            found.update(name for name, _email in getaddresses([lead.email_from or ""]))
            partner = lead.partner_id
            if partner and not partner.is_company:
                found.add(partner.name)
            found.update(partner.commercial_partner_id.child_ids.mapped("name"))
        messages = (
            self.env["mail.message"]
            .sudo()
            .search_fetch(
                [
                    ("model", "=", self._name),
                    ("res_id", "in", self.ids),
                    ("author_id", "!=", False),
                    "|",
                    ("author_id.user_ids", "=", False),
                    ("author_id.user_ids.share", "=", True),
                ],
                ["res_id", "author_id", "email_from"],
            )
        )
        for message in messages:
            found = names[message.res_id]
            if not message.author_id.is_company:
                found.add(message.author_id.name)
            found.update(name for name, _email in getaddresses([message.email_from or ""]))
        return {lead_id: sorted(n for n in found if n) for lead_id, found in names.items()}
