import logging
import math

from odoo import _, api, fields, models
from odoo.tools import SQL

from ..lib import learning
from .llm_scoring_model import FEATURES_FROM, LOST_SQL, WON_SQL

_logger = logging.getLogger(__name__)

PSI_BINS = 10  # equal-width bins of the win probability: 0-10 %, 10-20 %, ... 90-100 %
PSI_FLOOR = 1e-4  # an empty bin counts as this share (the logarithm of 0 is undefined)
DRIFT_MIN_LEADS = 50  # fewer new (or closed) leads since training: that figure is not computed
DISTRIBUTION_SAMPLE = 20000  # training leads scored for the reference distribution, at most
MAX_ALERTED_MANAGERS = 10


def distribution(probabilities, bins=PSI_BINS):
    """Share of the probabilities in each of ``bins`` equal-width bins of [0, 1]."""
    counts = [0] * bins
    for p in probabilities:
        counts[min(max(int(p * bins), 0), bins - 1)] += 1
    total = len(probabilities) or 1
    return [c / total for c in counts]


def psi(expected, actual):
    """Population stability index: sum of (actual - expected) * ln(actual / expected) over
    the bins, each share floored at PSI_FLOOR."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, PSI_FLOOR), max(a, PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


class LlmScoringModel(models.Model):
    """Drift watch of a published model: after each training and weekly, the distribution
    of the win probability of the leads created since training against the training leads'
    (PSI), and the calibration on the leads closed since training (expected calibration
    error); the company's CRM managers get an activity, once per kind of drift, when one
    passes its threshold (settings)."""

    _name = "llm.scoring.model"
    _inherit = ["llm.scoring.model", "mail.thread", "mail.activity.mixin"]

    training_distribution = fields.Json(
        readonly=True,
        help="Share of the training leads in each 10-point band of win probability.",
    )
    drift_checked_at = fields.Datetime(string="Drift Checked", readonly=True)
    drift_new_count = fields.Integer(string="Leads Created Since Training", readonly=True)
    drift_psi = fields.Float(
        string="Score Drift (PSI)",
        digits=(16, 3),
        readonly=True,
        help="Population stability index of the win probability of the leads created since "
        "training against the training leads' (10 bands of 10 points). Below 0.1: stable; "
        "0.1-0.2: moderate shift; above 0.2: the leads coming in differ. Computed from "
        "50 new leads.",
    )
    drift_closed_count = fields.Integer(string="Leads Closed Since Training", readonly=True)
    drift_calibration_error = fields.Float(
        string="Calibration Error Since Training",
        digits=(16, 3),
        readonly=True,
        help="Expected calibration error of the win probability on the leads closed since "
        "training (10 bands; 0 = the probabilities came true exactly). Computed from 50 "
        "closed leads.",
    )
    drift_alerted = fields.Char(
        readonly=True, help="The kinds of drift the managers were told about (psi, calibration)."
    )

    # ------------------------------------------------------------
    # TRAINING
    # ------------------------------------------------------------

    def _fit_and_store(self, company, team, rows, *args, **kwargs):
        model = super()._fit_and_store(company, team, rows, *args, **kwargs)
        if model.state == "published" and rows:
            step = max(len(rows) // DISTRIBUTION_SAMPLE, 1)
            fit = self._compile(model.model_data)
            model.training_distribution = distribution(
                [self._predict_one(fit, row) for row in rows[::step]]
            )
        return model

    @api.model
    def _train_company(self, company):
        summary = super()._train_company(company)
        self._check_drift(company)
        return summary

    @api.model
    def _predict_one(self, fit, row):
        return learning.predict(fit, learning.encode(row, fit["vocabulary"]))

    # ------------------------------------------------------------
    # DRIFT
    # ------------------------------------------------------------

    @api.model
    def _cron_check_drift(self):
        for company in self.env["res.company"].search([]):
            self._check_drift(company)

    @api.model
    def _check_drift(self, company):
        """Measure the drift of the company's published models and alert once per kind."""
        models_ = self.search([("company_id", "=", company.id)]).filtered("training_distribution")
        settings = self.env["res.company"]._ai_settings("llm_", company)
        for model in models_:
            figures = model._drift_figures()
            model.write(dict(figures, drift_checked_at=fields.Datetime.now()))
            model._drift_alert(
                settings["drift_psi_threshold"], settings["drift_calibration_threshold"]
            )
        return models_

    def _drift_scope(self):
        """SQL condition on ``l`` for the leads this model scores: its team's, or (the
        company's model) those of teams without their own model."""
        self.ensure_one()
        company = SQL("(l.company_id = %s OR l.company_id IS NULL)", self.company_id.id)
        if self.team_id:
            return SQL("%s AND l.team_id = %s", company, self.team_id.id)
        own = self.search([("company_id", "=", self.company_id.id), ("team_id", "!=", False)])
        return SQL(
            "%s AND (l.team_id IS NULL OR l.team_id != ALL(%s))", company, own.team_id.ids or [0]
        )

    def _drift_figures(self):
        """PSI of the leads created since training and ECE of those closed since; 0 with a
        count below DRIFT_MIN_LEADS (the counts say so)."""
        self.ensure_one()
        self.env["crm.lead"].flush_model()
        self.env["crm.stage"].flush_model(["is_won"])
        Service = self.env["llm.scoring.model"]
        self.env.cr.execute(
            SQL(
                """SELECT %s, l.create_date > %s,
                          CASE WHEN l.date_closed >= %s AND (%s) THEN 1
                               WHEN l.date_closed >= %s AND (%s) THEN 0 END
                     FROM %s
                    WHERE %s AND (l.create_date > %s OR l.date_closed >= %s)""",
                Service._feature_columns(),
                self.trained_at,
                self.trained_at,
                WON_SQL,
                self.trained_at,
                LOST_SQL,
                FEATURES_FROM,
                self._drift_scope(),
                self.trained_at,
                self.trained_at,
            )
        )
        fit = self._compile(self.model_data)
        new, closed_p, closed_y = [], [], []
        for *record, is_new, outcome in self.env.cr.fetchall():
            p = self._predict_one(fit, Service._row_from_record(record))
            if is_new:
                new.append(p)
            if outcome is not None:
                closed_p.append(p)
                closed_y.append(outcome)
        figures = {"drift_new_count": len(new), "drift_closed_count": len(closed_y)}
        figures["drift_psi"] = (
            psi(self.training_distribution, distribution(new))
            if len(new) >= DRIFT_MIN_LEADS
            else 0.0
        )
        figures["drift_calibration_error"] = (
            learning.calibration_table(closed_p, closed_y)[1]
            if len(closed_y) >= DRIFT_MIN_LEADS
            else 0.0
        )
        return figures

    def _drift_alert(self, psi_threshold, calibration_threshold):
        """One activity per manager when a kind of drift passes its threshold (0: not
        watched) for the first time on this model."""
        self.ensure_one()
        passed = []
        if psi_threshold and self.drift_psi > psi_threshold:
            passed.append("psi")
        if calibration_threshold and self.drift_calibration_error > calibration_threshold:
            passed.append("calibration")
        alerted = set((self.drift_alerted or "").split(","))
        if not set(passed) - alerted:
            return False
        self.drift_alerted = ",".join(sorted((alerted | set(passed)) - {""}))
        managers = (
            self.env.ref("sales_team.group_sale_manager")
            .sudo()
            .users.filtered(lambda u: not u.share and self.company_id in u.company_ids)
        )
        summary = _("Win probability model %(name)s drifts", name=self.name)
        note = _(
            "Leads created since training: %(new)s, score drift (PSI) %(psi).3f (threshold "
            "%(psi_max)s). Leads closed since training: %(closed)s, calibration error "
            "%(ece).3f (threshold %(ece_max)s). Retrain the model (Train Now in the CRM "
            "settings) or check what changed in the leads coming in.",
            new=self.drift_new_count,
            psi=self.drift_psi,
            psi_max=psi_threshold or _("off"),
            closed=self.drift_closed_count,
            ece=self.drift_calibration_error,
            ece_max=calibration_threshold or _("off"),
        )
        for user in managers[:MAX_ALERTED_MANAGERS]:
            self.activity_schedule(
                "mail.mail_activity_data_warning", summary=summary, note=note, user_id=user.id
            )
        _logger.info("Scoring model %s drifts (%s): managers told", self.name, ", ".join(passed))
        return True
