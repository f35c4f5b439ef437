from odoo import _, api, models

from ..lib import learning

# the features a salesperson can change on an open lead, and the value each change sets
# (None: "set one", read as the average effect of the known values, weighted by how many
# training leads had each). Never team, country, language, expected revenue, tags or the
# AI's own scores: those are facts of the customer, or the scoring's output.
CHANGEABLE = (
    ("phone", ("correct",)),
    ("email", ("correct",)),
    ("partner", ("yes",)),
    ("source", None),
    ("medium", None),
    ("campaign", None),
    ("industry", None),
    ("bant_budget", ("confirmed",)),
    ("bant_authority", ("confirmed",)),
    ("bant_need", ("confirmed",)),
    ("bant_timeline", ("confirmed",)),
)
MAX_MOVES = 3
MIN_GAIN = 0.005  # half a point: smaller changes are not worth a line


class LlmScoringModel(models.Model):
    """What would move a lead's win probability: each changeable feature changed alone on
    the lead's feature vector, re-predicted with the published model (calibrated)."""

    _inherit = "llm.scoring.model"

    @api.model
    def _move_labels(self):
        return {
            "phone": _("Add a valid phone number"),
            "email": _("Add a valid e-mail address"),
            "partner": _("Link the lead to a customer"),
            "source": _("Set a source"),
            "medium": _("Set a medium"),
            "campaign": _("Set a campaign"),
            "industry": _("Set the customer's industry"),
            "bant_budget": _("Confirm the budget"),
            "bant_authority": _("Confirm who decides"),
            "bant_need": _("Confirm the need"),
            "bant_timeline": _("Confirm the timeline"),
        }

    @api.model
    def _move_targets(self, fit):
        """{field: log-odds weight of the changed value} of a compiled model, for the
        changeable fields it knows."""
        by_field = {}
        for (field, value), index in fit["vocabulary"].items():
            by_field.setdefault(field, []).append((value, index))
        weights, counts = fit["weights"], fit["counts"]
        targets = {}
        for field, values in CHANGEABLE:
            known = by_field.get(field)
            if not known:
                continue
            if values:
                index = next((i for v, i in known if v in values), None)
                if index is not None:
                    targets[field] = weights[index]
                continue
            # "set one": the average of the known values (not unknown, not the rare pool)
            real = [i for v, i in known if v not in (learning.UNKNOWN, learning.OTHER)]
            if not real:
                continue
            share = [counts[i] if counts else 1 for i in real]
            if sum(share):
                targets[field] = sum(weights[i] * s for i, s in zip(real, share, strict=True)) / (
                    sum(share)
                )
        return targets

    @api.model
    def _what_would_move_data(self, company, lead_ids):
        """{lead_id: [(field, probability now, probability after), ...]}: the MAX_MOVES
        changes that raise the probability the most (by at least MIN_GAIN), best first.
        One feature query and one model search, whatever the number of leads; leads without
        a published model are left out."""
        compiled = {}
        for team_id, model in self._models_by_team(company).items():
            fit = self._compile(model.model_data)
            fit["targets"] = self._move_targets(fit)
            compiled[team_id] = fit
        if not compiled or not lead_ids:
            return {}
        moves = {}
        for lead_id, row in self._lead_rows(lead_ids).items():
            fit = compiled.get(row["team"]) or compiled.get(False)
            if not fit:
                continue
            features = learning.encode(row, fit["vocabulary"])
            z = learning.decision(features, fit["intercept"], fit["weights"])
            now = learning.calibrate(fit["calibrator"], z)
            current = {}
            for j in features:
                field = fit["names"][j][0]
                current[field] = current.get(field, 0.0) + fit["weights"][j]
            found = []
            for field, values in CHANGEABLE:
                if field not in fit["targets"] or field not in row:
                    continue
                value = row[field]
                token = learning.UNKNOWN if value in (None, False, "") else str(value)
                if (values is None and token != learning.UNKNOWN) or (values and token in values):
                    continue  # already set: nothing to do
                after = learning.calibrate(
                    fit["calibrator"], z - current.get(field, 0.0) + fit["targets"][field]
                )
                if after - now >= MIN_GAIN:
                    found.append((field, now, after))
            found.sort(key=lambda move: move[1] - move[2])
            if found:
                moves[lead_id] = found[:MAX_MOVES]
        return moves

    @api.model
    def _what_would_move(self, company, lead_ids):
        """{lead_id: text}, one line per change: 'Add a valid phone number: 34 % → 41 %'."""
        labels = self._move_labels()
        return {
            lead_id: "\n".join(
                _(
                    "%(change)s: %(before)s %% → %(after)s %%",
                    change=labels[field],
                    before=round(100 * before),
                    after=round(100 * after),
                )
                for field, before, after in found
            )
            for lead_id, found in self._what_would_move_data(company, lead_ids).items()
        }
