"""Benchmark: training the win-probability model and rescoring open leads (not a test).

Fills the database with the shared generator when asked (--generate N), then times, for the
main company: reading the closed leads' features, training + calibration + metrics
(learned, rules, Odoo PLS), and rescoring every open lead in SQL batches. Prints the counts,
the times next to the targets (train 100k closed < 60 s, rescore 100k open < 30 s), the
number of queries and the peak memory. The rescoring commits per batch, as the nightly cron
does: the new model and scores stay in the (benchmark) database.

    python3 bench/bench_learned_model.py -d DB --generate 250000
"""

import argparse
import cProfile
import os
import resource
import sys
import time

from benchlib import add_database_arguments, open_registry


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser)
    parser.add_argument(
        "--generate",
        type=int,
        default=0,
        help="leads to generate first with bench/generate.py (committed)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--profile", metavar="FILE", help="write a cProfile of the rescoring to FILE (pstats)"
    )
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="VACUUM ANALYZE crm_lead before timing, as autovacuum would have on a live database",
    )
    parser.add_argument(
        "--rescore-only",
        action="store_true",
        help="no training: rescore again with the published models (the nightly run's case)",
    )
    args = parser.parse_args()

    from odoo import SUPERUSER_ID, api, sql_db

    registry = open_registry(args)
    if args.generate:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from generate import generate

        with registry.cursor() as cr:
            started = time.monotonic()
            generate(cr, leads=args.generate, seed=args.seed)
            print("generated %s leads in %.0f s" % (args.generate, time.monotonic() - started))
    if args.vacuum:
        # what autovacuum does on a live database after bulk inserts (hint bits, visibility
        # map); without it, the first UPDATE of every freshly written page also pays for that
        with registry.cursor() as cr:
            started = time.monotonic()
            cr._cnx.autocommit = True
            cr.execute("VACUUM ANALYZE crm_lead")
            cr._cnx.autocommit = False
            print("VACUUM ANALYZE crm_lead: %.1f s" % (time.monotonic() - started))
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        Model = env["llm.scoring.model"]
        company = env.ref("base.main_company")
        queries = sql_db.sql_counter
        started = time.monotonic()
        data = Model._closed_lead_rows(company)
        read_s = time.monotonic() - started
        y = data["y"]
        started = time.monotonic()
        if not Model._enough(y):
            print("not enough closed leads: %s" % len(y))
            return
        if args.rescore_only:
            model = Model.search([("company_id", "=", company.id), ("team_id", "=", False)])
        else:
            model = Model._fit_and_store(
                company, env["crm.team"], data["rows"], y, data["keys"], data["rules"]
            )
        fit_s = time.monotonic() - started
        profiler = cProfile.Profile() if args.profile else None
        started, cpu = time.monotonic(), time.process_time()
        if profiler:
            profiler.enable()
        rescored = Model._rescore_open_leads(company)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        rescore_s, rescore_cpu = time.monotonic() - started, time.process_time() - cpu
        queries = sql_db.sql_counter - queries
        metrics = (
            model.auc,
            model.pls_auc,
            model.brier,
            model.pls_brier,
            model.base_rate_brier,
            model.calibration_error,
        )
        cr.rollback()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("closed leads      : %s (%s won, %s lost)" % (len(y), sum(y), len(y) - sum(y)))
    print("read features     : %.1f s" % read_s)
    print(
        "train+calibrate   : %.1f s (train + read %.1f s per 100k closed; target < 60 s)"
        % (fit_s, (fit_s + read_s) * 100000 / len(y))
    )
    print(
        "held-out metrics  : AUC %.3f (PLS %.3f), Brier %.3f (PLS %.3f, base %.3f), ECE %.3f"
        % metrics
    )
    print(
        "open leads        : %s rescored in %.1f s (%.1f s per 100k; target < 30 s), "
        "Odoo CPU %.1f s, load average after %s"
        % (
            rescored,
            rescore_s,
            rescore_s * 100000 / max(rescored, 1),
            rescore_cpu,
            " ".join("%.2f" % x for x in os.getloadavg()),
        )
    )
    print("queries           : %s" % queries)
    print("peak memory (RSS) : %.0f MB" % peak_mb)


if __name__ == "__main__":
    main()
