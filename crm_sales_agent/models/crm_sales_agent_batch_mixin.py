import logging
import threading
import time

from odoo import api, models
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

# a cron run stops starting new batches after this many seconds, keeps its place and triggers
# itself again: well inside Odoo's default limit_time_real (120 s) whatever the database size
TIME_BUDGET_SECONDS = 90


class CrmSalesAgentBatchMixin(models.AbstractModel):
    """Locked batches of open leads, one commit per batch, a time budget per run.

    The models that own a cron of the agent (follow-up, assessment) inherit this and set
    ``_sales_agent_cron_xmlid``. A run that reaches the time budget stores where it stopped
    (company, last lead id) in ``ir.config_parameter`` and triggers its cron, whose next run
    goes on from there; a complete run clears it.
    """

    _name = "crm.sales.agent.batch.mixin"
    _description = "Sales Agent: batched cron runs"

    _sales_agent_cron_xmlid = None

    @api.model
    def _sales_agent_time_budget(self):
        """Seconds after which a run stops starting new batches (a method: tests patch it)."""
        return TIME_BUDGET_SECONDS

    @api.model
    def _sales_agent_auto_commit(self):
        """Commit per batch, except in tests (registry test mode, or a test thread: a plain
        TransactionCase does not enter test mode and a commit would end its transaction)."""
        return not (
            self.env.registry.in_test_mode()
            or getattr(threading.current_thread(), "testing", False)
        )

    @api.model
    def _sales_agent_with_lang(self):
        """Cron jobs run without a language in the context: ``_()`` then looks the user's
        language up again at each call, which dominated the per-lead time of the crons. The
        same language is set once instead."""
        # without a language ``_()`` keeps the source text, which is English
        return self.with_context(lang=self.env["res.users"].context_get().get("lang") or "en_US")

    @api.model
    def _sales_agent_progress_key(self):
        return "crm_sales_agent.cron_progress.%s" % self._name

    @api.model
    def _sales_agent_lock_batch(self, after_id, limit, where, lock=True):
        """Ids of the next open leads after ``after_id`` matching ``where`` (an SQL object on
        ``crm_lead l``), locked; rows locked by another transaction (a user editing, another
        cron) are skipped and retried next run. ``FOR NO KEY UPDATE`` (as ir_cron) lets other
        transactions insert rows that reference these leads. ``lock=False``: read only."""
        self.env.cr.execute(
            SQL(
                """SELECT l.id FROM crm_lead l
                    WHERE l.active AND l.id > %s
                      AND NOT EXISTS (SELECT 1 FROM crm_stage s
                                       WHERE s.id = l.stage_id AND s.is_won)
                      AND (%s)
                 ORDER BY l.id
                    LIMIT %s
                   %s""",
                after_id,
                where,
                limit,
                SQL("FOR NO KEY UPDATE OF l SKIP LOCKED") if lock else SQL(""),
            )
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _sales_agent_run_batches(self, jobs, process, dry_run=False):
        """Run ``process(leads, job)`` on the locked batches of each job, in order.

        :param jobs: [{"company": company, "config": settings, "where": SQL}], one per
            company; jobs run in company id order so that a later run can go on from the
            company and lead where this one stopped
        :param process: called per batch of leads (their LEAD_FIELDS fetched)
        :param dry_run: read only: no lock, no commit, no time budget, no progress kept
        :return: True when every job ran to its end, False when the run stopped at the time
            budget (the cron is triggered to go on)
        """
        from .crm_lead_agent_data import LEAD_FIELDS

        Param = self.env["ir.config_parameter"].sudo()
        key = self._sales_agent_progress_key()
        jobs = sorted(jobs, key=lambda job: job["company"].id)
        resume_company, resume_after = 0, 0
        saved = not dry_run and Param.get_param(key)
        if saved:
            resume_company, resume_after = (int(part) for part in saved.split(","))
            if resume_company not in [job["company"].id for job in jobs]:
                resume_company, resume_after = 0, 0  # its job is gone: start again
        auto_commit = not dry_run and self._sales_agent_auto_commit()
        budget = self._sales_agent_time_budget()
        started = time.monotonic()
        batches = 0  # a run does at least one batch, so that it always makes progress
        Lead = self.env["crm.lead"]
        for job in jobs:
            company = job["company"]
            if company.id < resume_company:
                continue
            after_id = resume_after if company.id == resume_company else 0
            self.env.flush_all()
            while True:
                if not dry_run and batches and time.monotonic() - started >= budget:
                    Param.set_param(key, "%s,%s" % (company.id, after_id))
                    cron = self.env.ref(self._sales_agent_cron_xmlid, raise_if_not_found=False)
                    if cron:
                        cron.sudo()._trigger()
                    _logger.info(
                        "%s: time budget of %s s reached, goes on after lead %s of company %s",
                        self._name,
                        budget,
                        after_id,
                        company.id,
                    )
                    if auto_commit:
                        self.env.cr.commit()  # pylint: disable=invalid-commit
                    return False
                lead_ids = self._sales_agent_lock_batch(
                    after_id, job["config"]["batch_size"], job["where"], lock=not dry_run
                )
                if not lead_ids:
                    break
                after_id = lead_ids[-1]
                leads = Lead.browse(lead_ids)
                leads.fetch(LEAD_FIELDS)
                process(leads, job)
                batches += 1
                if auto_commit:
                    # keep this batch's work and release its row locks
                    self.env.cr.commit()  # pylint: disable=invalid-commit
                self.env.invalidate_all()
        if saved:
            Param.set_param(key, False)
        return True
