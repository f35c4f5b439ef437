"""Benchmark: the win probability on real, public, labelled outcomes (not a test).

Loads the CoIL 2000 "Caravan" insurance data (5,822 real customers, 348 of whom bought a
caravan policy: 6 % won), shipped as ``ISLP/data/Caravan.csv`` in the ``ISLP`` package of PyPI
(``pip install --no-deps ISLP``: only the CSV is read), as opportunities through the ORM, with
the fields Odoo's Predictive Lead Scoring uses:

    source    <- MOSHOOFD, customer main type (10 values, their labels)
    country   <- MKOOPKLA, purchasing power class (8 values)
    language  <- MOPLLAAG, share with lower education (10 values)
    tags      <- car and fire policy contribution levels, has a boat / life / third-party policy
    expected revenue (not a PLS field) <- MINKGEM, average income class

The leads are shuffled (seeded) and come in over 18 months; the most recently created 20 %
stay open, with their true outcome kept aside; the others are closed the Odoo way (won:
action_set_won, a won stage; lost: action_set_lost, archived at probability 0) in one of two
histories, each in a company and a team of its own:

- spread: each lead closed 1 to 12 weeks after it came in (the clock frozen at that date);
- bulk: all created at one moment (an import from another CRM), the won ones closed first,
  then a mass "mark as lost" an hour later.

Then Odoo's PLS is rebuilt (crm.pls_fields set to the fields above, crm.pls_start_date before
the data), the company's model is trained (the guardrail decides whether it is published),
and the win probability of the open leads is compared with their true outcomes next to
Odoo's PLS (automated_probability, from the same closed leads), a plain logistic regression
on the same features (L2, C = 1, L-BFGS, numpy/scipy: the benchmark's own) and the base rate.
Everything stays in the database (the rescoring commits per batch): use a scratch database.

    pip install --no-deps ISLP
    python3 bench/bench_real_data.py -d DB --addons-path ... [--history spread|bulk|both]
    python3 bench/bench_real_data.py -d DB ... --again    # train and measure again only
"""

import argparse
import csv
import importlib.util
import os
import random
import time
from datetime import datetime, timedelta

from benchlib import add_database_arguments, open_registry

MAIN_TYPES = [
    "Successful hedonists",
    "Driven growers",
    "Average family",
    "Career loners",
    "Living well",
    "Cruising seniors",
    "Retired and religious",
    "Family with grown ups",
    "Conservative families",
    "Farmers",
]
COUNTRIES = ["nl", "be", "de", "fr", "lu", "dk", "at", "ch"]  # purchasing power class 1-8
LANGS = ["nl_NL", "nl_BE", "fr_FR", "de_DE", "da_DK", "fr_BE", "de_CH", "it_IT", "es_ES", "pt_PT"]
# average income class 0-9 as an expected revenue
REVENUE = [0, 500, 2000, 4000, 10000, 15000, 50000, 150000, 150000, 150000]
OPEN_SHARE = 0.2
MONTHS = 18


def caravan_path(explicit=None):
    if explicit:
        return explicit
    spec = importlib.util.find_spec("ISLP")
    if not spec or not spec.submodule_search_locations:
        raise SystemExit("ISLP is not installed: pip install --no-deps ISLP (or pass --csv)")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "Caravan.csv")


