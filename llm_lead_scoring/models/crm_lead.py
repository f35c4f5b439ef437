import logging
import threading
import time
from datetime import timedelta
from email.utils import getaddresses

import psycopg2
from markupsafe import Markup, escape

from odoo import _, api, fields, models
from odoo.tools import SQL

from .llm_scoring_model import score_band

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
STUCK_PROCESSING_MINUTES = 15
RETRY_BASE_MINUTES = 5
RETRY_MAX_MINUTES = 6 * 60
CRON_TIME_BUDGET = 240  # seconds of work per cron run; the cron re-triggers itself for the rest
TREND_EPSILON = 1.0
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
        string="AI Score",
        digits=(16, 1),
        readonly=True,
        copy=False,
        help="The learned win probability (0-100) once a model exists, else the weighted "
        "rules composite of completeness, clarity and engagement.",
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
        string="AI Score Trend",
        readonly=True,
        copy=False,
    )
    ai_score_method = fields.Selection(
        [("rules", "Rules composite"), ("learned", "Learned model")],
        string="Scoring Method",
        readonly=True,
        copy=False,
        help="Rules composite until a model learned from the company's closed leads exists.",
    )
    ai_analysis_method = fields.Selection(
        [("rules", "Rules"), ("llm", "Rules + LLM")],
        string="Analysis Method",
        readonly=True,
        copy=False,
        help="Whether an LLM judged the clarity of the need, or rules alone.",
    )
    ai_model_version = fields.Char(string="Model Version", readonly=True, copy=False)
    ai_score_factors = fields.Json(string="Score Factors", readonly=True, copy=False)
    ai_score_explanation = fields.Text(
        string="Why this score",
        readonly=True,
        copy=False,
        help="The factors that raise or lower the learned probability the most.",
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
    auto_enrich = fields.Boolean(
        string="Auto AI Scoring",
        default=True,
        copy=False,
        help="Re-score this lead automatically when its data changes.",
    )
    ai_score_history_ids = fields.One2many(
        "crm.lead.score.history", "lead_id", string="AI Score History", readonly=True
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
        to_queue = self.filtered(
            lambda lead: lead.auto_enrich
            and lead.active
            and lead.ai_enrichment_status != "processing"
        )
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
            cron = env.ref(
                "llm_lead_scoring.ir_cron_llm_lead_scoring_enrich", raise_if_not_found=False
            )
            if cron:
                cron.sudo()._trigger()
            cr.precommit.data.pop("llm_lead_scoring.trigger", None)

        cr.precommit.add(trigger)

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_ai_score_now(self):
        """Score this lead now (the user asked for it) and tell the result."""
        self.ensure_one()
        self.check_access_rights("write")
        self.check_access_rule("write")
        self._ai_enrich(self)
        self.invalidate_recordset()
        if self.ai_enrichment_status == "failed":
            params = {
                "type": "warning",
                "title": _("AI scoring failed"),
                "message": _(
                    "%(error)s The lead keeps its rule-based scores and will be "
                    "retried automatically.",
                    error=self.ai_enrichment_error,
                ),
                "sticky": True,
            }
        else:
            params = {
                "type": "success",
                "title": _("AI score: %(score)s", score=round(self.ai_probability_score)),
                "message": self.ai_analysis_summary or "",
            }
        params["next"] = {"type": "ir.actions.client", "tag": "soft_reload"}
        return {"type": "ir.actions.client", "tag": "display_notification", "params": params}

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

    # ------------------------------------------------------------
    # BUSINESS: background enrichment
    # ------------------------------------------------------------

    @api.model
    def _cron_enrich_leads(self, time_budget=CRON_TIME_BUDGET):
        """Score the backlog in batches, company by company with each one's settings;
        several workers can run it at once.

        Each batch is locked with FOR UPDATE SKIP LOCKED, marked processing and committed,
        scored (HTTP in worker threads, no row lock held), written and committed. A company
        whose AI budget is used up stops here; the cron comes back when the window ends.
        """
        started = time.monotonic()
        # same guard as crm's PLS: never commit inside a test transaction
        auto_commit = not (
            self.env.registry.in_test_mode()
            or getattr(threading.current_thread(), "testing", False)
        )
        self._ai_requeue_stuck()
        if auto_commit:
            self._ai_commit()  # the re-queued leads are visible to the other workers
        cron = self.env.ref("llm_lead_scoring.ir_cron_llm_lead_scoring_enrich")
        for company in self.env["res.company"].sudo().search([]):
            config = self.env["llm.service"]._get_config(company)
            if not config["auto_enrich_enabled"]:
                continue
            while True:
                if auto_commit:
                    self._ai_commit()  # a fresh snapshot: fewer conflicts with other workers
                leads = self._ai_lock_batch(
                    company,
                    config["batch_size"],
                    config["max_attempts"],
                    retry_on_conflict=auto_commit,
                )
                if not leads:
                    break
                super(CrmLead, leads).write(
                    {
                        "ai_enrichment_status": "processing",
                        "ai_processing_since": fields.Datetime.now(),
                    }
                )
                if auto_commit:
                    # release the row locks: marked processing, no other worker takes them
                    self._ai_commit()
                outcomes = self._ai_enrich(leads)
                if auto_commit:
                    # one batch done: keep its results even if a later batch fails
                    self._ai_commit()
                deferred = [o["deferred_until"] for o in outcomes.values() if o["deferred_until"]]
                if deferred:
                    cron._trigger(at=min(deferred))
                    break  # the company's AI budget is used up: the rest waits, untouched
                if time.monotonic() - started > time_budget:
                    cron._trigger()
                    return

    @api.model
    def _ai_commit_if_allowed(self):
        """Commit a long job's progress, except inside tests (same guard as the cron)."""
        if not (
            self.env.registry.in_test_mode()
            or getattr(threading.current_thread(), "testing", False)
        ):
            self._ai_commit()

    @api.model
    def _ai_commit(self):
        """Commit the cron's work so far (never called in tests: see _cron_enrich_leads).

        The scoring cron commits per batch, as crm's own PLS and iap enrichment do: a batch
        done stays done when a later one fails, and row locks are held only briefly.
        """
        self.env.cr.commit()  # pylint: disable=invalid-commit

    @api.model
    def _ai_lock_batch(self, company, batch_size, max_attempts, retry_on_conflict=False):
        """Lock the next batch of ``company``'s backlog (leads without a company go with the
        current company), skipping rows another worker holds."""
        self.flush_model(
            ["ai_enrichment_status", "ai_enrichment_attempts", "ai_next_retry_date", "active"]
        )
        for attempt in range(5):
            try:
                with self.env.cr.savepoint(flush=False):
                    self.env.cr.execute(
                        SQL(
                            """SELECT id FROM crm_lead
                                WHERE active
                                  AND (company_id = %s OR (company_id IS NULL AND %s))
                                  AND COALESCE(ai_next_retry_date, '1970-01-01') <= %s
                                  AND (ai_enrichment_status = 'pending'
                                       OR (ai_enrichment_status = 'failed'
                                           AND ai_enrichment_attempts < %s))
                             ORDER BY ai_enrichment_status = 'failed', id
                                LIMIT %s
                                  FOR UPDATE SKIP LOCKED""",
                            company.id,
                            company == self.env.company,
                            fields.Datetime.now(),
                            max_attempts,
                            batch_size,
                        ),
                        # a conflict is expected with several workers, and retried below
                        log_exceptions=False,
                    )
                    return self.browse([row[0] for row in self.env.cr.fetchall()])
            except psycopg2.errors.SerializationFailure:
                # another worker committed rows newer than our snapshot (REPEATABLE READ)
                if not retry_on_conflict or attempt == 4:
                    raise
                # nothing is pending here: a new transaction gives a fresh snapshot
                self._ai_commit()
        return self.browse()

    @api.model
    def _ai_requeue_stuck(self):
        """Leads left in processing by a crashed worker go back to the queue."""
        self.flush_model(["ai_enrichment_status", "ai_processing_since"])
        self.env.cr.execute(
            """UPDATE crm_lead SET ai_enrichment_status = 'pending'
                WHERE ai_enrichment_status = 'processing'
                  AND (ai_processing_since IS NULL OR ai_processing_since < %s)
            RETURNING id""",
            [fields.Datetime.now() - timedelta(minutes=STUCK_PROCESSING_MINUTES)],
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        if ids:
            _logger.warning("AI scoring: %s leads stuck in processing were re-queued", len(ids))
            self.browse(ids).invalidate_recordset(["ai_enrichment_status"])

    @api.model
    def _ai_enrich(self, leads, use_llm=True, post_notes=True):
        """Score ``leads`` and write the results, notes and history in batch.

        Queries per batch: a constant for reading and scoring, one UPDATE per lead, one
        INSERT for the history and one for the notes.
        """
        outcomes = self.env["llm.service"]._score_leads(leads, use_llm=use_llm)
        learned = self._ai_learned_predictions(leads, outcomes)
        Model = self.env["llm.scoring.model"].sudo()
        labels = Model._value_labels([p["factors"] for p in learned.values()])
        now = fields.Datetime.now()
        max_attempts = {}
        history_vals, notes = [], {}
        for lead in leads:
            outcome = outcomes[lead.id]
            prediction = learned.get(lead.id)
            score = (
                round(100 * prediction["probability"], 1)
                if prediction
                else outcome["calculated_score"]
            )
            previous = lead.ai_probability_score if lead.ai_last_enrichment_date else None
            trend = self._ai_trend(previous, score)
            analysis = outcome["analysis"] or {}
            vals = {
                "ai_probability_score": score,
                "ai_completeness_score": outcome["completeness"]["score"],
                "ai_clarity_score": outcome["clarity"]["score"],
                "ai_engagement_score": outcome["engagement"]["score"],
                "ai_score_trend": trend,
                "ai_score_method": "learned" if prediction else "rules",
                "ai_analysis_method": outcome["method"],
                "ai_model_version": prediction and prediction["version"],
                "ai_score_factors": prediction and prediction["factors"],
                "ai_score_explanation": prediction
                and Model._explanation(prediction["factors"], labels),
                "ai_analysis_summary": outcome["summary"],
                "ai_enrichment_data": self._ai_enrichment_payload(outcome, now),
                "ai_last_enrichment_date": now,
                "ai_processing_since": False,
            }
            if analysis:
                vals.update(
                    ai_strengths="\n".join(analysis["strengths"]),
                    ai_risks="\n".join(analysis["risks"]),
                    ai_next_action=analysis["next_action"],
                )
            company = lead.company_id or self.env.company
            if company.id not in max_attempts:
                max_attempts[company.id] = company.sudo().llm_max_attempts
            if outcome["deferred_until"]:
                # the company's AI budget is used up: rules for now, the LLM after the window
                vals.update(
                    ai_enrichment_status="pending",
                    ai_enrichment_error=_(
                        "%(reason)s Scored by rules for now.", reason=outcome["error"]
                    ),
                    ai_next_retry_date=outcome["deferred_until"],
                )
            elif outcome["failed"]:
                attempts = lead.ai_enrichment_attempts + 1
                delay = min(RETRY_BASE_MINUTES * 2 ** (attempts - 1), RETRY_MAX_MINUTES)
                vals.update(
                    ai_enrichment_status="failed",
                    ai_enrichment_error=outcome["error"],
                    ai_enrichment_attempts=attempts,
                    ai_next_retry_date=now + timedelta(minutes=delay)
                    if attempts < max_attempts[company.id]
                    else False,
                )
            else:
                vals.update(
                    ai_enrichment_status="completed",
                    ai_enrichment_error=False,
                    ai_enrichment_attempts=0,
                    ai_next_retry_date=False,
                )
            super(CrmLead, lead).write(vals)
            if trend != "stable":
                history_vals.append(
                    {
                        "lead_id": lead.id,
                        "date": now,
                        "score": score,
                        "previous_score": previous or 0.0,
                        "trend": trend,
                        "method": "learned" if prediction else outcome["method"],
                        "reason": self.env.context.get("ai_score_reason") or "scored",
                    }
                )
            if post_notes:
                notes[lead.id] = self._ai_note_body(vals, outcome, trend, previous)
        self.env["crm.lead.score.history"].sudo().create(history_vals)
        if notes:
            leads._message_log_batch(notes)
        return outcomes

    @api.model
    def _ai_learned_predictions(self, leads, outcomes):
        """Learned probabilities of leads whose company has a model, from the features known
        now (the completeness, clarity and signals just computed included)."""
        Model = self.env["llm.scoring.model"].sudo()
        predictions = {}
        by_company = {}
        for lead in leads:
            by_company.setdefault(lead.company_id or self.env.company, []).append(lead.id)
        for company, lead_ids in by_company.items():
            if not Model.search_count([("company_id", "=", company.id)], limit=1):
                continue
            rows = Model._lead_rows(lead_ids)
            for lead_id, row in rows.items():
                outcome = outcomes[lead_id]
                signals = outcome["clarity"].get("signals") or {}
                row.update(
                    completeness=score_band(outcome["completeness"]["score"]),
                    clarity=score_band(outcome["clarity"]["score"]),
                    **{k: ("yes" if v else "no") for k, v in signals.items()},
                )
            predictions.update(Model._predict_rows(company, rows))
        return predictions

    @api.model
    def _ai_trend(self, previous, score):
        if previous is None:
            return "new"
        if score - previous >= TREND_EPSILON:
            return "up"
        if previous - score >= TREND_EPSILON:
            return "down"
        return "stable"

    @api.model
    def _ai_enrichment_payload(self, outcome, now):
        return {
            "scores": {
                "probability": outcome["calculated_score"],
                "completeness": outcome["completeness"]["score"],
                "clarity": outcome["clarity"]["score"],
                "engagement": outcome["engagement"]["score"],
            },
            "weights": outcome["weights"],
            "method": outcome["method"],
            "analysis": {
                "completeness": outcome["completeness"]["analysis"],
                "critical_missing": outcome["completeness"]["critical_missing"],
                "clarity": outcome["clarity"]["analysis"],
                "clarity_signals": outcome["clarity"].get("signals"),
                "engagement": outcome["engagement"]["analysis"],
                "llm": outcome["analysis"],
            },
            "sent": outcome["sent"],
            "llm": outcome["llm"],
            "error": outcome["error"],
            "timestamp": fields.Datetime.to_string(now),
        }

    @api.model
    def _ai_note_body(self, vals, outcome, trend, previous):
        trend_label = dict(self._fields["ai_score_trend"].selection)[trend]
        parts = [
            Markup("<p><b>%s</b> %s/100 (%s%s)</p>")
            % (
                _("AI score:"),
                round(vals["ai_probability_score"]),
                trend_label,
                "" if previous is None else _(", was %(p)s", p=round(previous)),
            ),
            Markup("<p>%s</p>")
            % _(
                "Completeness %(c)s, clarity %(cl)s, engagement %(e)s.",
                c=round(vals["ai_completeness_score"]),
                cl=round(vals["ai_clarity_score"]),
                e=round(vals["ai_engagement_score"]),
            ),
            Markup("<p>%s</p>") % escape(vals["ai_analysis_summary"] or ""),
        ]
        if outcome["failed"]:
            parts.append(
                Markup("<p>%s</p>")
                % _("AI call failed: %(error)s It will be retried.", error=outcome["error"])
            )
        return Markup("").join(parts)

    @api.model
    def _ai_score_all_by_rules(self, batch_size=1000):
        """Score every lead by rules (at install), in batches, without chatter notes."""
        lead_ids = self.with_context(active_test=False).search([], order="id").ids
        leads_model = self.with_context(ai_score_reason="first scoring at install")
        for start in range(0, len(lead_ids), batch_size):
            leads = leads_model.browse(lead_ids[start : start + batch_size])
            leads_model._ai_enrich(leads, use_llm=False, post_notes=False)
            leads.invalidate_recordset()
