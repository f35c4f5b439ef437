import hashlib
import json
import logging
import threading
import time
from datetime import timedelta

import psycopg2

from odoo import _, api, fields, models
from odoo.tools import SQL

from ..lib import transport
from .llm_call_log import PURPOSES

_logger = logging.getLogger(__name__)

JOB_BATCH_SIZE = 20
JOB_TIME_BUDGET = 90  # seconds of a cron run, well within Odoo's default limit_time_real
JOB_MAX_ATTEMPTS = 3
JOB_RETRY_MINUTES = 5
JOB_STUCK_MINUTES = 5


def lock_next_batch(model, query, retry_on_conflict=False):
    """Run ``query`` (``SELECT id ... FOR UPDATE SKIP LOCKED``) and return the records it
    locked: the one way the suite's queues take their next batch. With several workers, a
    row committed after this transaction's snapshot raises a serialization conflict: when
    ``retry_on_conflict`` (a cron that commits), a new transaction is started and the query
    run again, at most five times."""
    for attempt in range(5):
        try:
            with model.env.cr.savepoint(flush=False):
                # a conflict is expected with several workers: not logged as an error
                model.env.cr.execute(query, log_exceptions=False)
                return model.browse([row[0] for row in model.env.cr.fetchall()])
        except psycopg2.errors.SerializationFailure:
            if not retry_on_conflict or attempt == 4:
                raise
            # nothing is pending here: a new transaction gives a fresh snapshot
            model.env.cr.commit()  # pylint: disable=invalid-commit
    return model.browse()


