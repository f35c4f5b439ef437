"""Benchmark: crm.executive.dashboard.get_dashboard_data on a big database (not a test).

With --leads N, fills the database up to N leads with the shared generator (bench/generate.py)
first (without it, the database is measured as it is: a run on a 100,000-lead database must not
turn it into a million-lead one); then times get_dashboard_data for the last 365 days as the
admin user (a sales manager: record rules and the company rule apply, every company of the user
selected, so amounts in other currencies are converted), next to one minimal hand-written SQL
query computing the same eleven KPIs for the period and the previous one (grouped by company and
conversion day, the day's sums converted with the same rates afterwards). Runs VACUUM ANALYZE
first (what autovacuum does on a live database: both the dashboard and the hand-written query
then read the dashboard's covering index alone), interleaves the runs so that all see the same
load of the machine, times the hand-written query with the server's planner settings and with
the dashboard's and takes the faster as the reference. Prints both times, their ratio, the
number of queries and the peak memory, and checks that both give the same KPIs.

    python3 bench/bench_dashboard.py -d DB --leads 1000000 [--runs 5]
    python3 bench/bench_dashboard.py -d dash_bench1m,dash_bench100k --profile

Several databases (comma-separated) are measured one after the other, then a summary checks
the targets of each size (1,000,000 leads: ratio <= 1.5 and < 2 s; 100,000: ratio <= 2.0) with
the load average of the machine around each measure. ``--profile`` adds the time of each query
of one more run of the dashboard, slowest first.
"""

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc
from datetime import date, timedelta
from functools import partial

from benchlib import add_database_arguments, open_registry, profile_queries

HERE = os.path.dirname(os.path.abspath(__file__))

# the same conditions for both periods: leads created in the period (counted: active or lost),
# closed in it (won or lost), and open opportunities created in it
_PERIOD_SQL = """
       COUNT(*) FILTER (WHERE c_{p} AND (l.active OR l.probability = 0)),
       COUNT(*) FILTER (WHERE c_{p} AND (l.active OR l.probability = 0) AND l.type = 'opportunity'),
       COUNT(*) FILTER (WHERE d_{p} AND l.active AND l.stage_id = ANY(%(won)s)),
       COUNT(*) FILTER (WHERE d_{p} AND NOT l.active AND l.probability = 0),
       SUM(l.expected_revenue) FILTER (WHERE d_{p} AND l.active AND l.stage_id = ANY(%(won)s)),
       SUM(EXTRACT(EPOCH FROM l.date_closed - l.create_date))
           FILTER (WHERE d_{p} AND l.active AND l.stage_id = ANY(%(won)s)),
       SUM(l.expected_revenue) FILTER (WHERE c_{p} AND open_opportunity),
       SUM(l.expected_revenue * l.probability / 100) FILTER (WHERE c_{p} AND open_opportunity)"""
_RANGES = {
    "c_cur": "(l.create_date >= %(from)s AND l.create_date < %(to)s)",
    "d_cur": "(l.date_closed >= %(from)s AND l.date_closed < %(to)s)",
    "c_prev": "(l.create_date >= %(prev_from)s AND l.create_date < %(from)s)",
    "d_prev": "(l.date_closed >= %(prev_from)s AND l.date_closed < %(from)s)",
    "open_opportunity": "(l.type = 'opportunity' AND l.active AND l.date_closed IS NULL"
    " AND NOT COALESCE(l.stage_id = ANY(%(won)s), FALSE))",
}
BASELINE_SQL = """
SELECT l.company_id, COALESCE(l.date_closed, l.create_date)::date AS day,%s,%s
  FROM crm_lead l
 WHERE (l.company_id IS NULL OR l.company_id = ANY(%%(companies)s))
   AND ((l.create_date >= %%(prev_from)s AND l.create_date < %%(to)s)
        OR (l.date_closed >= %%(prev_from)s AND l.date_closed < %%(to)s))
 GROUP BY 1, 2
""" % (_PERIOD_SQL.format(p="cur"), _PERIOD_SQL.format(p="prev"))
for _name, _condition in _RANGES.items():
    BASELINE_SQL = BASELINE_SQL.replace(_name, _condition)


