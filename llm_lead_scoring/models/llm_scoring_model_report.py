import logging

from markupsafe import Markup

from odoo import _, api, models

from .llm_scoring_model import (
    MIN_CLOSED,
    MIN_LOST,
    MIN_WON,
    REFERENCE_LOST,
    REFERENCE_WON,
    _percent,
)

_logger = logging.getLogger(__name__)


class LlmScoringModel(models.Model):
    """The model report a manager reads."""

    _inherit = "llm.scoring.model"

    # ------------------------------------------------------------
    # REPORT
    # ------------------------------------------------------------

    @api.depends("calibration_table", "auc", "state")
    def _compute_report_html(self):
        for model in self:
            model.report_html = model._report_html()

    def _report_html(self):
        """What a manager reads: the figures side by side on the same held-out leads, the
        calibration table and chart, the split used and the data sufficiency."""
        self.ensure_one()
        rows = [
            (_("Learned model"), self.auc, self.brier, self.log_loss, self.calibration_error),
            (
                _("Odoo PLS (same training leads)"),
                self.pls_auc,
                self.pls_brier,
                self.pls_log_loss,
                self.pls_calibration_error,
            ),
            (
                _("Constant base rate (%(rate)s won)", rate=_percent(self.base_rate)),
                0.5,
                self.base_rate_brier,
                self.base_rate_log_loss or None,
                None,
            ),
            (
                _("Lead quality score, rules + LLM (read as a probability)"),
                self.rules_auc,
                self.rules_brier,
                self.rules_log_loss,
                self.rules_calibration_error,
            ),
        ]
        cells = Markup("").join(
            Markup("<tr><td>%s</td>%s</tr>")
            % (
                label,
                Markup("").join(
                    Markup("<td class='text-end'>%s</td>") % ("" if v is None else "%.3f" % v)
                    for v in values
                ),
            )
            for label, *values in rows
        )
        pls_bins = {b["bin"]: b for b in self.pls_calibration_table or []}
        bins = Markup("").join(
            Markup(
                "<tr><td>%s</td><td class='text-end'>%s</td><td class='text-end'>%s</td>"
                "<td class='text-end'>%s</td><td class='text-end'>%s</td></tr>"
            )
            % (
                b["bin"],
                b["count"],
                _percent(b["predicted"]),
                _percent(b["observed"]),
                _percent((pls_bins.get(b["bin"]) or {}).get("observed")),
            )
            for b in self.calibration_table or []
        )
        if self.state == "rejected":
            verdict = Markup("<p class='alert alert-warning'>%s</p>") % _(
                "Not published: %(reason)s The previous model (or Odoo's PLS) is still used.",
                reason=self.rejection_reason or "",
            )
        else:
            verdict = Markup("")
        if self.split_method == "stratified":
            split = _(
                "Held out: a stratified sample of %(n)s closed leads, because %(reason)s.",
                n=self.test_count,
                reason=self.split_reason or "",
            )
        else:
            split = _(
                "Held out: the %(n)s most recently created closed leads, which the model did "
                "not learn from.",
                n=self.test_count,
            )
        if self.refitted:
            split += " " + _(
                "Once accepted, the same recipe was refitted on all %(n)s closed leads.",
                n=self.leads_used,
            )
        sufficiency = _(
            "Data: %(won)s won and %(lost)s lost leads (minimum %(min)s closed with %(minw)s "
            "won and %(minl)s lost; Dynamics 365 asks for %(rw)s won and %(rl)s lost). "
            "Calibration: %(method)s on out-of-fold scores of the %(n)s training leads.",
            won=self.won_count,
            lost=self.lost_count,
            min=MIN_CLOSED,
            minw=MIN_WON,
            minl=MIN_LOST,
            rw=REFERENCE_WON,
            rl=REFERENCE_LOST,
            method=dict(self._fields["calibration_method"].selection).get(
                self.calibration_method, "-"
            ),
            n=self.leads_used,
        )
        return Markup(
            "%s<p>%s %s</p><table class='table table-sm'><thead><tr><th>%s</th><th>AUC</th>"
            "<th>Brier</th><th>Log-loss</th><th>%s</th></tr></thead><tbody>%s</tbody></table>"
            "<p>%s</p><p>%s</p><div class='d-flex flex-wrap gap-4'><table class='table "
            "table-sm w-auto'><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
            "<th>%s</th></tr></thead><tbody>%s</tbody></table>%s</div>"
        ) % (
            verdict,
            split,
            _(
                "Lower Brier, log-loss and calibration error are better; higher AUC ranks "
                "better (0.5 = chance)."
            ),
            _("Method"),
            _("Calibration error"),
            cells,
            sufficiency,
            _("Calibration: predicted probability versus the share actually won."),
            _("Predicted"),
            _("Leads"),
            _("Mean predicted"),
            _("Observed won"),
            _("Observed won (PLS bin)"),
            bins,
            self._reliability_svg(),
        )

    def _reliability_svg(self):
        """Reliability chart: observed won share against mean predicted probability per bin,
        learned model (filled) and Odoo PLS (hollow); the diagonal is perfect calibration."""
        size, pad = 220, 20
        scale = size - 2 * pad

        def point(b, hollow):
            if b["predicted"] is None:
                return Markup("")
            x = pad + scale * b["predicted"]
            y = size - pad - scale * b["observed"]
            radius = 3 + min(b["count"], 400) ** 0.5 / 4
            return Markup("<circle cx='%.1f' cy='%.1f' r='%.1f' fill='%s' stroke='#017e84'/>") % (
                x,
                y,
                radius,
                "none" if hollow else "#017e84",
            )

        points = Markup("").join(point(b, False) for b in self.calibration_table or [])
        points += Markup("").join(point(b, True) for b in self.pls_calibration_table or [])
        return Markup(
            "<svg width='%s' height='%s' role='img' aria-label='%s'>"
            "<rect x='%s' y='%s' width='%s' height='%s' fill='none' stroke='#ccc'/>"
            "<line x1='%s' y1='%s' x2='%s' y2='%s' stroke='#999' stroke-dasharray='4'/>"
            "%s<text x='%s' y='%s' font-size='10'>%s</text></svg>"
        ) % (
            size,
            size,
            _("Reliability chart"),
            pad,
            pad,
            scale,
            scale,
            pad,
            size - pad,
            size - pad,
            pad,
            points,
            pad,
            size - 5,
            _("predicted → observed ↑ (hollow: PLS)"),
        )