def load(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def tag_names(row):
    names = [
        "Car policy level %s" % row["PPERSAUT"],
        "Fire policy level %s" % row["PBRAND"],
    ]
    names += [
        label
        for column, label in (
            ("APLEZIER", "Boat policy"),
            ("ALEVEN", "Life insurance"),
            ("PWAPART", "Private third party insurance"),
        )
        if int(row[column])
    ]
    return names


def ensure(env, model, names, field="name"):
    Model = env[model].with_context(active_test=False)
    found = {r[field]: r for r in Model.search([(field, "in", names)])}
    missing = [n for n in names if n not in found]
    for record in Model.create([{field: n} for n in missing]):
        found[record[field]] = record
    return found


def populate(env, data, history, seed):
    """Create the opportunities, close the older 80 % (history: spread or bulk).

    :return: (company, team, open leads, their true outcomes)
    """
    from freezegun import freeze_time

    stamp = datetime.now().strftime("%H%M%S")
    company = env["res.company"].create({"name": "Caravan %s %s" % (history, stamp)})
    team = env["crm.team"].create(
        {"name": "Caravan %s %s" % (history, stamp), "company_id": company.id}
    )
    sources = ensure(env, "utm.source", ["Caravan: %s" % t for t in MAIN_TYPES])
    tags = ensure(env, "crm.tag", sorted({t for row in data for t in tag_names(row)}))
    countries = [env.ref("base.%s" % c) for c in COUNTRIES]
    langs = {
        lang.code: lang
        for lang in env["res.lang"].with_context(active_test=False).search([("code", "in", LANGS)])
    }
    stage = env["crm.stage"].search([("is_won", "=", False)], order="sequence, id", limit=1)
    order = list(range(len(data)))
    random.Random(seed).shuffle(order)
    vals_list = []
    for i in order:
        row = data[i]
        vals_list.append(
            {
                "name": "Caravan customer %s" % (i + 1),
                "type": "opportunity",
                "company_id": company.id,
                "team_id": team.id,
                "user_id": False,
                "stage_id": stage.id,
                "source_id": sources["Caravan: %s" % MAIN_TYPES[int(row["MOSHOOFD"]) - 1]].id,
                "country_id": countries[int(row["MKOOPKLA"]) - 1].id,
                "lang_id": langs[LANGS[int(row["MOPLLAAG"])]].id,
                "tag_ids": [(6, 0, [tags[t].id for t in tag_names(row)])],
                "expected_revenue": REVENUE[int(row["MINKGEM"])],
            }
        )
    leads = env["crm.lead"].create(vals_list)
    won = [data[i]["Purchase"] == "Yes" for i in order]
    won_by_id = dict(zip(leads.ids, won, strict=True))
    n_open = int(len(leads) * OPEN_SHARE)
    closed, opened = leads[: len(leads) - n_open], leads[len(leads) - n_open :]
    truth = won[len(leads) - n_open :]
    lost_reason = env["crm.lost.reason"].search([], limit=1)
    now = datetime.now().replace(microsecond=0)
    if history == "spread":
        start = now - timedelta(days=30 * MONTHS)
        step = timedelta(days=30 * MONTHS) / len(leads)
        created = [start + k * step for k in range(len(leads))]
        env.cr.execute(
            "UPDATE crm_lead SET create_date = v.d FROM (SELECT unnest(%s::int[]) id, "
            "unnest(%s::timestamp[]) d) v WHERE crm_lead.id = v.id",
            [leads.ids, created],
        )
        rng = random.Random(seed + 1)
        by_week = {}
        for k in range(len(closed)):
            when = min(created[k] + timedelta(days=rng.randint(7, 84)), now)
            by_week.setdefault(when.replace(hour=12, minute=0, second=0), []).append(k)
        for when in sorted(by_week):
            with freeze_time(when):
                batch = closed.browse([closed[k].id for k in by_week[when]])
                batch.filtered(lambda lead: won_by_id[lead.id]).action_set_won()
                batch.filtered(lambda lead: not won_by_id[lead.id]).action_set_lost(
                    lost_reason_id=lost_reason.id
                )
    else:
        with freeze_time(now - timedelta(hours=1)):
            closed.filtered(lambda lead: won_by_id[lead.id]).action_set_won()
        with freeze_time(now):
            closed.filtered(lambda lead: not won_by_id[lead.id]).action_set_lost(
                lost_reason_id=lost_reason.id
            )
    env.invalidate_all()
    return company, team, opened, truth


def reuse(env, data, history):
    """The company, team, open leads and their outcomes of the latest run of ``history``
    (to train and measure again without loading the data again)."""
    company = env["res.company"].search(
        [("name", "=like", "Caravan %s %%" % history)], order="id desc", limit=1
    )
    if not company:
        raise SystemExit("no earlier %s run in this database" % history)
    team = env["crm.team"].search([("company_id", "=", company.id)], limit=1)
    opened = env["crm.lead"].search(
        [("company_id", "=", company.id), ("stage_id.is_won", "=", False)], order="id"
    )
    truth = [data[int(lead.name.rsplit(" ", 1)[1]) - 1]["Purchase"] == "Yes" for lead in opened]
    return company, team, opened, truth


def logistic_regression(rows, y, open_rows):
    """Plain L2 logistic regression (C = 1) on the same one-hot features, by L-BFGS."""
    import numpy as np
    from scipy.optimize import minimize

    from odoo.addons.llm_lead_scoring.lib import learning

    vocabulary = learning.build_vocabulary(rows)

    def matrix(rs):
        m = np.zeros((len(rs), len(vocabulary)))
        for r, row in enumerate(rs):
            m[r, learning.encode(row, vocabulary)] = 1.0
        return m

    X, target = matrix(rows), np.array(y, dtype=float)

    def objective(wb):
        w, b = wb[:-1], wb[-1]
        z = X @ w + b
        p = 1.0 / (1.0 + np.exp(-z))
        loss = np.sum(np.logaddexp(0.0, z) - target * z) + 0.5 * w @ w
        return loss, np.append(X.T @ (p - target) + w, np.sum(p - target))

    fit = minimize(objective, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B")
    z = matrix(open_rows) @ fit.x[:-1] + fit.x[-1]
    return list(1.0 / (1.0 + np.exp(-z)))


def run(registry, data, history, seed, again=False):
    from odoo import SUPERUSER_ID, api

    from odoo.addons.llm_lead_scoring.lib import learning

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        params = env["ir.config_parameter"].sudo()
        params.set_param("crm.pls_fields", "source_id,country_id,lang_id,tag_ids")
        params.set_param("crm.pls_start_date", "2000-01-01")
        started = time.monotonic()
        if again:
            company, team, opened, truth = reuse(env, data, history)
        else:
            company, team, opened, truth = populate(env, data, history, seed)
            cr.commit()
            env["crm.lead"]._cron_update_automated_probabilities()
            cr.commit()
        load_s = time.monotonic() - started
        Model = env["llm.scoring.model"]
        closed = Model._closed_lead_rows(company)
        started = time.monotonic()
        summary = Model._train_company(company)
        train_s = time.monotonic() - started
        cr.commit()
        candidate = Model.with_context(active_test=False).search(
            [("company_id", "=", company.id), ("team_id", "=", False)], limit=1
        )
        opened.invalidate_recordset()
        y = [int(v) for v in truth]
        published = bool(summary["trained"])
        pls = [lead.automated_probability / 100.0 for lead in opened]
        # the win probability a salesperson sees (ai_win_probability): the learned one once a
        # model is published, else PLS; never the quality score (ai_probability_score)
        learned = [lead.ai_win_probability / 100.0 for lead in opened]
        open_rows = Model._lead_rows(opened.ids)
        lr = logistic_regression(closed["rows"], closed["y"], [open_rows[i] for i in opened.ids])
        rate = sum(closed["y"]) / len(closed["y"])
        results = {
            "Win probability (%s, %s)"
            % (
                "learned" if "learned" in opened.mapped("ai_score_method") else "PLS",
                "published" if published else "new model not published",
            ): learned,
            "Odoo PLS": pls,
            "Logistic regression": lr,
            "Base rate": [rate] * len(y),
        }
        print()
        print(
            "== %s history: %s closed leads (%s won, %.1f%%), %s open, loaded in %.0f s"
            % (history, len(closed["y"]), sum(closed["y"]), 100 * rate, len(y), load_s)
        )
        print(
            "model v%s %s; split %s%s; calibration %s, L2 %.1f; trained in %.1f s"
            % (
                candidate.version,
                candidate.state,
                candidate.split_method,
                " (%s)" % candidate.split_reason if candidate.split_reason else "",
                candidate.calibration_method,
                candidate.regularization,
                train_s,
            )
        )
        if candidate.rejection_reason:
            print("guardrail: %s" % candidate.rejection_reason)
        print(
            "model's own held-out: AUC %.4f Brier %.4f ECE %.4f | PLS AUC %.4f Brier %.4f"
            " | base rate Brier %.4f"
            % (
                candidate.auc,
                candidate.brier,
                candidate.calibration_error,
                candidate.pls_auc,
                candidate.pls_brier,
                candidate.base_rate_brier,
            )
        )
        print(
            "%-38s %8s %8s %9s %8s %6s %6s"
            % ("open leads, true outcomes", "AUC", "Brier", "log-loss", "ECE", "min%", "max%")
        )
        figures = {}
        for name, p in results.items():
            ev = learning.evaluate(p, y)
            figures[name] = ev
            print(
                "%-38s %8.4f %8.5f %9.4f %8.4f %6.1f %6.1f"
                % (
                    name,
                    ev["auc"] or 0.5,
                    ev["brier"],
                    ev["log_loss"],
                    ev["ece"],
                    100 * min(p),
                    100 * max(p),
                )
            )
        ours = figures[next(iter(results))]
        pls_ev, lr_ev, base_ev = (
            figures["Odoo PLS"],
            figures["Logistic regression"],
            figures["Base rate"],
        )
        checks = [
            (
                "AUC >= max(PLS, LR) - 0.005",
                ours["auc"] >= max(pls_ev["auc"], lr_ev["auc"]) - 0.005,
            ),
            ("Brier <= LR + 0.003", ours["brier"] <= lr_ev["brier"] + 0.003),
            ("Brier < PLS", ours["brier"] < pls_ev["brier"]),
            ("Brier < base rate", ours["brier"] < base_ev["brier"]),
            ("calibration error <= 0.03", ours["ece"] <= 0.03),
        ]
        if history == "bulk":
            checks = [
                ("never worse than the base rate (Brier)", ours["brier"] <= base_ev["brier"]),
                ("no open lead at 0 or 100", 0 < min(learned) and max(learned) < 1),
            ]
        for label, ok in checks:
            print("  [%s] %s" % ("ok" if ok else "MISSED", label))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser)
    parser.add_argument("--csv", help="path of Caravan.csv (default: the ISLP package's)")
    parser.add_argument("--history", choices=["spread", "bulk", "both"], default="both")
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument(
        "--again",
        action="store_true",
        help="train and measure again on the leads of the latest run (no loading)",
    )
    args = parser.parse_args()
    data = load(caravan_path(args.csv))
    registry = open_registry(args)
    for history in ("spread", "bulk") if args.history == "both" else (args.history,):
        run(registry, data, history, args.seed, again=args.again)


if __name__ == "__main__":
    main()
