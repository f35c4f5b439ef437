import logging
import time

from odoo import _, api, fields, models
from odoo.tools import SQL

from ..lib import learning

_logger = logging.getLogger(__name__)

MIN_CLOSED = 200
MIN_WON = 20
MIN_LOST = 20
RESCORE_BATCH = 5000
TOP_FACTORS = 3  # kept per lead, on each side; the others are summed in one entry
# publishing guardrail, on the candidate's held-out leads: its Brier score below the base
# rate's and Odoo PLS's, its AUC at most this far below PLS's
GUARDRAIL_AUC_MARGIN = 0.01
# once measured and accepted, a model of a history up to this size is refitted on all its
# closed leads (the held-out ones too: 25 % more to learn from); larger ones gain little
REFIT_MAX = 50000
REFERENCE_WON = REFERENCE_LOST = 40  # Dynamics 365's minimum, shown for reference
# one definition of the outcome (crm_lead l, crm_stage s): won = active and in a won stage,
# as Odoo's own; lost = archived with probability 0, as action_set_lost leaves it
WON_SQL = SQL("l.active AND s.is_won IS TRUE")
LOST_SQL = SQL("NOT l.active AND l.probability = 0")
OPEN_SQL = SQL("l.active AND s.is_won IS NOT TRUE")
REVENUE_BANDS = (
    (0, "none"),
    (1000, "< 1k"),
    (5000, "1k-5k"),
    (20000, "5k-20k"),
    (100000, "20k-100k"),
)


def revenue_band(amount):
    if not amount:
        return "none"
    for limit, label in REVENUE_BANDS[1:]:
        if amount < limit:
            return label
    return ">= 100k"


def _percent(value):
    return "" if value is None else "%.1f%%" % (100 * value)


