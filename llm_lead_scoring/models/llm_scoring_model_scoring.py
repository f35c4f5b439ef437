import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from psycopg2.extras import execute_values

from odoo import _, api, models
from odoo.tools import SQL

from ..lib import learning
from .llm_scoring_model import (
    FEATURE_LABELS,
    OPEN_SQL,
    RESCORE_BATCH,
    TOP_FACTORS,
)

_logger = logging.getLogger(__name__)
# predictions kept for reuse by a rescoring run (one per distinct lead encoding)
MEMO_MAX = 200_000
# batches written at once by the rescoring, each in its own cursor: PostgreSQL's updates of
# crm_lead (non-HOT, ~33 indexes) are most of a rescoring's time and use a core each
WRITERS = 2


class LlmScoringModel(models.Model):
    """Scoring open leads with the published models, and explaining the scores."""

    _inherit = "llm.scoring.model"

    # ------------------------------------------------------------
    # SCORING
    # ------------------------------------------------------------

    @api.model
    def _models_by_team(self, company):
        models = self.search([("company_id", "=", company.id)])
        return {m.team_id.id or False: m for m in models}

    @api.model
    def _predict_rows(self, company, rows, memo=None):
        """{lead_id: prediction dict} for feature rows, each with its team's model (else the
        company's); leads without a model are left out.

        :param dict memo: predictions already made, by model and encoded features: leads
            that encode alike share one prediction dict (a third of the open leads of the
            benchmark's 90k); pass the same dict to several calls to share it across batches
        """
        memo = {} if memo is None else memo
        # compiled once per model, read per lead without the ORM
        compiled = {
            team_id: dict(self._compile(model.model_data), version=model.name)
            for team_id, model in self._models_by_team(company).items()
        }
        out = {}
        for lead_id, row in rows.items():
            team_key = row["team"] if row["team"] in compiled else False
            fit = compiled.get(team_key)
            if not fit:
                continue
            features, thin = learning.encode_with_thin_evidence(
                row, fit["vocabulary"], fit["counts"]
            )
            key = (team_key, fit["version"], tuple(features), tuple(thin))
            prediction = memo.get(key)
            if prediction is None:
                base, contributions, probability = learning.explain(fit, features, fit["names"])
                z = base + sum(c for _name, c in contributions)
                payload = self._factors_payload(probability, base, contributions, z)
                if fit["counts"]:
                    payload["thin"] = [[field, value] for field, value in thin]
                prediction = memo[key] = {
                    "probability": probability,
                    "version": fit["version"],
                    "factors": payload,
                    "key": key,
                }
            out[lead_id] = prediction
        return out

    @api.model
    def _compile(self, data):
        """The stored model as learning.predict/explain expect it (models stored before the
        calibrator choice have Platt's a and b, and no counts)."""
        calibrator = data.get("calibrator") or {"method": "platt", "a": data["a"], "b": data["b"]}
        return {
            "base": learning.logit(learning.calibrate(calibrator, data["intercept"])),
            "vocabulary": {tuple(name): index for index, name in enumerate(data["features"])},
            "names": [tuple(name) for name in data["features"]],
            "intercept": data["intercept"],
            "weights": data["weights"],
            "calibrator": calibrator,
            "counts": data.get("counts"),
        }

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
        """Refresh the win probability of every open lead with the published models, in
        batches, in SQL (one UPDATE per batch). The quality score (ai_probability_score), its
        trend and history are not touched: they never depend on a model.

        Outside tests, a batch's UPDATE runs and commits in a cursor of its own in a writer
        thread while the next batch is computed (at most WRITERS batches in flight):
        PostgreSQL's work (non-HOT updates of crm_lead's ~33 indexes) overlaps Python's
        instead of adding up.
        """
        self.env["crm.lead"].flush_model()
        self.env["crm.stage"].flush_model(["is_won"])
        self.env.cr.execute(
            SQL(
                """SELECT l.id FROM crm_lead l LEFT JOIN crm_stage s ON s.id = l.stage_id
                    WHERE %s AND (l.company_id = %s OR l.company_id IS NULL)
                 ORDER BY l.id""",
                OPEN_SQL,
                company.id,
            )
        )
        lead_ids = [row[0] for row in self.env.cr.fetchall()]
        pipelined = not (
            self.env.registry.in_test_mode()
            or getattr(threading.current_thread(), "testing", False)
        )
        if pipelined:
            # the published models first (the writer's rows name them), and a snapshot
            # taken after them
            self.env["crm.lead"]._ai_commit_if_allowed()
        done, memo, rendered, in_flight = 0, {}, {}, []
        with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="rescore") as writer:
            for start in range(0, len(lead_ids), RESCORE_BATCH):
                batch = lead_ids[start : start + RESCORE_BATCH]
                if len(memo) > MEMO_MAX:
                    memo.clear()
                    rendered.clear()
                predictions = self._predict_rows(company, self._lead_rows(batch), memo)
                new = [p for p in predictions.values() if p["key"] not in rendered]
                labels = self._value_labels([p["factors"] for p in new])
                for prediction in new:
                    rendered[prediction["key"]] = (
                        round(100 * prediction["probability"], 1),
                        prediction["version"],
                        json.dumps(prediction["factors"]),
                        self._explanation(prediction["factors"], labels),
                    )
                updates = [
                    (lead_id,) + rendered[prediction["key"]]
                    for lead_id, prediction in predictions.items()
                ]
                if not updates:
                    continue
                if pipelined:
                    if len(in_flight) >= WRITERS:
                        in_flight.pop(0).result()  # raises what that batch's write raised
                    in_flight.append(writer.submit(self._rescore_write_committed, updates))
                else:
                    self._rescore_write(self.env.cr, updates)
                done += len(updates)
            for future in in_flight:
                future.result()
        if pipelined:
            self.env["crm.lead"]._ai_commit_if_allowed()  # a snapshot that sees the writes
        self.env["crm.lead"].invalidate_model(
            [
                "ai_score_method",
                "ai_model_version",
                "ai_score_factors",
                "ai_score_explanation",
                "ai_win_probability",
                "ai_thin_evidence",
            ]
        )
        return done

    @api.model
    def _rescore_write(self, cr, updates):
        """One batch of rescoring results in one statement. The stored computed
        ai_win_probability is written with its inputs, as its compute would set it (learned
        and open): no recompute per lead."""
        execute_values(
            cr._obj,
            """
            UPDATE crm_lead l SET ai_win_probability = v.score, ai_score_method = 'learned',
                   ai_model_version = v.version, ai_score_factors = v.factors::jsonb,
                   ai_score_explanation = v.explanation
              FROM (VALUES %s) AS v(id, score, version, factors, explanation)
             WHERE l.id = v.id""",
            updates,
            page_size=1000,
        )

    def _rescore_write_committed(self, updates):
        """_rescore_write in a cursor of its own, committed (the writer thread: SQL only,
        no ORM, no environment shared with the caller)."""
        with self.pool.cursor() as cr:
            self._rescore_write(cr, updates)
