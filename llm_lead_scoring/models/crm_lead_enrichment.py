import logging
import threading
import time
from datetime import timedelta

from markupsafe import Markup, escape

from odoo import _, api, fields, models
from odoo.tools import SQL

from ..lib import transport
from .llm_job import lock_next_batch
from .llm_scoring_model import score_band

_logger = logging.getLogger(__name__)

# a batch never lasts longer than the cron's time budget (calls are cut at its deadline):
# a lead still processing after this was left by a killed worker
STUCK_PROCESSING_MINUTES = 5
RETRY_BASE_MINUTES = 5
RETRY_MAX_MINUTES = 6 * 60
# seconds of work per cron run, well within Odoo's default limit_time_real (120 s): no call
# is sent after it, and the cron re-triggers itself for the rest
CRON_TIME_BUDGET = 90
TREND_EPSILON = 1.0
BAD_BATCH_MIN_CALLS = 5  # a batch this large whose answers mostly failed is logged


class CrmLead(models.Model):
    """The background scoring of leads: the queue (state fields on the lead), its cron,
    and the writing of the results."""

    _inherit = "crm.lead"

    # ------------------------------------------------------------
    # BUSINESS: background enrichment
    # ------------------------------------------------------------

    @api.model
    def _cron_enrich_leads(self, time_budget=CRON_TIME_BUDGET):
        """Score the backlog of every company in batches; several workers can run it at once.

        Each batch is locked with FOR UPDATE SKIP LOCKED, marked processing and committed;
        its calls go through one pool for all companies, with no row lock held and nothing
        sent after the run's deadline; the results are written to the rows that can be
        locked (FOR NO KEY UPDATE SKIP LOCKED) and committed. After ``time_budget`` seconds
        the cron re-triggers itself for the rest.
        """
        started = time.monotonic()
        deadline = started + time_budget
        # same guard as crm's PLS: never commit inside a test transaction
        auto_commit = not (
            self.env.registry.in_test_mode()
            or getattr(threading.current_thread(), "testing", False)
        )
        self._ai_requeue_stuck()
        if auto_commit:
            self._ai_commit()  # the re-queued leads are visible to the other workers
        cron = self.env.ref("llm_lead_scoring.ir_cron_llm_lead_scoring_enrich")
        batch_size = self._ai_batch_size()
        while time.monotonic() < deadline - transport.MIN_CALL_SECONDS:
            if auto_commit:
                self._ai_commit()  # a fresh snapshot: fewer conflicts with other workers
            leads = self._ai_lock_batch(batch_size, retry_on_conflict=auto_commit)
            if not leads:
                return
            super(CrmLead, leads).write(
                {"ai_enrichment_status": "processing", "ai_processing_since": fields.Datetime.now()}
            )
            if auto_commit:
                # release the row locks: marked processing, no other worker takes them
                self._ai_commit()
            outcomes = self._ai_enrich(leads, deadline=deadline, lock=auto_commit)
            if auto_commit:
                # one batch done: keep its results even if a later batch fails
                self._ai_commit()
            deferred = [o["deferred_until"] for o in outcomes.values() if o["deferred_until"]]
            if deferred:
                cron._trigger(at=min(deferred))  # a company's budget window ends
        cron._trigger()  # time is up: the rest in the next run

    @api.model
    def _ai_batch_size(self):
        """The company's batch size rounded up to whole rounds of its provider's concurrent
        calls: a batch of 50 on 8 slots would leave 6 of them idle in its last round (80 %
        of the provider's limit measured instead of 90 %)."""
        size = self.env.company.sudo().llm_batch_size
        slots = self.env["llm.service"]._providers()[:1].concurrency
        if slots and slots > 1:
            size = -(-size // slots) * slots
        return size

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
    def _ai_lock_batch(self, batch_size, retry_on_conflict=False):
        """Lock the next batch of the backlog of all companies whose background scoring is
        on (leads without a company go with the current one), skipping rows another worker
        holds."""
        self.flush_model(
            [
                "ai_enrichment_status",
                "ai_enrichment_attempts",
                "ai_next_retry_date",
                "active",
                "ai_requested_by",
            ]
        )
        self.env["res.company"].flush_model(["llm_auto_enrich_enabled", "llm_max_attempts"])
        query = SQL(
            """SELECT l.id FROM crm_lead l
                 JOIN res_company c ON c.id = COALESCE(l.company_id, %s)
                WHERE l.active AND c.llm_auto_enrich_enabled
                  AND COALESCE(l.ai_next_retry_date, '1970-01-01') <= %s
                  AND (l.ai_enrichment_status = 'pending'
                       OR (l.ai_enrichment_status = 'failed'
                           AND COALESCE(l.ai_enrichment_attempts, 0) < c.llm_max_attempts))
             ORDER BY l.ai_requested_by IS NULL, l.ai_enrichment_status = 'failed', l.id
                LIMIT %s
                  FOR UPDATE OF l SKIP LOCKED""",
            self.env.company.id,
            fields.Datetime.now(),
            batch_size,
        )
        return lock_next_batch(self, query, retry_on_conflict)

    @api.model
    def _ai_requeue_stuck(self):
        """Leads left in processing by a killed worker: the attempt counts; they go back to
        the queue, or to failed after the company's max attempts, with the reason."""
        self.flush_model(["ai_enrichment_status", "ai_processing_since", "ai_enrichment_attempts"])
        self.env["res.company"].flush_model(["llm_max_attempts"])
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead l
                      SET ai_enrichment_attempts = COALESCE(l.ai_enrichment_attempts, 0) + 1,
                          ai_enrichment_status = CASE
                              WHEN COALESCE(l.ai_enrichment_attempts, 0) + 1 >= c.llm_max_attempts
                              THEN 'failed' ELSE 'pending' END,
                          ai_enrichment_error = %s,
                          ai_processing_since = NULL
                     FROM res_company c
                    WHERE c.id = COALESCE(l.company_id, %s)
                      AND l.ai_enrichment_status = 'processing'
                      AND (l.ai_processing_since IS NULL OR l.ai_processing_since < %s)
                RETURNING l.id""",
                _("The scoring was interrupted: the worker stopped during the AI call."),
                self.env.company.id,
                fields.Datetime.now() - timedelta(minutes=STUCK_PROCESSING_MINUTES),
            )
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        if ids:
            _logger.warning("AI scoring: %s leads stuck in processing were re-queued", len(ids))
            self.browse(ids).invalidate_recordset(
                [
                    "ai_enrichment_status",
                    "ai_enrichment_attempts",
                    "ai_enrichment_error",
                    "ai_processing_since",
                ]
            )

    @api.model
    def _ai_enrich(self, leads, use_llm=True, post_notes=True, deadline=None, lock=False):
        """Score ``leads`` and write the results, notes and history in batch.

        Queries per batch: a constant for reading and scoring, one UPDATE per set of
        columns written (see ``_ai_write_results``), one INSERT for the history and one for
        the notes. A chatter note only when the score, its trend or its method changed.

        :param float deadline: no AI call is sent after it (``time.monotonic()``); leads
            whose call was not sent go back to pending, without an attempt counted
        :param bool lock: write only the rows that can be locked now (FOR NO KEY UPDATE
            SKIP LOCKED): the others stay processing, and are taken again later
        """
        outcomes = self.env["llm.service"]._score_leads(leads, use_llm=use_llm, deadline=deadline)
        if lock:
            # a fresh snapshot: rows saved by users during the calls can be locked now
            self._ai_commit()
        requeue = self._ai_lock_for_results(leads, lock)
        leads = leads.filtered(lambda lead: lead.id in requeue)
        learned = self._ai_learned_predictions(leads, outcomes)
        Model = self.env["llm.scoring.model"].sudo()
        labels = Model._value_labels([p["factors"] for p in learned.values()])
        now = fields.Datetime.now()
        max_attempts = {}
        history_vals, notes, results, not_sent = [], {}, {}, []
        for lead in leads:
            outcome = outcomes[lead.id]
            if outcome["not_sent"]:
                # the run's time was up before its call: back to the queue, nothing counted
                not_sent.append(lead.id)
                continue
            prediction = learned.get(lead.id)
            # the quality score (rules + LLM) only: the learned probability goes to
            # ai_win_probability (computed from ai_score_factors), never here
            score = outcome["calculated_score"]
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
            if requeue[lead.id]:
                # its data changed during the call: this result is already old
                vals.update(ai_enrichment_status="pending", ai_enrichment_attempts=0)
            changed = (
                # a first score is no news (a new lead, the install): the AI Insights tab and
                # the score history show it; a note tells what changed afterwards
                (trend != "stable" and previous is not None)
                or (
                    previous is not None
                    and (
                        lead.ai_score_method != vals["ai_score_method"]
                        or lead.ai_analysis_method != vals["ai_analysis_method"]
                    )
                )
                or (outcome["failed"] and lead.ai_enrichment_status != "failed")
            )
            vals["ai_requeue"] = False
            results[lead.id] = vals
            if trend != "stable":
                history_vals.append(
                    {
                        "lead_id": lead.id,
                        "date": now,
                        "score": score,
                        "previous_score": previous or 0.0,
                        "trend": trend,
                        "method": "llm" if outcome["method"] == "llm" else "rules",
                        "reason": self.env.context.get("ai_score_reason") or "scored",
                    }
                )
            if post_notes and changed:
                notes[lead.id] = self._ai_note_body(vals, outcome, trend, previous)
        if not_sent:
            super(CrmLead, self.browse(not_sent)).write(
                {"ai_enrichment_status": "pending", "ai_processing_since": False}
            )
        self._ai_write_results(results)
        self.env["crm.lead.score.history"].sudo().create(history_vals)
        if notes:
            leads._message_log_batch(notes)
        self._ai_notify_requesters(leads)
        self._ai_warn_bad_batch(outcomes)
        return outcomes

    @api.model
    def _ai_write_results(self, results):
        """Write the results of a batch, {lead id: vals}, in one UPDATE per set of columns
        (a handful per batch) instead of one per lead, which the ORM would send since every
        lead has values of its own.

        The ORM semantics that matter here are kept: the cache of the leads is invalidated,
        the fields depending on the written ones are recomputed (``modified``, e.g. the win
        probability from ``ai_score_factors``) and flushed the same grouped way, and values
        go through each field's conversion (selection values are validated). None of these
        columns is tracked; should a module track one, the ORM ``write`` is used lead by
        lead so that its tracking values are posted.
        """
        if not results:
            return
        fnames = set().union(*results.values())
        if fnames & set(self._track_get_fields()):
            for lead_id, vals in results.items():
                super(CrmLead, self.browse(lead_id)).write(vals)
            return
        by_columns = {}
        for lead_id, vals in results.items():
            by_columns.setdefault(tuple(sorted(vals)), []).append(lead_id)
        leads = self.browse(list(results))
        self.flush_model(fnames)  # nothing older may overwrite these values later
        for columns, lead_ids in by_columns.items():
            rows = []
            for lead_id in lead_ids:
                lead = self.browse(lead_id)
                vals = results[lead_id]
                rows.append([lead_id] + [self._ai_column_value(lead, c, vals[c]) for c in columns])
            self._ai_update_rows(list(columns), rows)
        leads.invalidate_recordset(list(fnames) + ["write_uid", "write_date"])
        leads.modified(fnames)
        self._ai_flush_grouped()

    def _ai_column_value(self, lead, fname, value):
        """``value`` as the ORM would write it in the column of ``fname`` (validated, e.g. a
        selection value; a JSON value is not copied twice, it is serialised once)."""
        field = self._fields[fname]
        if field.type != "json":
            value = field.convert_to_cache(value, lead)
        return field.convert_to_column(value, lead)

    @api.model
    def _ai_update_rows(self, columns, rows):
        """UPDATE crm_lead rows from a VALUES list: ``rows`` = [[id, value per column]]."""
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead AS l
                      SET %s, write_uid = %s, write_date = %s
                     FROM (VALUES %s) AS v(id, %s)
                    WHERE l.id = v.id""",
                SQL(", ").join(
                    SQL(
                        "%s = v.%s::%s",
                        SQL.identifier(c),
                        SQL.identifier(c),
                        SQL(self._fields[c].column_type[1]),
                    )
                    for c in columns
                ),
                self.env.uid,
                self.env.cr.now(),
                SQL(", ").join(
                    SQL("(%s)", SQL(", ").join(SQL("%s", v) for v in row)) for row in rows
                ),
                SQL(", ").join(SQL.identifier(c) for c in columns),
            )
        )

    @api.model
    def _ai_flush_grouped(self):
        """Recompute what depends on the results and flush the leads' pending values in one
        UPDATE per set of columns (the ORM's flush sends one per distinct set of values,
        i.e. one per lead for computed scores). Translated and context-dependent fields,
        and other models, go through the ORM's flush."""
        self.env._recompute_all()
        cache = self.env.cache
        dirty = {
            field: cache.get_dirty_records(self, field)._ids
            for field in self._fields.values()
            if field in cache.get_dirty_fields()
            and field.store
            and field.column_type
            and not field.translate
            and not self.pool.field_depends_context[field]
        }
        values = {}
        for field, ids in dirty.items():
            field_cache = cache._get_field_cache(self, field)
            for lead_id in ids:
                lead = self.browse(lead_id)
                value = field.convert_to_write(field_cache[lead_id], lead)
                values.setdefault(lead_id, {})[field.name] = field.convert_to_column(value, lead)
        for field in dirty:
            cache.clear_dirty_field(field)
        by_columns = {}
        for lead_id, vals in values.items():
            by_columns.setdefault(tuple(sorted(vals)), []).append(lead_id)
        for columns, lead_ids in by_columns.items():
            columns = [c for c in columns if c not in ("write_uid", "write_date")]
            if columns:
                self._ai_update_rows(
                    columns, [[i] + [values[i][c] for c in columns] for i in lead_ids]
                )
        self.flush_model()

    @api.model
    def _ai_notify_requesters(self, leads):
        """Tell whoever asked "Score with AI" that the score is written."""
        asked = leads.filtered("ai_requested_by")
        if not asked:
            return
        messages = []
        for lead in asked:
            if lead.ai_enrichment_status == "failed":
                message = {
                    "type": "warning",
                    "title": _("AI scoring of %(lead)s failed", lead=lead.name),
                    "message": _(
                        "%(error)s The lead keeps its rule-based scores and will be retried.",
                        error=lead.ai_enrichment_error,
                    ),
                    "sticky": True,
                }
            else:
                message = {
                    "type": "success",
                    "title": _(
                        "Quality score of %(lead)s: %(score)s",
                        lead=lead.name,
                        score=round(lead.ai_probability_score),
                    ),
                    "message": lead.ai_analysis_summary or "",
                }
            messages.append([lead.ai_requested_by.partner_id, "simple_notification", message])
        self.env["bus.bus"].sudo()._sendmany(messages)
        super(CrmLead, asked).write({"ai_requested_by": False})

    @api.model
    def _ai_warn_bad_batch(self, outcomes):
        """One WARNING for a batch whose AI answers mostly failed, with what to look at."""
        asked = [o for o in outcomes.values() if o["llm"] and not o["deferred_until"]]
        asked = [o for o in asked if not o["not_sent"]]
        bad = [o for o in asked if not o["analysis"]]
        if len(asked) >= BAD_BATCH_MIN_CALLS and 2 * len(bad) > len(asked):
            kinds = sorted({o["llm"]["error_kind"] or "invalid_answer" for o in bad})
            _logger.warning(
                "AI scoring: %s of %s AI answers of a batch were unusable or failed (%s). "
                "Those leads keep their rule scores. Check the provider's model and chat "
                "template, its timeout and Concurrent Calls (1 for a local server); details "
                "in CRM > Reporting > AI Calls.",
                len(bad),
                len(asked),
                ", ".join(kinds),
            )

    @api.model
    def _ai_lock_for_results(self, leads, lock):
        """{lead id: edited during the call} for the leads whose results may be written now
        (with ``lock``, those no other transaction holds)."""
        self.flush_model(["ai_requeue"])
        self.env.cr.execute(
            SQL(
                "SELECT id, ai_requeue FROM crm_lead WHERE id = ANY(%s) %s",
                leads.ids,
                SQL("FOR NO KEY UPDATE SKIP LOCKED") if lock else SQL(),
            )
        )
        requeue = dict(self.env.cr.fetchall())
        if lock:
            leads.invalidate_recordset()  # what users saved during the calls
        else:
            leads.invalidate_recordset(["ai_requeue"])
        return requeue

    @api.model
    def _ai_learned_predictions(self, leads, outcomes):
        """Learned win probabilities of leads whose company has a model, from the features
        known now (the completeness and clarity just computed included)."""
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
                # the columns about to be written, as the next rescoring will read them
                row.update(
                    completeness=score_band(outcome["completeness"]["score"]),
                    clarity=score_band(outcome["clarity"]["score"]),
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
                _("Quality score:"),
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
    def _ai_queue_existing(self):
        """At install: the active leads are queued in one UPDATE; the scoring cron works
        through them in batches (archived leads are not scored)."""
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead SET ai_enrichment_status = 'pending'
                    WHERE active AND ai_enrichment_status IS NULL
                      AND COALESCE(auto_enrich, TRUE)"""
            )
        )
        self.invalidate_model(["ai_enrichment_status"])
        self._ai_trigger_cron_on_commit()