def baseline_kpis(cr, factor, params):
    """One query: the KPI counts and sums of both periods per company and conversion day (the
    closing date, else the creation date), then each day's sums multiplied by the day's rate
    (``factor``, the module's rate lookup: rates change at most daily, so this is exact)."""
    cr.execute(BASELINE_SQL, params)
    sums = {period: [0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0] for period in ("cur", "prev")}
    for company_id, day, *values in cr.fetchall():
        rate = factor(company_id, day)
        for period, offset in (("cur", 0), ("prev", 8)):
            leads, opps, won, lost, revenue, cycle, pipeline, weighted = values[offset : offset + 8]
            total = sums[period]
            total[0] += leads
            total[1] += opps
            total[2] += won
            total[3] += lost
            total[4] += float(revenue or 0) * rate
            total[5] += float(cycle or 0)
            total[6] += float(pipeline or 0) * rate
            total[7] += float(weighted or 0) * rate
    result = {}
    for period, (leads, opps, won, lost, revenue, cycle, pipeline, weighted) in sums.items():
        result[period] = {
            "total_leads": leads,
            "total_opportunities": opps,
            "won_opportunities": won,
            "lost_opportunities": lost,
            "won_revenue": round(revenue, 2),
            "conversion_rate": round(100.0 * opps / leads, 1) if leads else 0.0,
            "win_rate": round(100.0 * won / (won + lost), 1) if won + lost else 0.0,
            "avg_deal_size": round(revenue / won, 2) if won else 0.0,
            "avg_sales_cycle_days": round(cycle / won / 86400, 1) if won else 0.0,
            "pipeline_value": round(pipeline, 2),
            "weighted_pipeline": round(weighted, 2),
        }
    return result


def run_baseline(cr, factor, params, settings):
    """Time of one run of the hand-written query under some planner settings (restored after)."""
    cr.execute("SELECT current_setting('jit'), current_setting('enable_sort')")
    saved = cr.fetchone()
    cr.execute("SELECT set_config('jit', %s, true), set_config('enable_sort', %s, true)", settings)
    started = time.perf_counter()
    result = baseline_kpis(cr, factor, params)
    elapsed = time.perf_counter() - started
    cr.execute("SELECT set_config('jit', %s, true), set_config('enable_sort', %s, true)", saved)
    return elapsed, result


# the targets of issue 14, by size of the database: (leads at least, ratio at most, seconds under)
TARGETS = ((1000000, 1.5, 2.0), (100000, 2.0, None))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser)
    parser.add_argument(
        "--leads",
        type=int,
        default=0,
        help="fill the database up to this many leads first (default: measure it as it is)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--login", default="admin", help="user the dashboard is computed for")
    parser.add_argument(
        "--profile", action="store_true", help="also time each query of one more run"
    )
    args = parser.parse_args()
    results = []
    databases = args.database.split(",")
    if len(databases) > 1 and args.leads:
        print("several databases: measured as they are (--leads %s ignored)" % args.leads)
        args.leads = 0
    for database in databases:
        args.database = database
        load_before = os.getloadavg()
        figures = measure(args)
        results.append((database, figures, load_before, os.getloadavg()))
    print("\nsummary (load average 1/5/15 min before and after each measure; 2 cores)")
    for database, (leads, dash, ratio), before, after in results:
        verdict = []
        for at_least, max_ratio, max_seconds in TARGETS:
            if leads >= at_least * 0.95:
                verdict.append(
                    "ratio %s %.1f" % ("<=" if ratio <= max_ratio else "NOT <=", max_ratio)
                )
                if max_seconds:
                    verdict.append(
                        "time %s %.0f s" % ("<" if dash < max_seconds else "NOT <", max_seconds)
                    )
                break
        print(
            "%-16s %8s leads  %.3f s  ratio %.2f  %s  load %s -> %s"
            % (
                database,
                leads,
                dash,
                ratio,
                ", ".join(verdict) or "no target",
                "/".join("%.1f" % v for v in before),
                "/".join("%.1f" % v for v in after),
            )
        )