class LlmJob(models.Model):
    """AI work done in the background (the tone of inbound messages, drafts, ...): asked
    once per purpose, record and question, answered by the job cron through the gateway,
    read by the caller on its next run or handed over by ``_on_finished``. Nobody waits on
    HTTP while holding a row lock, and no browser request waits on the AI."""

    _name = "llm.job"
    _description = "AI Background Job"
    _order = "id"

    purpose = fields.Selection(PURPOSES, required=True, index=True, readonly=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True)
    res_model = fields.Char(required=True, readonly=True)
    res_id = fields.Many2oneReference(model_field="res_model", required=True, readonly=True)
    key = fields.Char(required=True, readonly=True, help="Hash of the question asked.")
    system = fields.Text(readonly=True)
    messages = fields.Json(readonly=True)
    options = fields.Json(readonly=True, help="max_tokens, stop... of this question")
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("processing", "Processing"),
            ("done", "Done"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
        ],
        default="pending",
        required=True,
        index=True,
        readonly=True,
    )
    priority = fields.Integer(
        readonly=True, help="Higher first: a job a user waits for goes before the others."
    )
    attempts = fields.Integer(readonly=True)
    next_retry = fields.Datetime(readonly=True)
    processing_since = fields.Datetime(readonly=True)
    answer = fields.Text(readonly=True)
    error = fields.Char(
        readonly=True, help="Why it failed, or why the answer of a done job was rejected."
    )
    done_date = fields.Datetime(readonly=True)

    _sql_constraints = [
        (
            "question_unique",
            "UNIQUE(purpose, res_model, res_id, key)",
            "The same question is asked once.",
        )
    ]

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    @api.model
    def _key(self, system, messages):
        raw = json.dumps([system, messages], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()

    @api.model
    def _ask(self, purpose, jobs):
        """Answers of the questions already answered; the others are queued (once).

        :param dict jobs: {caller key: {"record": record, "system": str, "messages": [...]}}
        :return dict: {caller key: answer text} for the answered ones (a failed job gives
            False: it will not be answered)
        """
        if not jobs:
            return {}
        wanted = {
            key: (job["record"], self._key(job.get("system"), job["messages"]))
            for key, job in jobs.items()
        }
        existing = {
            (job.res_model, job.res_id, job.key): job
            for job in self.sudo().search_fetch(
                [
                    ("purpose", "=", purpose),
                    ("key", "in", [digest for _record, digest in wanted.values()]),
                ],
                ["res_model", "res_id", "key", "state", "answer"],
            )
        }
        answers, to_create = {}, {}
        for key, (record, digest) in wanted.items():
            job = existing.get((record._name, record.id, digest))
            if job and job.state == "done":
                answers[key] = job.answer or ""
            elif job and job.state == "failed":
                answers[key] = False
            elif not job:
                to_create[(record._name, record.id, digest)] = {
                    "purpose": purpose,
                    "company_id": (record.company_id or self.env.company).id
                    if "company_id" in record._fields
                    else self.env.company.id,
                    "res_model": record._name,
                    "res_id": record.id,
                    "key": digest,
                    "system": jobs[key].get("system"),
                    "messages": jobs[key]["messages"],
                }
        if to_create:
            self.sudo().create(list(to_create.values()))
            self._trigger_cron_on_commit()
        return answers

    @api.model
    def _enqueue(self, purpose, record, system, messages, priority=0, options=None):
        """The job answering this question for ``record``: the one still pending or running
        for the same question (it is not asked, nor paid, twice), else a new one.

        :return: the ``llm.job`` (sudo)
        """
        digest = self._key(system, messages)
        Job = self.sudo()
        same = Job.search(
            [
                ("purpose", "=", purpose),
                ("res_model", "=", record._name),
                ("res_id", "=", record.id),
                ("key", "=like", digest + "%"),
            ]
        )
        running = same.filtered(lambda job: job.state in ("pending", "processing"))
        if running:
            if priority > running[0].priority:
                running[0].priority = priority
            return running[0]
        job = Job.create(
            {
                "purpose": purpose,
                "company_id": (record.company_id or self.env.company).id
                if "company_id" in record._fields
                else self.env.company.id,
                "res_model": record._name,
                "res_id": record.id,
                # an answered question asked again is a new job (a new draft wanted)
                "key": "%s-%d" % (digest, len(same)) if same else digest,
                "system": system,
                "messages": messages,
                "options": options or False,
                "priority": priority,
            }
        )
        self._trigger_cron_on_commit()
        return job

    def _cancel(self):
        """Cancel the jobs not answered yet: a pending job is never sent; the answer of a
        job already sent is dropped when it comes back."""
        running = self.sudo().filtered(lambda job: job.state in ("pending", "processing"))
        running.write({"state": "cancelled", "processing_since": False})
        return running

    def _validators(self):
        """{job id: callable(content) -> checked content, raising ``UnusableAnswer``}: the
        checks of the callers (hook; a job without one keeps any answer)."""
        return {}

    def _on_finished(self):
        """Hook called with the jobs just done or failed (callers hand the result over)."""

    def _trigger_cron_on_commit(self):
        cr = self.env.cr
        if cr.precommit.data.get("llm_lead_scoring.job_trigger"):
            return
        cr.precommit.data["llm_lead_scoring.job_trigger"] = True
        env = self.env

        def trigger():
            cron = env.ref("llm_lead_scoring.ir_cron_llm_job_run", raise_if_not_found=False)
            if cron:
                cron.sudo()._trigger()
            cr.precommit.data.pop("llm_lead_scoring.job_trigger", None)

        cr.precommit.add(trigger)

    @api.model
    def _cron_run_jobs(self, time_budget=JOB_TIME_BUDGET):
        """Answer the queued questions in batches: lock, mark processing, commit, call the
        gateway with no row lock held and nothing sent after the run's deadline, lock the
        rows that are free again and write, commit; re-trigger when time is up."""
        deadline = time.monotonic() + time_budget
        auto_commit = not (
            self.env.registry.in_test_mode()
            or getattr(threading.current_thread(), "testing", False)
        )
        self._requeue_stuck()
        while time.monotonic() < deadline - transport.MIN_CALL_SECONDS:
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
            jobs = self._lock_batch(retry_on_conflict=auto_commit)
            if not jobs:
                return
            jobs.write({"state": "processing", "processing_since": fields.Datetime.now()})
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
            jobs._run(deadline, commit=auto_commit)
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env.ref("llm_lead_scoring.ir_cron_llm_job_run")._trigger()

    @api.model
    def _lock_batch(self, retry_on_conflict=False):
        self.flush_model(["state", "next_retry"])
        query = SQL(
            """SELECT id FROM llm_job
                WHERE state = 'pending' AND COALESCE(next_retry, '1970-01-01') <= %s
             ORDER BY COALESCE(priority, 0) DESC, id LIMIT %s FOR UPDATE SKIP LOCKED""",
            fields.Datetime.now(),
            JOB_BATCH_SIZE,
        )
        return lock_next_batch(self, query, retry_on_conflict)

    def _run(self, deadline, commit=False):
        """Ask the gateway, then write what came back to the jobs that can be locked."""
        results = {}
        validators = self._validators()
        groups = {}
        for job in self:
            options = json.dumps(job.options or {}, sort_keys=True)
            groups.setdefault((job.purpose, options), self.browse())
            groups[(job.purpose, options)] |= job
        for (purpose, options), batch in groups.items():
            requests = {
                job.id: {
                    "messages": job.messages,
                    "system": job.system,
                    "record": self.env[job.res_model].browse(job.res_id).exists(),
                    "validate": validators.get(job.id),
                    # the audit row names who asked, not the cron's user
                    "user_id": job.create_uid.id,
                }
                for job in batch
            }
            gone = [job_id for job_id, job in requests.items() if not job["record"]]
            for job_id in gone:
                requests.pop(job_id)
                results[job_id] = {"success": False, "error_kind": "gone", "tried": []}
            results.update(
                self.env["llm.service"]._request_many(
                    purpose, requests, deadline=deadline, options=json.loads(options) or None
                )
            )
        self.flush_model()
        if commit:
            self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env.cr.execute(
            SQL("SELECT id FROM llm_job WHERE id = ANY(%s) FOR NO KEY UPDATE SKIP LOCKED", self.ids)
        )
        free = {row[0] for row in self.env.cr.fetchall()}
        now = fields.Datetime.now()
        # a job cancelled during its call keeps its state: its answer is dropped
        self.invalidate_recordset(["state"])
        written = self.filtered(lambda j: j.id in free and j.state == "processing")
        for job in written:
            job.write(job._outcome_vals(results[job.id], now))
        written.filtered(lambda j: j.state in ("done", "failed"))._on_finished()

    def _outcome_vals(self, result, now):
        """What a job becomes after its call: done (any answer, even one that cannot be
        read: it is not asked again), back to pending (not sent, budget), or an attempt."""
        if result["success"] or result["error_kind"] == transport.ERR_INVALID:
            parsed = result.get("parsed")
            return {
                "state": "done",
                # the checked text when a check gave one, else the raw answer
                "answer": (parsed if isinstance(parsed, str) else result.get("content")) or "",
                # a rejected answer: why (the caller shows it)
                "error": False if result["success"] else (result.get("error") or "")[:250],
                "done_date": now,
                "processing_since": False,
                "attempts": self.attempts + (1 if result["tried"] else 0),
            }
        if result["error_kind"] in ("gone", "disabled", None) and not result["tried"]:
            # the record is gone, the purpose is off, or there is no provider: not answered
            return {"state": "failed", "error": result.get("error"), "processing_since": False}
        if result["error_kind"] in (transport.ERR_DEADLINE, transport.ERR_BUDGET) and not any(
            t.get("attempts") for t in result["tried"]
        ):
            return {
                "state": "pending",
                "processing_since": False,
                "next_retry": result.get("retry_at") or False,
            }
        attempts = self.attempts + 1
        return {
            "state": "failed" if attempts >= JOB_MAX_ATTEMPTS else "pending",
            "attempts": attempts,
            "error": (result.get("error") or "")[:250],
            "processing_since": False,
            "next_retry": now + timedelta(minutes=JOB_RETRY_MINUTES * attempts),
        }

    @api.model
    def _requeue_stuck(self):
        """Jobs left processing by a killed worker: the attempt counts."""
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """UPDATE llm_job
                      SET attempts = COALESCE(attempts, 0) + 1, processing_since = NULL, error = %s,
                          state = CASE WHEN COALESCE(attempts, 0) + 1 >= %s
                                       THEN 'failed' ELSE 'pending' END
                    WHERE state = 'processing'
                      AND (processing_since IS NULL OR processing_since < %s)
                RETURNING id, state""",
                _("Interrupted: the worker stopped during the AI call."),
                JOB_MAX_ATTEMPTS,
                fields.Datetime.now() - timedelta(minutes=JOB_STUCK_MINUTES),
            )
        )
        rows = self.env.cr.fetchall()
        if rows:
            _logger.warning("AI jobs: %s jobs stuck in processing were re-queued", len(rows))
        self.invalidate_model()
        self.browse([job_id for job_id, state in rows if state == "failed"])._on_finished()

    @api.autovacuum
    def _gc_done_jobs(self):
        """Answered, failed and cancelled jobs are kept 30 days (a later run may still read
        them)."""
        self.env.cr.execute(
            SQL(
                """DELETE FROM llm_job
                    WHERE state NOT IN ('pending', 'processing') AND write_date < %s""",
                fields.Datetime.now() - timedelta(days=30),
            )
        )
