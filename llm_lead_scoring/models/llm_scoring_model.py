import json
import logging
import time

from markupsafe import Markup
from psycopg2.extras import execute_values

from odoo import _, api, fields, models

from ..lib import learning

_logger = logging.getLogger(__name__)

MIN_CLOSED = 200
MIN_WON = 20
MIN_LOST = 20
RESCORE_BATCH = 5000
TOP_FACTORS = 3  # kept per lead, on each side; the others are summed in one entry
# features known when a lead is scored; never stage, probability, active, close date, lost
# reason or activities: those are (or follow) the outcome
FEATURE_LABELS = {
    "team": "Team",
    "source": "Source",
    "medium": "Medium",
    "campaign": "Campaign",
    "country": "Country",
    "lang": "Language",
    "email": "Email",
    "phone": "Phone",
    "revenue": "Expected revenue",
    "partner": "Customer",
    "industry": "Industry",
    "tag": "Tag",
    "completeness": "Completeness",
    "clarity": "Clarity",
    "budget": "Budget stated",
    "timeline": "Timeline stated",
    "decision_maker": "Decision maker known",
    "need": "Specific need",
}
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


def score_band(score):
    if score is None:
        return None
    low = min(int(score // 20) * 20, 80)
    return "%s-%s" % (low, low + 20)


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
    active = fields.Boolean(default=True)
    version = fields.Integer(required=True, default=1)
    trained_at = fields.Datetime(required=True, default=fields.Datetime.now)
    training_seconds = fields.Float(digits=(16, 2))
    leads_used = fields.Integer(help="Closed leads the model learned from (oldest).")
    calibration_count = fields.Integer(help="More recent closed leads used for calibration.")
    test_count = fields.Integer(help="Most recent closed leads held out to measure the model.")
    won_count = fields.Integer()
    lost_count = fields.Integer()
    base_rate = fields.Float(digits=(16, 4), help="Share of won leads among the closed leads.")
    auc = fields.Float(string="AUC", digits=(16, 4))
    brier = fields.Float(digits=(16, 4))
    log_loss = fields.Float(digits=(16, 4))
    calibration_error = fields.Float(
        digits=(16, 4), help="Expected calibration error over 10 bins (0 = perfect)."
    )
    rules_auc = fields.Float(string="Rules AUC", digits=(16, 4))
    rules_brier = fields.Float(digits=(16, 4))
    rules_log_loss = fields.Float(digits=(16, 4))
    rules_calibration_error = fields.Float(digits=(16, 4))
    pls_auc = fields.Float(string="Odoo PLS AUC", digits=(16, 4))
    pls_brier = fields.Float(string="Odoo PLS Brier", digits=(16, 4))
    pls_log_loss = fields.Float(string="Odoo PLS Log-loss", digits=(16, 4))
    pls_calibration_error = fields.Float(string="Odoo PLS Calibration Error", digits=(16, 4))
    base_rate_brier = fields.Float(
        digits=(16, 4), help="Brier score of always saying the base rate."
    )
    calibration_table = fields.Json(readonly=True)
    model_data = fields.Json(readonly=True)
    report_html = fields.Html(compute="_compute_report_html", sanitize=False)

    @api.depends("team_id", "company_id", "version")
    def _compute_name(self):
        for model in self:
            model.name = "%s v%s" % (model.team_id.name or model.company_id.name, model.version)

    @api.depends("calibration_table", "auc")
    def _compute_report_html(self):
        for model in self:
            rows = [
                (
                    _("Learned model"),
                    model.auc,
                    model.brier,
                    model.log_loss,
                    model.calibration_error,
                ),
                (
                    _("Rules composite"),
                    model.rules_auc,
                    model.rules_brier,
                    model.rules_log_loss,
                    model.rules_calibration_error,
                ),
                (
                    _("Odoo PLS (same training leads)"),
                    model.pls_auc,
                    model.pls_brier,
                    model.pls_log_loss,
                    model.pls_calibration_error,
                ),
                (_("Constant base rate"), 0.5, model.base_rate_brier, None, None),
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
            bins = Markup("").join(
                Markup(
                    "<tr><td>%s</td><td class='text-end'>%s</td><td class='text-end'>%s</td>"
                    "<td class='text-end'>%s</td></tr>"
                )
                % (
                    b["bin"],
                    b["count"],
                    "" if b["predicted"] is None else "%.1f%%" % (100 * b["predicted"]),
                    "" if b["observed"] is None else "%.1f%%" % (100 * b["observed"]),
                )
                for b in model.calibration_table or []
            )
            model.report_html = Markup(
                "<p>%s</p><table class='table table-sm'><thead><tr><th>%s</th><th>AUC</th>"
                "<th>Brier</th><th>Log-loss</th><th>%s</th></tr></thead><tbody>%s</tbody></table>"
                "<p>%s</p><table class='table table-sm'><thead><tr><th>%s</th><th>%s</th>"
                "<th>%s</th><th>%s</th></tr></thead><tbody>%s</tbody></table>"
            ) % (
                _(
                    "Measured on the %(n)s most recent closed leads, which the model did not learn "
                    "from. Lower Brier, log-loss and calibration error are better; higher AUC "
                    "ranks "
                    "better.",
                    n=model.test_count,
                ),
                _("Method"),
                _("Calibration error"),
                cells,
                _("Calibration: predicted probability versus the share actually won."),
                _("Predicted"),
                _("Leads"),
                _("Mean predicted"),
                _("Observed won"),
                bins,
            )

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
        model = self.search([("company_id", "=", company.id), ("team_id", "=", False)], limit=1)
        if model:
            return _(
                "Learned model v%(v)s, trained %(date)s on %(n)s closed leads: AUC %(auc).2f, "
                "Brier %(brier).3f (Odoo PLS %(pls).3f).",
                v=model.version,
                date=fields.Datetime.to_string(model.trained_at),
                n=model.leads_used,
                auc=model.auc,
                brier=model.brier,
                pls=model.pls_brier,
            )
        won, lost = self._closed_counts(company)
        return _(
            "Not enough closed leads to learn yet (%(won)s won, %(lost)s lost; %(min)s closed "
            "with %(minw)s won and %(minl)s lost are needed): the rules composite is used.",
            won=won,
            lost=lost,
            min=MIN_CLOSED,
            minw=MIN_WON,
            minl=MIN_LOST,
        )

    @api.model
    def _closed_counts(self, company):
        self.env["crm.lead"].flush_model()
        self.env.cr.execute(
            """SELECT count(*) FILTER (WHERE active AND probability >= 100),
                      count(*) FILTER (WHERE NOT active AND probability = 0)
                 FROM crm_lead WHERE company_id = %s OR company_id IS NULL""",
            [company.id],
        )
        return self.env.cr.fetchone()

    @api.model
    def _enough(self, y):
        won = sum(y)
        return len(y) >= MIN_CLOSED and won >= MIN_WON and len(y) - won >= MIN_LOST

    @api.model
    def _train_company(self, company):
        """Train the company model and one per team with enough closed leads, then rescore."""
        started = time.monotonic()
        data = self._closed_lead_rows(company)
        rows, y, keys, rules = data["rows"], data["y"], data["keys"], data["rules"]
        if not self._enough(y):
            return {"trained": False, "message": self._status_message(company)}
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
        rescored = self._rescore_open_leads(company)
        _logger.info(
            "Scoring models of %s trained on %s closed leads, %s open leads rescored " "in %.1f s",
            company.name,
            len(y),
            rescored,
            time.monotonic() - started,
        )
        return {
            "trained": trained,
            "message": _(
                "%(models)s model(s) trained on %(n)s closed leads; %(open)s open leads "
                "rescored. %(s)s",
                models=len(trained),
                n=len(y),
                open=rescored,
                s=self._status_message(company),
            ),
        }

    def _fit_and_store(self, company, team, rows, y, keys, rules):
        started = time.monotonic()
        fit = learning.train(rows, y, keys)
        test = fit["test"]
        y_test = [y[i] for i in test]
        learned = [learning.predict(fit, fit["X"][i]) for i in test]
        train_rows = [rows[i] for i in fit["train"]]
        pls = learning.naive_bayes_pls(
            train_rows, [y[i] for i in fit["train"]], [rows[i] for i in test], self._pls_features()
        )
        base_rate = sum(y) / len(y)
        ev = learning.evaluate(learned, y_test)
        ev_rules = learning.evaluate([rules[i] / 100.0 for i in test], y_test)
        ev_pls = learning.evaluate(pls, y_test)
        names = sorted(fit["vocabulary"], key=fit["vocabulary"].get)
        domain = [("company_id", "=", company.id), ("team_id", "=", team.id or False)]
        previous = self.with_context(active_test=False).search(
            domain, order="version desc", limit=1
        )
        self.search(domain).write({"active": False})
        return self.create(
            {
                "company_id": company.id,
                "team_id": team.id or False,
                "version": previous.version + 1,
                "training_seconds": time.monotonic() - started,
                "leads_used": len(fit["train"]),
                "calibration_count": len(fit["calibration"]),
                "test_count": len(test),
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
                "base_rate_brier": sum((base_rate - v) ** 2 for v in y_test) / len(y_test),
                "calibration_table": ev["calibration"],
                "model_data": {
                    "features": [[field, value] for field, value in names],
                    "intercept": fit["intercept"],
                    "weights": fit["weights"],
                    "a": fit["a"],
                    "b": fit["b"],
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

    _ROWS_SQL = """
        SELECT l.id, l.team_id, l.source_id, l.medium_id, l.campaign_id, l.country_id,
               l.lang_id, l.email_state, l.phone_state, l.expected_revenue,
               l.partner_id IS NOT NULL, p.industry_id, l.ai_completeness_score,
               l.ai_clarity_score, l.ai_enrichment_data -> 'analysis' -> 'clarity_signals',
               ARRAY(SELECT r.tag_id FROM crm_tag_rel r WHERE r.lead_id = l.id ORDER BY r.tag_id),
               l.ai_enrichment_status IS NOT NULL
          FROM crm_lead l
     LEFT JOIN res_partner p ON p.id = l.partner_id
    """

    @api.model
    def _row_from_record(self, record):
        (
            _id,
            team,
            source,
            medium,
            campaign,
            country,
            lang,
            email,
            phone,
            revenue,
            partner,
            industry,
            completeness,
            clarity,
            signals,
            tags,
            scored,
        ) = record
        signals = signals or {}

        def flag(key):
            return None if key not in signals else ("yes" if signals[key] else "no")

        return {
            "team": team,
            "source": source,
            "medium": medium,
            "campaign": campaign,
            "country": country,
            "lang": lang,
            "email": email,
            "phone": phone,
            "revenue": revenue_band(revenue),
            "partner": "yes" if partner else "no",
            "industry": industry,
            "tag": list(tags or []),
            "completeness": score_band(completeness) if scored else None,
            "clarity": score_band(clarity) if scored else None,
            "budget": flag("budget"),
            "timeline": flag("timeline"),
            "decision_maker": flag("decision_maker"),
            "need": flag("need"),
        }

    @api.model
    def _lead_rows(self, lead_ids):
        """{lead_id: features} of the given leads."""
        self.env["crm.lead"].flush_model()
        self.env.cr.execute(self._ROWS_SQL + " WHERE l.id = ANY(%s)", [list(lead_ids)])
        return {record[0]: self._row_from_record(record) for record in self.env.cr.fetchall()}

    @api.model
    def _closed_lead_rows(self, company):
        """Features, outcome (1 won / 0 lost), closing moment and rules score of closed leads."""
        self.env["crm.lead"].flush_model()
        self.env.cr.execute(
            self._ROWS_SQL.replace(
                "SELECT l.id,",
                "SELECT (l.active AND l.probability >= 100)::int, COALESCE(l.date_closed, "
                "l.create_date), COALESCE(l.ai_probability_score, 0), l.id,",
            )
            + """
             WHERE (l.company_id = %s OR l.company_id IS NULL)
               AND ((l.active AND l.probability >= 100) OR (NOT l.active AND l.probability = 0))
          ORDER BY 2, 4""",
            [company.id],
        )
        data = {"rows": [], "y": [], "keys": [], "rules": []}
        for won, closed, rules_score, *record in self.env.cr.fetchall():
            data["rows"].append(self._row_from_record(record))
            data["y"].append(won)
            data["keys"].append(closed)
            data["rules"].append(rules_score)
        return data

    # ------------------------------------------------------------
    # SCORING
    # ------------------------------------------------------------

    @api.model
    def _models_by_team(self, company):
        models = self.search([("company_id", "=", company.id)])
        return {m.team_id.id or False: m for m in models}

    @api.model
    def _predict_rows(self, company, rows):
        """{lead_id: prediction dict} for feature rows, each with its team's model (else the
        company's); leads without a model are left out."""
        by_team = self._models_by_team(company)
        compiled = {}
        out = {}
        for lead_id, row in rows.items():
            model = by_team.get(row["team"]) or by_team.get(False)
            if not model:
                continue
            if model.id not in compiled:
                data = model.model_data
                compiled[model.id] = (
                    {tuple(name): index for index, name in enumerate(data["features"])},
                    {
                        "intercept": data["intercept"],
                        "weights": data["weights"],
                        "a": data["a"],
                        "b": data["b"],
                    },
                    data["features"],
                )
            vocabulary, fit, names = compiled[model.id]
            features = learning.encode(row, vocabulary)
            a, weights = fit["a"], fit["weights"]
            contributions = [(names[j], a * weights[j]) for j in features]
            base = a * fit["intercept"] + fit["b"]
            z = base + sum(c for _name, c in contributions)
            probability = learning.sigmoid(z)
            out[lead_id] = {
                "probability": probability,
                "version": model.name,
                "factors": self._factors_payload(probability, base, contributions, z),
            }
        return out

    @api.model
    def _factors_payload(self, probability, base, contributions, z=None):
        """The top factors in log-odds and in probability points (the score without that
        factor), the rest summed as one 'other factors' entry: base + contributions add up
        exactly to logit(probability)."""
        z = learning.logit(probability) if z is None else z
        ranked = sorted((c for c in contributions if abs(c[1]) >= 1e-6), key=lambda c: -abs(c[1]))
        top = [c for c in ranked if c[1] > 0][:TOP_FACTORS] + [c for c in ranked if c[1] < 0][
            :TOP_FACTORS
        ]
        top.sort(key=lambda c: -abs(c[1]))
        rest = sum(c[1] for c in contributions) - sum(c[1] for c in top)
        factors = [
            [field, value, round(c, 6), round(100 * (probability - learning.sigmoid(z - c)), 1)]
            for (field, value), c in top
        ]
        if abs(rest) >= 1e-6:
            factors.append(
                [
                    "other",
                    "other factors",
                    round(rest, 6),
                    round(100 * (probability - learning.sigmoid(z - rest)), 1),
                ]
            )
        return {"base": round(base, 6), "probability": probability, "factors": factors}

    @api.model
    def _explanation(self, payload, labels=None):
        """Top 3 positive and negative factors in plain words: 'Source: Website +12 pts'."""
        if not payload:
            return False
        labels = self._value_labels([payload]) if labels is None else labels
        lines = []
        named = [f for f in payload["factors"] if f[0] != "other"]
        positives = [f for f in named if f[2] > 0][:3]
        negatives = [f for f in named if f[2] < 0][:3]
        for field, value, _contribution, points in positives + negatives:
            lines.append(
                "%s: %s %+d pts"
                % (
                    FEATURE_LABELS.get(field, field),
                    labels.get((field, value), value),
                    round(points),
                )
            )
        return "\n".join(lines)

    @api.model
    def _value_labels(self, payloads):
        """Readable names of the factors' values (record names for ids) of many payloads,
        one query per referenced model."""
        models_by_field = {
            "team": "crm.team",
            "source": "utm.source",
            "medium": "utm.medium",
            "campaign": "utm.campaign",
            "country": "res.country",
            "lang": "res.lang",
            "industry": "res.partner.industry",
            "tag": "crm.tag",
        }
        factors = [f for payload in payloads if payload for f in payload["factors"]]
        ids = {}
        for field, value, *_rest in factors:
            if field in models_by_field and value.isdigit():
                ids.setdefault(field, set()).add(int(value))
        labels = {}
        for field, record_ids in ids.items():
            for record in self.env[models_by_field[field]].sudo().browse(record_ids).exists():
                labels[(field, str(record.id))] = record.display_name
        plain = {
            "unknown": _("unknown"),
            "other": _("other"),
            "yes": _("yes"),
            "no": _("no"),
            "correct": _("valid"),
            "incorrect": _("invalid"),
        }
        for field, value, *_rest in factors:
            labels.setdefault((field, value), plain.get(value, value))
        return labels

    @api.model
    def _rescore_open_leads(self, company):
        """Refresh the learned score of every open lead in batches, in SQL (one UPDATE and one
        history INSERT per batch), recording the change with the reason 'model retrained'."""
        self.env["crm.lead"].flush_model()
        self.env.cr.execute(
            """SELECT id FROM crm_lead
                WHERE active AND probability < 100 AND (company_id = %s OR company_id IS NULL)
             ORDER BY id""",
            [company.id],
        )
        lead_ids = [row[0] for row in self.env.cr.fetchall()]
        now = fields.Datetime.now()
        done = 0
        for start in range(0, len(lead_ids), RESCORE_BATCH):
            batch = lead_ids[start : start + RESCORE_BATCH]
            rows = self._lead_rows(batch)
            predictions = self._predict_rows(company, rows)
            if not predictions:
                continue
            self.env.cr.execute(
                "SELECT id, ai_probability_score, ai_last_enrichment_date IS NOT NULL "
                "FROM crm_lead WHERE id = ANY(%s)",
                [list(predictions)],
            )
            previous = {row[0]: (row[1] if row[2] else None) for row in self.env.cr.fetchall()}
            labels = self._value_labels([p["factors"] for p in predictions.values()])
            updates, history = [], []
            for lead_id, prediction in predictions.items():
                score = round(100 * prediction["probability"], 1)
                before = previous.get(lead_id)
                trend = self.env["crm.lead"]._ai_trend(before, score)
                explanation = self._explanation(prediction["factors"], labels)
                updates.append(
                    (
                        lead_id,
                        score,
                        prediction["version"],
                        json.dumps(prediction["factors"]),
                        explanation,
                        trend,
                    )
                )
                if trend != "stable":
                    history.append(
                        (
                            lead_id,
                            now,
                            score,
                            before or 0.0,
                            0.0 if before is None else score - before,
                            trend,
                            "model retrained",
                            self.env.uid,
                        )
                    )
            execute_values(
                self.env.cr._obj,
                """
                UPDATE crm_lead l SET ai_probability_score = v.score, ai_score_method = 'learned',
                       ai_model_version = v.version, ai_score_factors = v.factors::jsonb,
                       ai_score_explanation = v.explanation, ai_score_trend = v.trend
                  FROM (VALUES %s) AS v(id, score, version, factors, explanation, trend)
                 WHERE l.id = v.id""",
                updates,
                page_size=1000,
            )
            if history:
                execute_values(
                    self.env.cr._obj,
                    """
                    INSERT INTO crm_lead_score_history
                           (lead_id, date, score, previous_score, change, trend, reason, method,
                            company_id, create_uid, write_uid, create_date, write_date)
                    SELECT v.lead_id, v.date, v.score, v.previous, v.change, v.trend, v.reason,
                           'learned', l.company_id, v.uid, v.uid, v.date, v.date
                      FROM (VALUES %s) AS v(lead_id, date, score, previous, change, trend,
                                            reason, uid)
                      JOIN crm_lead l ON l.id = v.lead_id""",
                    history,
                    page_size=1000,
                )
            done += len(updates)
            self.env["crm.lead"]._ai_commit_if_allowed()
        self.env["crm.lead"].invalidate_model(
            [
                "ai_probability_score",
                "ai_score_method",
                "ai_model_version",
                "ai_score_factors",
                "ai_score_explanation",
                "ai_score_trend",
                "ai_score_history_ids",
            ]
        )
        return done
