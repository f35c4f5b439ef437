import logging
import threading
from datetime import datetime

import pytz

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

_logger = logging.getLogger(__name__)

PERIODS = [("weekly", "Weekly"), ("monthly", "Monthly")]
# subscribers handled per cron run (the cron triggers itself again when more are due)
DIGEST_BATCH = 50
DIGEST_REPORT = "crm_executive_dashboard.report_crm_dashboard_digest"


class CrmDashboardDigestSubscription(models.Model):
    _name = "crm.dashboard.digest.subscription"
    _description = "CRM Dashboard Digest Subscription"
    _order = "user_id, period"
    _check_company_auto = True

    user_id = fields.Many2one(
        "res.users",
        string="Subscriber",
        required=True,
        index=True,
        ondelete="cascade",
        default=lambda self: self.env.user,
        domain="[('share', '=', False)]",
    )
    period = fields.Selection(PERIODS, required=True, default="weekly")
    team_ids = fields.Many2many(
        "crm.team",
        string="Sales Teams",
        check_company=True,
        help="Only the leads of these teams (all the teams the subscriber may see if empty).",
    )
    company_id = fields.Many2one(
        "res.company",
        string="Company",
        required=True,
        default=lambda self: self.env.company,
        help="The company whose currency the digest uses; the subscriber's other companies "
        "are counted too, with the subscriber's own rights.",
    )
    active = fields.Boolean(default=True)
    log_ids = fields.One2many("crm.dashboard.digest.log", "subscription_id", string="Sent")
    last_sent = fields.Datetime(compute="_compute_last_sent")

    _sql_constraints = [
        (
            "user_period_company_uniq",
            "unique(user_id, period, company_id)",
            "This user already has a digest of this frequency for this company.",
        )
    ]

    @api.depends("log_ids.create_date", "log_ids.state")
    def _compute_last_sent(self):
        for subscription in self:
            sent = subscription.log_ids.filtered(lambda log: log.state == "sent")
            subscription.last_sent = max(sent.mapped("create_date"), default=False)

    @api.constrains("user_id", "company_id")
    def _check_user_company(self):
        for subscription in self:
            if subscription.company_id not in subscription.user_id.company_ids:
                raise ValidationError(
                    _(
                        "%(user)s has no access to %(company)s.",
                        user=subscription.user_id.name,
                        company=subscription.company_id.name,
                    )
                )
            if not subscription.user_id.has_group("sales_team.group_sale_salesman"):
                raise ValidationError(
                    _("%(user)s has no access to the CRM.", user=subscription.user_id.name)
                )

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    def write(self, vals):
        # record rules check the records before a write, not after: a salesperson must not
        # hand his subscription over to someone else (managers may)
        if (
            vals.get("user_id")
            and vals["user_id"] != self.env.uid
            and not (self.env.su or self.env.user.has_group("sales_team.group_sale_manager"))
        ):
            raise AccessError(_("Only sales managers may subscribe other users."))
        return super().write(vals)

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    @api.model
    def action_send_sample(self):
        """ "Send me a sample now" of the dashboard: the current user's digest of the last
        complete period (his subscription's frequency and teams, else the last month) is
        queued for the digest cron, which renders and mails it within minutes (rendering the
        PDF takes seconds to tens of seconds: not in the click's request). A second click
        while it waits queues nothing more. Not counted as the period's digest."""
        if not self.env.user.has_group("sales_team.group_sale_salesman"):
            raise AccessError(_("Only CRM users receive the dashboard digest."))
        subscription = self.search(
            [("user_id", "=", self.env.uid), ("company_id", "=", self.env.company.id)], limit=1
        )
        period = subscription.period or "monthly"
        today = self._user_today(self.env.user)
        start, end = self.env["crm.dashboard.digest"]._digest_period(period, today)
        Log = self.env["crm.dashboard.digest.log"].sudo()
        values = {
            "user_id": self.env.uid,
            "company_id": self.env.company.id,
            "period": period,
            "date_from": start,
            "date_to": end,
            "is_sample": True,
        }
        if not Log.search_count(
            [(key, "=", value) for key, value in values.items()] + [("state", "=", "pending")]
        ):
            Log.create(values)
            self.env.ref("crm_executive_dashboard.ir_cron_crm_dashboard_digest")._trigger()
        return {
            "message": _(
                "Your digest of %(start)s to %(end)s is being prepared: it will be mailed to "
                "%(email)s in a few minutes.",
                start=start,
                end=end,
                email=self.env.user.email or self.env.user.name,
            )
        }

    # ------------------------------------------------------------
    # CRON
    # ------------------------------------------------------------

    @api.model
    def _user_today(self, user):
        tz = pytz.timezone(user.tz or "UTC")
        return pytz.utc.localize(datetime.utcnow()).astimezone(tz).date()

    @api.model
    def _cron_send_digests(self, batch_size=DIGEST_BATCH):
        """Mail the samples asked for from the dashboard (pending sample logs), then each
        active subscription its digest of the last complete period, once.

        The log row of (subscription, period) is inserted before the digest is rendered, and
        committed with its mail: a second run, or a run after a crash, skips the subscribers
        already served (a unique constraint backs it up when two runs overlap). A failure is
        logged on the row and retried by the next run of the same period.
        """
        Log = self.env["crm.dashboard.digest.log"].sudo()
        # tests run in one transaction (TransactionCase or HttpCase): never commit there
        auto_commit = not (
            self.env.registry.in_test_mode()
            or getattr(threading.current_thread(), "testing", False)
        )
        # the samples asked for from the dashboard first (someone is waiting for them)
        samples = Log.search([("is_sample", "=", True), ("state", "=", "pending")])
        # the teams of the subscription whose frequency the click took, if any
        teams = {
            (s.user_id, s.company_id, s.period): s.team_ids.ids
            for s in self.sudo().search([("user_id", "in", samples.user_id.ids)])
        }
        for log in samples[:batch_size]:
            key = (log.user_id, log.company_id, log.period)
            log._render_and_mail(log.user_id, log.company_id, teams.get(key, []))
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        if len(samples) > batch_size:
            self.env.ref("crm_executive_dashboard.ir_cron_crm_dashboard_digest")._trigger()
            return batch_size
        batch_size -= len(samples)
        due = []
        for subscription in self.sudo().search([]):
            start, end = self.env["crm.dashboard.digest"]._digest_period(
                subscription.period, self._user_today(subscription.user_id)
            )
            due.append((subscription, start, end))
        done = Log.search(
            [
                ("subscription_id", "in", [s.id for s, _start, _end in due]),
                ("state", "=", "sent"),
            ]
        )
        sent = {(log.subscription_id.id, log.date_from) for log in done}
        todo = [(s, start, end) for s, start, end in due if (s.id, start) not in sent]
        for subscription, start, end in todo[:batch_size]:
            subscription._send_digest(start, end)
            # each subscriber's digest is committed with its log row: a crash later in the
            # batch neither loses nor repeats it
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        if len(todo) > batch_size:
            self.env.ref("crm_executive_dashboard.ir_cron_crm_dashboard_digest")._trigger()
        return len(samples) + len(todo[:batch_size])

    def _send_digest(self, start, end):
        self.ensure_one()
        Log = self.env["crm.dashboard.digest.log"].sudo()
        log = Log.search([("subscription_id", "=", self.id), ("date_from", "=", start)], limit=1)
        if log.state == "sent":
            return log
        if not log:
            # unique (subscription, period): a run overlapping this one fails to commit here
            log = Log.create(
                {
                    "subscription_id": self.id,
                    "user_id": self.user_id.id,
                    "company_id": self.company_id.id,
                    "period": self.period,
                    "date_from": start,
                    "date_to": end,
                }
            )
        log._render_and_mail(self.user_id, self.company_id, self.team_ids.ids)
        return log