def measure(args):
    """Measure one database; print its figures and return (leads, dashboard s, ratio)."""
    import odoo
    from odoo import SUPERUSER_ID, api, sql_db

    if odoo.tools.config["db_host"] == args.db_host:  # configured for a previous database
        registry = odoo.modules.registry.Registry(args.database)
    else:
        registry = open_registry(args)

    with registry.cursor() as cr:
        cr.execute("SELECT count(*) FROM crm_lead")
        existing = cr.fetchone()[0]
        if existing < args.leads:
            sys.path.insert(0, HERE)
            from generate import generate

            started = time.monotonic()
            generate(cr, leads=args.leads - existing, seed=args.seed, verbose=True)
            cr.commit()
            cr.execute("ANALYZE crm_lead")
            print(
                "generated %s leads in %.0f s" % (args.leads - existing, time.monotonic() - started)
            )
        cr.execute("SELECT count(*) FROM crm_lead")
        total = cr.fetchone()[0]
        cr.execute("SELECT current_setting('jit'), current_setting('enable_sort')")
        saved_settings = cr.fetchone()
    # like autovacuum does on a live database: statistics, and the visibility map that lets both
    # the dashboard and the hand-written query read the index alone (index-only scans)
    with registry.cursor() as cr:
        cr._cnx.autocommit = True
        cr.execute("VACUUM ANALYZE crm_lead")
        cr.execute("VACUUM ANALYZE mail_message")
        cr.execute("VACUUM ANALYZE mail_activity")
        # the dashboard's narrow copy of the AI columns (crm_executive_dashboard/models/crm_lead.py)
        cr.execute("VACUUM ANALYZE crm_lead_ai_dashboard")
        cr._cnx.autocommit = False

    date_to = date.today()
    date_from = date_to - timedelta(days=364)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        user = env["res.users"].search([("login", "=", args.login)])
        context = {"allowed_company_ids": user.company_ids.ids, "tz": user.tz or "UTC"}
        env = api.Environment(cr, user.id, context)
        dashboard = env["crm.executive.dashboard"]
        params = dashboard._dashboard_params(date_from, date_to, None, None)
        companies = env.companies.ids
        _steps, factor = dashboard._conversion(env.company.currency_id)
        sql_params = {
            "from": params["from_utc"],
            "to": params["to_utc"],
            "prev_from": params["prev_from_utc"],
            "won": params["won_stage_ids"] or [0],
            "companies": companies,
        }

        dashboard.get_dashboard_data(date_from, date_to)  # warm-up: ORM caches, PostgreSQL buffers
        baseline_kpis(cr, factor, sql_params)
        # the runs are interleaved (dashboard, then the hand-written query with the server's
        # settings, then with the dashboard's: no JIT, hashing rather than sorting) so that all
        # see the same load of the machine; the faster hand-written variant is the reference
        variants = {"server settings": saved_settings, "jit off, enable_sort off": ("off", "off")}
        dash_times, sql_times = [], {name: [] for name in variants}
        queries = None
        for _run in range(args.runs):
            env.invalidate_all()
            before = sql_db.sql_counter
            started = time.perf_counter()
            data = dashboard.get_dashboard_data(date_from, date_to)
            dash_times.append(time.perf_counter() - started)
            queries = sql_db.sql_counter - before
            for name, settings in variants.items():
                elapsed, base = run_baseline(cr, factor, sql_params, settings)
                sql_times[name].append(elapsed)
        # peak memory in one more run (tracing allocations slows Python down: not timed)
        env.invalidate_all()
        tracemalloc.start()
        dashboard.get_dashboard_data(date_from, date_to)
        peak_trace = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        profile = (
            profile_queries(
                dashboard.env, partial(dashboard.get_dashboard_data, date_from, date_to)
            )
            if args.profile
            else []
        )
        baselines = {
            name: (statistics.median(times), min(times)) for name, times in sql_times.items()
        }
        best = min(baselines, key=lambda name: baselines[name][0])
        sql = baselines[best][0]
        mismatches = [
            (key, period, data["kpis"][key][field], base[period][key])
            for key in base["cur"]
            for period, field in (("cur", "value"), ("prev", "previous"))
            if abs(data["kpis"][key][field] - base[period][key]) > 0.011
        ]

    dash = statistics.median(dash_times)
    print("\n=== %s ===" % args.database)
    print("leads in database     : %s" % total)
    print(
        "period                : %s to %s (previous: %s to %s), %s companies, user %s"
        % (date_from, date_to, params["prev_from"], params["prev_to"], len(companies), args.login)
    )
    print(
        "leads created / won   : %s / %s (period)"
        % (data["kpis"]["total_leads"]["value"], data["kpis"]["won_opportunities"]["value"])
    )
    print(
        "get_dashboard_data    : %.3f s median of %s (min %.3f, max %.3f)"
        % (dash, args.runs, min(dash_times), max(dash_times))
    )
    for name, (median, minimum) in baselines.items():
        print(
            "hand-written KPI SQL  : %.3f s median of %s (min %.3f), %s"
            % (median, args.runs, minimum, name)
        )
    print("ratio                 : %.2f (to the faster hand-written run: %s)" % (dash / sql, best))
    print("queries               : %s" % queries)
    print(
        "peak memory           : %.1f MB traced during get_dashboard_data (one more run), "
        "%.0f MB process RSS"
        % (peak_trace / 1e6, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    )
    print("KPIs equal to the SQL : %s" % ("yes" if not mismatches else "NO %s" % mismatches))
    if profile:
        print("queries of one run, slowest first (%.3f s in all):" % sum(t for t, *_r in profile))
        for elapsed, caller, text in profile:
            print("  %7.3f s  %-28s %s" % (elapsed, caller, text))
    return total, dash, dash / sql


if __name__ == "__main__":
    main()
