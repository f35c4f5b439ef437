from odoo import models

from odoo.addons.llm_lead_scoring.lib import transport


class LlmJob(models.Model):
    """Drafts of "Draft with AI" go through the AI job queue: checked like a draft, handed
    over to their wizard when done, and never left waiting on a retry in 5 minutes."""

    _inherit = "llm.job"

    def _drafts_waiting(self):
        return (
            self.env["crm.sales.agent.draft"]
            .sudo()
            .search(
                [("job_id", "in", self.filtered(lambda j: j.purpose == "drafting").ids)],
                order="id desc",
            )
            .filtered(lambda draft: draft.state == "working")
        )

    def _validators(self):
        validators = super()._validators()
        for draft in self._drafts_waiting():
            validators.setdefault(draft.job_id.id, draft._job_check(draft.job_id))
        return validators

    def _outcome_vals(self, result, now):
        """A draft is failed at its first error (the user sees why and may retry) rather
        than retried minutes later; only a call not sent at all waits for the next run."""
        vals = super()._outcome_vals(result, now)
        sent = any(t.get("attempts") for t in result["tried"])
        if (
            self.purpose == "drafting"
            and vals["state"] == "pending"
            and (sent or result["error_kind"] == transport.ERR_BUDGET)
        ):
            vals.update(
                state="failed",
                error=(result.get("error") or "")[:250],
                next_retry=False,
            )
        return vals

    def _on_finished(self):
        super()._on_finished()
        self._drafts_waiting()._apply_job_result()