def score_band(score):
    if score is None:
        return None
    low = min(int(score // 20) * 20, 80)
    return "%s-%s" % (low, low + 20)


def _yes_no(value):
    return "yes" if value else "no"


# The features of the win probability: one row each, (name, label, SQL expression over the
# lead ``l`` and its customer ``p``, function turning the column's value into a category or
# None for "as is"). They are real columns known while the lead is open: never the stage,
# probability, active, close date, lost reason, activities or anything else set when a lead
# is won or lost (test_learned_model.py checks that closing a lead changes none of them).
# To add one (e.g. a qualification column), append a row; the next training learns it.
FEATURES = (
    ("team", "Team", "l.team_id", None),
    ("source", "Source", "l.source_id", None),
    ("medium", "Medium", "l.medium_id", None),
    ("campaign", "Campaign", "l.campaign_id", None),
    ("country", "Country", "l.country_id", None),
    ("lang", "Language", "l.lang_id", None),
    ("email", "Email", "l.email_state", None),
    ("phone", "Phone", "l.phone_state", None),
    ("revenue", "Expected revenue", "l.expected_revenue", revenue_band),
    ("partner", "Customer", "l.partner_id IS NOT NULL", _yes_no),
    ("industry", "Industry", "p.industry_id", None),
    (
        "tag",
        "Tag",
        "ARRAY(SELECT r.tag_id FROM crm_tag_rel r WHERE r.lead_id = l.id ORDER BY r.tag_id)",
        list,
    ),
    (
        "completeness",
        "Completeness",
        "CASE WHEN l.ai_enrichment_status IS NOT NULL THEN l.ai_completeness_score END",
        score_band,
    ),
    (
        "clarity",
        "Clarity",
        "CASE WHEN l.ai_enrichment_status IS NOT NULL THEN l.ai_clarity_score END",
        score_band,
    ),
    # the BANT scorecard (crm_lead_qualification.py): unknown / partly / confirmed
    ("bant_budget", "Budget (BANT)", "l.ai_bant_budget", None),
    ("bant_authority", "Authority (BANT)", "l.ai_bant_authority", None),
    ("bant_need", "Need (BANT)", "l.ai_bant_need", None),
    ("bant_timeline", "Timeline (BANT)", "l.ai_bant_timeline", None),
)
FEATURE_LABELS = {name: label for name, label, _expr, _convert in FEATURES}
# the tables FEATURES' expressions read
FEATURES_FROM = SQL(
    """crm_lead l
     LEFT JOIN res_partner p ON p.id = l.partner_id
     LEFT JOIN crm_stage s ON s.id = l.stage_id"""
)


class LlmScoringModel(models.Model):
    _name = "llm.scoring.model"
    _description = "Lead Win Probability Model"
    _order = "company_id, team_id, version desc"

    name = fields.Char(compute="_compute_name")
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    team_id = fields.Many2one(
        "crm.team",
        string="Sales Team",
        index=True,
        help="Empty: the company's model, used for teams without one.",
    )
    active = fields.Boolean(
        default=True, help="The published model; replaced and rejected models are archived."
    )
    state = fields.Selection(
        [("published", "Published"), ("replaced", "Replaced"), ("rejected", "Rejected")],
        default="published",
        required=True,
        readonly=True,
    )
    rejection_reason = fields.Char(
        readonly=True, help="Why the guardrail kept the previous model (or Odoo's PLS)."
    )
    version = fields.Integer(required=True, default=1)
    trained_at = fields.Datetime(required=True, default=fields.Datetime.now)
    training_seconds = fields.Float(digits=(16, 2))
    leads_used = fields.Integer(
        help="Closed leads the model learned from (and was calibrated on, by cross-validation)."
    )
    calibration_count = fields.Integer(help="Closed leads whose out-of-fold scores calibrated it.")
    test_count = fields.Integer(help="Closed leads held out to measure the model.")
    split_method = fields.Selection(
        [("time", "Most recent leads held out"), ("stratified", "Stratified sample held out")],
        readonly=True,
    )
    split_reason = fields.Char(
        readonly=True, help="Why the time order could not be used to hold out leads."
    )
    calibration_method = fields.Selection(
        [("platt", "Platt scaling"), ("isotonic", "Isotonic regression")],
        readonly=True,
        help="Chosen by the lower cross-validated log-loss.",
    )
    regularization = fields.Float(digits=(16, 2), help="L2 strength chosen by cross-validation.")
    refitted = fields.Boolean(
        string="Refitted on All Closed Leads",
        readonly=True,
        help="Once measured on the held-out leads and accepted, the same recipe was refitted on "
        "all the closed leads, held-out ones included.",
    )
    won_count = fields.Integer(
        help="Won closed leads (active, in a won stage). At least 20 won and 20 lost among 200 "
        "closed leads are needed to train; Dynamics 365 asks for 40 won and 40 lost, shown for "
        "reference."
    )
    lost_count = fields.Integer(
        help="Lost closed leads (archived at probability 0, as 'Mark as lost' leaves them)."
    )
    base_rate = fields.Float(digits=(16, 4), help="Share of won leads among the closed leads.")
    auc = fields.Float(string="AUC", digits=(16, 4))
    brier = fields.Float(digits=(16, 4))
    log_loss = fields.Float(digits=(16, 4))
    calibration_error = fields.Float(
        digits=(16, 4), help="Expected calibration error over 10 bins (0 = perfect)."
    )
    # the lead quality score (rules + LLM composite, 0-100) read as a probability
    rules_auc = fields.Float(string="Quality Score AUC", digits=(16, 4))
    rules_brier = fields.Float(string="Quality Score Brier", digits=(16, 4))
    rules_log_loss = fields.Float(string="Quality Score Log-loss", digits=(16, 4))
    rules_calibration_error = fields.Float(string="Quality Score Calibration Error", digits=(16, 4))
    pls_auc = fields.Float(string="Odoo PLS AUC", digits=(16, 4))
    pls_brier = fields.Float(string="Odoo PLS Brier", digits=(16, 4))
    pls_log_loss = fields.Float(string="Odoo PLS Log-loss", digits=(16, 4))
    pls_calibration_error = fields.Float(string="Odoo PLS Calibration Error", digits=(16, 4))
    base_rate_brier = fields.Float(
        digits=(16, 4), help="Brier score of always saying the base rate."
    )
    base_rate_log_loss = fields.Float(
        digits=(16, 4), help="Log-loss of always saying the base rate."
    )
    calibration_table = fields.Json(readonly=True)
    pls_calibration_table = fields.Json(readonly=True)
    model_data = fields.Json(readonly=True)
    report_html = fields.Html(compute="_compute_report_html", sanitize=False)

    @api.depends("team_id", "company_id", "version")
    def _compute_name(self):
        for model in self:
            model.name = "%s v%s" % (model.team_id.name or model.company_id.name, model.version)

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    @api.model
    def action_train_now(self):
        """Train the current company's models now and rescore its open leads."""
        self.check_access_rights("create")
        summary = self.sudo()._train_company(self.env.company)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success" if summary["trained"] else "warning",
                "title": _("Scoring model"),
                "message": summary["message"],
                "sticky": True,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    @api.model
    def _cron_train_models(self):
        for company in self.env["res.company"].search([]):
            self._train_company(company)

    @api.model
    def _status_message(self, company=None):
        """What a manager reads in the settings about the learned model."""
        company = company or self.env.company
        domain = [("company_id", "=", company.id), ("team_id", "=", False)]
        model = self.search(domain, limit=1)
        last = self.with_context(active_test=False).search(
            domain, order="trained_at desc, id desc", limit=1
        )
        rejected = ""
        if last and last.state == "rejected":
            rejected = " " + _(
                "The training of %(date)s was not published: %(reason)s",
                date=fields.Datetime.to_string(last.trained_at),
                reason=last.rejection_reason,
            )
        if model:
            return (
                _(
                    "Learned model v%(v)s, trained %(date)s on %(n)s closed leads: AUC "
                    "%(auc).2f, Brier %(brier).3f (Odoo PLS %(pls).3f).",
                    v=model.version,
                    date=fields.Datetime.to_string(model.trained_at),
                    n=model.leads_used,
                    auc=model.auc,
                    brier=model.brier,
                    pls=model.pls_brier,
                )
                + rejected
            )
        if rejected:
            return _("No learned model is published: the win probability is Odoo's PLS.") + rejected
        won, lost = self._closed_counts(company)
        return _(
            "Not enough closed leads to learn yet (%(won)s won, %(lost)s lost; %(min)s closed "
            "with %(minw)s won and %(minl)s lost are needed): the win probability is Odoo's "
            "PLS.",
            won=won,
            lost=lost,
            min=MIN_CLOSED,
            minw=MIN_WON,
            minl=MIN_LOST,
        )

    @api.model
    def _closed_counts(self, company):
        """(won, lost) leads of the company; won = active and in a won stage (Odoo's own
        definition), lost = archived with probability 0 (action_set_lost)."""
        self.env["crm.lead"].flush_model()
        self.env["crm.stage"].flush_model(["is_won"])
        self.env.cr.execute(
            SQL(
                """SELECT count(*) FILTER (WHERE %s), count(*) FILTER (WHERE %s)
                     FROM crm_lead l LEFT JOIN crm_stage s ON s.id = l.stage_id
                    WHERE l.company_id = %s OR l.company_id IS NULL""",
                WON_SQL,
                LOST_SQL,
                company.id,
            )
        )
        return self.env.cr.fetchone()

    @api.model
    def _enough(self, y):
        won = sum(y)
        return len(y) >= MIN_CLOSED and won >= MIN_WON and len(y) - won >= MIN_LOST

    @api.model
    def _train_company(self, company):
        """Train the company model and one per team with enough closed leads; publish those
        that pass the guardrail, then rescore."""
        started = time.monotonic()
        data = self._closed_lead_rows(company)
        rows, y, keys, rules = data["rows"], data["y"], data["keys"], data["rules"]
        if not self._enough(y):
            return {"trained": self.browse(), "message": self._status_message(company)}
        trained = self._fit_and_store(company, self.env["crm.team"], rows, y, keys, rules)
        for team in self.env["crm.team"].search([("company_id", "in", [company.id, False])]):
            idx = [i for i, row in enumerate(rows) if row["team"] == team.id]
            sub_y = [y[i] for i in idx]
            if self._enough(sub_y):
                trained |= self._fit_and_store(
                    company,
                    team,
                    [rows[i] for i in idx],
                    sub_y,
                    [keys[i] for i in idx],
                    [rules[i] for i in idx],
                )
        published = trained.filtered(lambda m: m.state == "published")
        rescored = self._rescore_open_leads(company) if published else 0
        _logger.info(
            "Scoring models of %s trained on %s closed leads (%s published, %s rejected), "
            "%s open leads rescored in %.1f s",
            company.name,
            len(y),
            len(published),
            len(trained) - len(published),
            rescored,
            time.monotonic() - started,
        )
        return {
            "trained": published,
            "rejected": trained - published,
            "message": _(
                "%(models)s model(s) published, %(rejected)s kept back by the guardrail, from "
                "%(n)s closed leads; %(open)s open leads rescored. %(s)s",
                models=len(published),
                rejected=len(trained) - len(published),
                n=len(y),
                open=rescored,
                s=self._status_message(company),
            ),
        }

    @api.model
    def _guardrail(self, ev, ev_pls, base_rate_brier):
        """Why a candidate must not be published (False when it may): on its held-out leads
        its Brier score must be below the base rate's and Odoo PLS's, and its AUC at most
        GUARDRAIL_AUC_MARGIN below PLS's."""
        reasons = []
        if ev["brier"] >= base_rate_brier:
            reasons.append(
                _(
                    "its Brier score %(b).4f is not below the base rate's %(r).4f",
                    b=ev["brier"],
                    r=base_rate_brier,
                )
            )
        if ev["brier"] >= ev_pls["brier"]:
            reasons.append(
                _(
                    "its Brier score %(b).4f is not below Odoo PLS's %(p).4f",
                    b=ev["brier"],
                    p=ev_pls["brier"],
                )
            )
        auc, pls_auc = ev["auc"] or 0.5, ev_pls["auc"] or 0.5
        if auc < pls_auc - GUARDRAIL_AUC_MARGIN:
            reasons.append(_("its AUC %(a).3f is below Odoo PLS's %(p).3f", a=auc, p=pls_auc))
        return "; ".join(reasons) + "." if reasons else False

    def _fit_and_store(self, company, team, rows, y, keys, rules):
        """Train a candidate, measure it on its held-out leads next to PLS, the base rate and
        the quality score, and publish it only if it passes the guardrail (else it is kept
        archived as 'rejected', with the reason, and the previous model stays)."""
        started = time.monotonic()
        fit = learning.train(rows, y, keys)
        test = fit["test"]
        y_test = [y[i] for i in test]
        learned = [learning.predict(fit, fit["X"][i]) for i in test]
        train_rows = [rows[i] for i in fit["train"]]
        y_train = [y[i] for i in fit["train"]]
        pls = learning.naive_bayes_pls(
            train_rows, y_train, [rows[i] for i in test], self._pls_features()
        )
        base_rate = sum(y_train) / len(y_train)
        ev = learning.evaluate(learned, y_test)
        ev_rules = learning.evaluate([rules[i] / 100.0 for i in test], y_test)
        ev_pls = learning.evaluate(pls, y_test)
        ev_base = learning.evaluate([base_rate] * len(y_test), y_test)
        base_rate_brier = ev_base["brier"]
        rejection = self._guardrail(ev, ev_pls, base_rate_brier)
        names = sorted(fit["vocabulary"], key=fit["vocabulary"].get)
        domain = [("company_id", "=", company.id), ("team_id", "=", team.id or False)]
        previous = self.with_context(active_test=False).search(
            domain, order="version desc", limit=1
        )
        if rejection:
            _logger.info(
                "Scoring model of %s not published: %s",
                team.name or company.name,
                rejection,
            )
        else:
            self.search(domain).write({"active": False, "state": "replaced"})
        published = fit
        if not rejection and len(y) <= REFIT_MAX:
            published = learning.refit(rows, y, fit)
            names = sorted(published["vocabulary"], key=published["vocabulary"].get)
        used = len(published["X"]) if published is not fit else len(fit["train"])
        return self.create(
            {
                "company_id": company.id,
                "team_id": team.id or False,
                "version": previous.version + 1,
                "active": not rejection,
                "state": "rejected" if rejection else "published",
                "rejection_reason": rejection,
                "training_seconds": time.monotonic() - started,
                "leads_used": used,
                "calibration_count": used,
                "refitted": published is not fit,
                "test_count": len(test),
                "split_method": fit["split"],
                "split_reason": fit["split_reason"],
                "calibration_method": published["calibrator"]["method"],
                "regularization": fit["alpha"],
                "won_count": sum(y),
                "lost_count": len(y) - sum(y),
                "base_rate": base_rate,
                "auc": ev["auc"] or 0.0,
                "brier": ev["brier"],
                "log_loss": ev["log_loss"],
                "calibration_error": ev["ece"],
                "rules_auc": ev_rules["auc"] or 0.0,
                "rules_brier": ev_rules["brier"],
                "rules_log_loss": ev_rules["log_loss"],
                "rules_calibration_error": ev_rules["ece"],
                "pls_auc": ev_pls["auc"] or 0.0,
                "pls_brier": ev_pls["brier"],
                "pls_log_loss": ev_pls["log_loss"],
                "pls_calibration_error": ev_pls["ece"],
                "base_rate_brier": base_rate_brier,
                "base_rate_log_loss": ev_base["log_loss"],
                "calibration_table": ev["calibration"],
                "pls_calibration_table": ev_pls["calibration"],
                "model_data": {
                    "features": [[field, value] for field, value in names],
                    "intercept": published["intercept"],
                    "weights": published["weights"],
                    "calibrator": published["calibrator"],
                    "counts": published["counts"],
                },
            }
        )

    @api.model
    def _pls_features(self):
        """Odoo PLS's own field choice (crm.pls_fields), mapped to our feature names."""
        mapping = {
            "source_id": "source",
            "country_id": "country",
            "lang_id": "lang",
            "tag_ids": "tag",
            "email_state": "email",
            "phone_state": "phone",
        }
        configured = self.env["crm.lead"]._pls_get_safe_fields()
        return [mapping[f] for f in configured if f in mapping]

    # ------------------------------------------------------------
    # FEATURES (SQL: constant queries whatever the number of leads)
    # ------------------------------------------------------------

    @api.model
    def _feature_columns(self):
        """l.id, then one SQL expression per feature, in FEATURES' order."""
        return SQL(", ").join([SQL("l.id")] + [SQL(expr) for _n, _l, expr, _c in FEATURES])

    @api.model
    def _row_from_record(self, record):
        """{feature name: category} of a row selected by _feature_columns (its id first)."""
        row = {}
        for (name, _label, _expr, convert), value in zip(FEATURES, record[1:], strict=True):
            if convert is list:
                row[name] = list(value or [])
            elif convert:
                row[name] = convert(value)
            else:
                row[name] = value
        return row

    @api.model
    def _lead_rows(self, lead_ids):
        """{lead_id: features} of the given leads."""
        self.env["crm.lead"].flush_model()
        self.env.cr.execute(
            SQL(
                "SELECT %s FROM %s WHERE l.id = ANY(%s)",
                self._feature_columns(),
                FEATURES_FROM,
                list(lead_ids),
            )
        )
        return {record[0]: self._row_from_record(record) for record in self.env.cr.fetchall()}

    @api.model
    def _closed_lead_rows(self, company):
        """Features, outcome (1 won / 0 lost), creation moment and quality score of the
        closed leads. Won: active and in a won stage; lost: archived with probability 0."""
        self.env["crm.lead"].flush_model()
        self.env["crm.stage"].flush_model(["is_won"])
        config = self.env["llm.service"]._get_config(company)
        weights = {c: config["weight_" + c] for c in ("completeness", "clarity", "engagement")}
        total = sum(weights.values()) or 1
        self.env.cr.execute(
            SQL(
                """SELECT (%s)::int, l.create_date,
                          (COALESCE(l.ai_completeness_score, 0) * %s
                           + COALESCE(l.ai_clarity_score, 0) * %s
                           + COALESCE(l.ai_engagement_score, 0) * %s) / %s,
                          %s
                     FROM %s
                    WHERE (l.company_id = %s OR l.company_id IS NULL) AND ((%s) OR (%s))
                 ORDER BY l.create_date, l.id""",
                WON_SQL,
                weights["completeness"],
                weights["clarity"],
                weights["engagement"],
                total,
                self._feature_columns(),
                FEATURES_FROM,
                company.id,
                WON_SQL,
                LOST_SQL,
            )
        )
        data = {"rows": [], "y": [], "keys": [], "rules": []}
        for won, created, quality, *record in self.env.cr.fetchall():
            data["rows"].append(self._row_from_record(record))
            data["y"].append(won)
            data["keys"].append(created)
            data["rules"].append(quality)
        return data