class CrmDashboardDigestLog(models.Model):
    _name = "crm.dashboard.digest.log"
    _description = "CRM Dashboard Digest Sent"
    _order = "create_date desc, id desc"

    subscription_id = fields.Many2one(
        "crm.dashboard.digest.subscription", ondelete="set null", index="btree_not_null"
    )
    user_id = fields.Many2one(
        "res.users", string="Subscriber", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one("res.company", required=True, ondelete="cascade")
    period = fields.Selection(PERIODS, required=True)
    date_from = fields.Date(string="From", required=True)
    date_to = fields.Date(string="To", required=True)
    is_sample = fields.Boolean(string="Sample", help="Sent from the dashboard on request.")
    state = fields.Selection(
        [("pending", "Pending"), ("sent", "Sent"), ("failed", "Failed")],
        default="pending",
        required=True,
    )
    error = fields.Text(readonly=True)
    commentary_source = fields.Selection([("llm", "LLM"), ("rules", "Rules")], readonly=True)
    commentary = fields.Text(readonly=True)
    mail_id = fields.Many2one("mail.mail", ondelete="set null", readonly=True)
    attachment_id = fields.Many2one("ir.attachment", ondelete="set null", readonly=True)

    _sql_constraints = [
        (
            "subscription_period_uniq",
            "unique(subscription_id, date_from)",
            "A digest is sent once per subscription and period.",
        )
    ]

    def _subscriber_env(self, user, company):
        """The subscriber's own rights and companies (the cron runs as the superuser)."""
        companies = company | (user.company_ids - company)
        context = dict(
            self.env.context,
            allowed_company_ids=companies.ids,
            tz=user.tz or "UTC",
            lang=user.lang,
        )
        return self.env(user=user.id, su=False, context=context)

    def _render_and_mail(self, user, company, team_ids):
        """Render the digest as ``user`` and mail it to him; the outcome is written on the log.
        A salesperson who may not see all leads gets the figures of his own leads."""
        self.ensure_one()
        env = self._subscriber_env(user, company)
        user_ids = None
        if not user.has_group("sales_team.group_sale_salesman_all_leads"):
            user_ids = [user.id]
        try:
            with self.env.cr.savepoint():
                values = env["crm.dashboard.digest"]._digest_values(
                    self.date_from, self.date_to, team_ids, user_ids
                )
                report = env.ref("crm_executive_dashboard.action_report_crm_dashboard_digest")
                content, kind = (
                    env["ir.actions.report"]
                    .with_context(report_pdf_no_attachment=True)
                    ._render_qweb_pdf(report, res_ids=self.ids, data={"digest": values})
                )
        except (AccessError, UserError, ValidationError) as error:
            self.write({"state": "failed", "error": str(error)})
            _logger.warning("Digest %s for %s not sent: %s", self.id, user.login, error)
            return False
        if isinstance(content, str):
            content = content.encode()  # tests render HTML (see ir.actions.report)
        name = "%s %s.%s" % (_("CRM digest"), self.date_from, kind)
        attachment = (
            self.env["ir.attachment"]
            .sudo()
            .create(
                {
                    "name": name,
                    "raw": content,
                    "res_model": self._name,
                    "res_id": self.id,
                    "mimetype": "application/pdf" if kind == "pdf" else "text/html",
                }
            )
        )
        body = self.env["ir.qweb"]._render(
            "crm_executive_dashboard.crm_dashboard_digest_mail_body",
            {"digest": values, "user": user},
        )
        mail = (
            self.env["mail.mail"]
            .sudo()
            .create(
                {
                    "subject": _(
                        "CRM digest, %(start)s to %(end)s",
                        start=self.date_from,
                        end=self.date_to,
                    ),
                    "body_html": body,
                    "email_from": company.email_formatted or self.env.user.email_formatted,
                    "recipient_ids": [(4, user.partner_id.id)],
                    "attachment_ids": [(4, attachment.id)],
                    "auto_delete": False,
                }
            )
        )
        self.write(
            {
                "state": "sent",
                "error": False,
                "mail_id": mail.id,
                "attachment_id": attachment.id,
                "commentary": values["commentary"],
                "commentary_source": values["commentary_source"],
            }
        )
        return True


class IrActionsReport(models.Model):
    _inherit = "ir.actions.report"

    @api.model
    def _run_wkhtmltopdf(self, bodies, report_ref=False, header=None, footer=None, **kwargs):
        """The digest has no header nor footer: none is passed to wkhtmltopdf, so that builds
        without Odoo's patched Qt (Debian's, Ubuntu's) print it without a warning."""
        if report_ref and self._get_report(report_ref).report_name == DIGEST_REPORT:
            header = footer = None
        return super()._run_wkhtmltopdf(
            bodies, report_ref=report_ref, header=header, footer=footer, **kwargs
        )
