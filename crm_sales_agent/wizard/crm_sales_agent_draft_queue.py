import time

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from .crm_sales_agent_draft import DRAFT_DEADLINE_SECONDS

DRAFT_PRIORITY = 10  # a draft someone waits for goes before the other background AI jobs
DRAFT_KEEP_HOURS = 24  # a finished draft stays reachable from its lead for a day


class CrmSalesAgentDraftQueue(models.TransientModel):
    """ "Draft with AI" in the background: the browser asks, the AI job queue (``llm.job``)
    writes, the user is notified. The wizard shows the state ("still working", ready,
    rejected, failed) and is reopened by "Draft with AI" on the lead."""

    _inherit = "crm.sales.agent.draft"
    _transient_max_hours = DRAFT_KEEP_HOURS

    state = fields.Selection(
        [
            ("new", "New"),
            ("working", "Still working"),
            ("ready", "Ready"),
            ("rejected", "AI answer rejected"),
            ("failed", "AI did not answer"),
            ("cancelled", "Cancelled"),
        ],
        default="new",
        required=True,
        readonly=True,
    )
    job_id = fields.Many2one("llm.job", readonly=True, ondelete="set null")

    def _check_own_draft(self):
        """Actions on a draft: its author only (transient records are their creator's),
        on a lead he may still write."""
        self.ensure_one()
        self.check_access_rights("write")
        self.check_access_rule("write")
        self._check_lead_access()

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_generate(self):
        """Queue the draft and return at once: the AI job cron writes it and notifies the
        user. A draft already being written is not asked again (nor paid twice). Without a
        provider, or with drafting switched off, the template-based draft is shown now."""
        self._check_own_draft()
        if self.state == "working":
            return self._reopen()
        lead = self.lead_id
        context = self._draft_context()
        messages, system = self._draft_messages(context)
        refusal = self._drafting_refusal()
        if refusal:
            self._write_template(context, refusal, "failed")
            return self._reopen()
        job = self.env["llm.job"]._enqueue(
            "drafting",
            lead,
            system,
            messages,
            priority=DRAFT_PRIORITY,
            options=self._draft_options(),
        )
        self.write(
            {
                "state": "working",
                "job_id": job.id,
                "generation_note": _(
                    "The AI is writing this draft. You can close this window: you will be "
                    "notified, and “Draft with AI” on the lead reopens it."
                ),
            }
        )
        return self._reopen()

    def action_retry(self):
        """Ask the AI again (a new request) after a rejected or failed answer."""
        self._check_own_draft()
        if self.state == "working":
            raise UserError(_("The AI is still writing this draft."))
        return self.action_generate()

    def action_cancel(self):
        """Stop waiting: a request not sent yet is never sent; an answer already on its way
        is dropped."""
        self._check_own_draft()
        if self.state != "working":
            return self._reopen()
        job = self.job_id.sudo()
        others = self.sudo().search_count(
            [("job_id", "=", job.id), ("state", "=", "working"), ("id", "!=", self.id)]
        )
        if job and not others:
            job._cancel()
        self.write(
            {
                "state": "cancelled",
                "job_id": False,
                "generation_note": _("Cancelled: no AI draft was written."),
            }
        )
        return self._reopen()

    def action_refresh(self):
        """Show the draft as it is now (the AI job may have finished)."""
        self._check_own_draft()
        job = self.job_id.sudo()
        if self.state == "working" and job.state in ("done", "failed", "cancelled"):
            self.sudo()._apply_job_result()
        return self._reopen()

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    def _drafting_refusal(self):
        """Why no AI can be asked for this draft, or False."""
        company = self.lead_id.company_id or self.env.company
        service = self.env["llm.service"]
        if not service._get_config(company).get("purpose_drafting"):
            return _(
                "AI for %(purpose)s is switched off for %(company)s.",
                purpose=_("Drafting"),
                company=company.name,
            )
        if not service._providers(company):
            return _("No LLM provider is configured.")
        return False

    def _draft_options(self):
        """What the provider is asked for: an SMS needs far fewer tokens than an e-mail."""
        return {"max_tokens": 200 if self.kind == "sms" else 900}

    def _job_check(self, job):
        """The check of the job's answer for this draft (``llm.job._validators``)."""
        prompt_texts = [job.system, (job.messages or [{}])[0].get("content")]
        return lambda text: self._check_draft(text, prompt_texts)

    def _write_template(self, context, reason, state):
        subject, body = self.with_context(lang=self.lang)._template_draft(context)
        self.write(
            {
                "subject": subject,
                "body": body,
                "generated": True,
                "is_template": True,
                "state": state,
                "generation_note": _("Template-based draft: %(reason)s", reason=reason),
            }
        )

    def _apply_job_result(self):
        """Write what the finished job gave to these drafts and tell their authors."""
        messages = []
        for record in self:
            # as its author: texts in his language, his name as the salesperson
            author = record.create_uid
            draft = record.with_user(author).sudo().with_context(lang=author.lang)
            job = draft.job_id.sudo()
            if job.state == "done" and not job.error:
                subject, body = draft._split_subject(job.answer or "")
                provider = (
                    self.env["llm.call.log"]
                    .sudo()
                    .search(
                        [
                            ("purpose", "=", "drafting"),
                            ("res_model", "=", "crm.lead"),
                            ("res_id", "=", draft.lead_id.id),
                            ("outcome", "=", "ok"),
                        ],
                        order="id desc",
                        limit=1,
                    )
                    .provider_id
                )
                draft.write(
                    {
                        "subject": subject or draft._template_subject(),
                        "body": body,
                        "generated": True,
                        "is_template": False,
                        "state": "ready",
                        "generation_note": _(
                            "Drafted by %(provider)s. Review it before use.",
                            provider=provider.name or _("the LLM"),
                        ),
                    }
                )
                notice = (
                    "success",
                    _("Your AI draft for %(lead)s is ready.", lead=draft.lead_id.name),
                )
            elif job.state in ("done", "failed"):
                rejected = job.state == "done"
                if rejected:
                    reason = _(
                        "the AI answer was not usable (%(why)s) and was not shown.",
                        why=(job.error or "").rstrip("."),
                    )
                else:
                    reason = _(
                        "the AI did not answer (%(why)s).",
                        why=(job.error or "").rstrip(".") or _("no answer"),
                    )
                draft._write_template(
                    draft._draft_context(), reason, "rejected" if rejected else "failed"
                )
                notice = (
                    "warning",
                    _(
                        "No AI draft for %(lead)s: %(reason)s A template-based draft is "
                        "ready; “Retry” asks the AI again.",
                        lead=draft.lead_id.name,
                        reason=reason,
                    ),
                )
            else:  # cancelled elsewhere
                draft.write({"state": "cancelled", "generation_note": _("Cancelled.")})
                continue
            messages.append(
                [
                    draft.create_uid.partner_id,
                    "simple_notification",
                    {
                        "type": notice[0],
                        "title": _("Draft with AI"),
                        "message": notice[1],
                        "sticky": notice[0] == "warning",
                    },
                ]
            )
        if messages:
            self.env["bus.bus"].sudo()._sendmany(messages)

    @api.model
    def _draft_for(self, lead, kind, instructions=None, tone="friendly", lang=None, deadline=None):
        """A checked draft for ``lead``, without any UI, in the calling process (for code
        that already runs in the background; the browser uses ``action_generate``).

        :param str kind: one of ``KINDS`` (email, sms, call_script, ...)
        :param float deadline: ``time.monotonic()`` value (default: 45 s from now)
        :return dict: subject, body, is_template (no usable AI answer: built from the
            lead's data), note (why, in the user's language)
        """
        lead.check_access_rights("write")
        lead.check_access_rule("write")
        draft = self.new(
            {"lead_id": lead.id, "kind": kind, "tone": tone, "instructions": instructions}
        )
        if lang:
            draft.lang = lang
        context = draft._draft_context()
        messages, system = draft._draft_messages(context)
        result = {"success": False, "error": draft._drafting_refusal()}
        if not result["error"]:
            result = self.env["llm.service"]._request(
                "drafting",
                messages,
                system_prompt=system,
                record=lead,
                deadline=deadline or time.monotonic() + DRAFT_DEADLINE_SECONDS,
                options=draft._draft_options(),
                validate=lambda text: draft._check_draft(text, [system, messages[0]["content"]]),
            )
        if result["success"] and result.get("parsed"):
            subject, body = draft._split_subject(result["parsed"])
            return {
                "subject": subject or draft._template_subject(),
                "body": body,
                "is_template": False,
                "note": False,
            }
        subject, body = draft.with_context(lang=draft.lang)._template_draft(context)
        reason = result.get("error") or _("The LLM returned an empty answer.")
        return {
            "subject": subject,
            "body": body,
            "is_template": True,
            "note": _("Template-based draft: %(reason)s", reason=reason),
        }
