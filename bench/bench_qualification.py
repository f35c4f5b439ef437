"""Benchmark: the cost of "what would move it" and of the drift watch (not a test).

On the main company: fills the BANT scorecard columns of the generated leads at random
(the generator does not know them) when asked, trains the win-probability model and rescores
the open leads as the nightly cron does, then times:
- "what would move it" for every open lead, in the rescoring's batches (what storing it at
  rescoring would add), and for one form (1 lead) and one list page (80 leads), as it is
  computed on read;
- the drift check (PSI of the leads created since training, calibration on those closed
  since).
Prints the times next to the rescoring's, the queries and the load average.

    python3 bench/bench_qualification.py -d DB [--generate 100000] [--fill-bant]
"""

import argparse
import os
import sys
import time

from benchlib import add_database_arguments, open_registry


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser)
    parser.add_argument("--generate", type=int, default=0, help="leads to generate first")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--fill-bant", action="store_true", help="set random BANT states on every lead first"
    )
    args = parser.parse_args()

    from odoo import SUPERUSER_ID, api, sql_db
    from odoo.tools import SQL

    registry = open_registry(args)
    from odoo.addons.llm_lead_scoring.models.llm_scoring_model import OPEN_SQL, RESCORE_BATCH

    if args.generate:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from generate import generate

        with registry.cursor() as cr:
            generate(cr, leads=args.generate, seed=args.seed)
    if args.fill_bant:
        with registry.cursor() as cr:
            # won leads more often confirmed: the items carry some signal, as in real life;
            # one UPDATE for the four (each pass rewrites every row and its indexes)
            cr.execute(
                SQL(
                    "UPDATE crm_lead l SET %s",
                    SQL(", ").join(
                        SQL(
                            """%s = (ARRAY['unknown', 'partly', 'confirmed'])[
                                   1 + mod(l.id * %s + CASE WHEN l.probability = 100 THEN 1
                                                             ELSE 0 END, 3)]""",
                            SQL.identifier("ai_bant_%s" % item),
                            salt,
                        )
                        for item, salt in (
                            ("budget", 7),
                            ("authority", 11),
                            ("need", 13),
                            ("timeline", 17),
                        )
                    ),
                )
            )
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        Model = env["llm.scoring.model"]
        company = env.ref("base.main_company")
        data = Model._closed_lead_rows(company)
        if not Model._enough(data["y"]):
            print("not enough closed leads: %s" % len(data["y"]))
            return
        started = time.monotonic()
        model = Model._fit_and_store(
            company, env["crm.team"], data["rows"], data["y"], data["keys"], data["rules"]
        )
        fit_s = time.monotonic() - started
        print(
            "model             : %s, %s (%s)"
            % (model.name, model.state, model.rejection_reason or "ok")
        )
        started = time.monotonic()
        rescored = Model._rescore_open_leads(company)
        rescore_s = time.monotonic() - started
        env.cr.execute(
            SQL(
                """SELECT l.id FROM crm_lead l LEFT JOIN crm_stage s ON s.id = l.stage_id
                    WHERE %s AND (l.company_id = %s OR l.company_id IS NULL) ORDER BY l.id""",
                OPEN_SQL,
                company.id,
            )
        )
        open_ids = [row[0] for row in env.cr.fetchall()]
        queries = sql_db.sql_counter
        started = time.monotonic()
        with_moves = 0
        for start in range(0, len(open_ids), RESCORE_BATCH):
            moves = Model._what_would_move_data(company, open_ids[start : start + RESCORE_BATCH])
            with_moves += len(moves)
        moves_s = time.monotonic() - started
        moves_q = sql_db.sql_counter - queries
        timings = {}
        for size in (1, 80):
            leads = env["crm.lead"].browse(open_ids[:size])
            env.invalidate_all()
            started = time.monotonic()
            leads.mapped("ai_what_would_move")
            timings[size] = time.monotonic() - started
        started = time.monotonic()
        queries = sql_db.sql_counter
        Model._check_drift(company)
        drift_s = time.monotonic() - started
        drift_q = sql_db.sql_counter - queries
        model.invalidate_recordset()
        print("load average      : %.2f %.2f %.2f" % os.getloadavg())
        print("closed leads      : %s, trained in %.1f s" % (len(data["y"]), fit_s))
        print(
            "rescoring         : %s open leads in %.1f s (%.1f s per 100k)"
            % (rescored, rescore_s, rescore_s * 100000 / max(rescored, 1))
        )
        print(
            "what would move   : %s open leads in %.1f s (%.1f s per 100k, %.0f %% of the "
            "rescoring), %s queries; %s leads with a change to propose"
            % (
                len(open_ids),
                moves_s,
                moves_s * 100000 / max(len(open_ids), 1),
                100 * moves_s / max(rescore_s, 1e-9),
                moves_q,
                with_moves,
            )
        )
        print(
            "on read           : form (1 lead) %.0f ms, list page (80 leads) %.0f ms"
            % (1000 * timings[1], 1000 * timings[80])
        )
        print(
            "drift check       : %.1f s, %s queries (%s new leads, PSI %.3f; %s closed since "
            "training, calibration error %.3f)"
            % (
                drift_s,
                drift_q,
                model.drift_new_count,
                model.drift_psi,
                model.drift_closed_count,
                model.drift_calibration_error,
            )
        )
        cr.rollback()


if __name__ == "__main__":
    main()
