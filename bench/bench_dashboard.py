"""Benchmark: crm.executive.dashboard.get_dashboard_data on a big database (not a test).

Fills the database up to --leads leads with the shared generator (bench/generate.py) when it has
fewer, then times get_dashboard_data for the last 365 days as the admin user (a sales manager:
record rules and the company rule apply, every company of the user selected, so amounts in other
currencies are converted), next to one minimal hand-written SQL query computing the same eleven
KPIs for the period and the previous one. Prints both times, their ratio, the number of queries
and the peak memory, and checks that both give the same KPIs.

    python3 bench/bench_dashboard.py -d DB --leads 1000000 [--runs 5]
"""

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc
from datetime import date, timedelta

HERE = os.path.dirname(os.path.abspath(__file__))

BASELINE_SQL = """
WITH won_stages AS (SELECT array_agg(id) AS ids FROM crm_stage WHERE is_won),
     leads AS (
        SELECT l.*,
               l.active AND l.stage_id = ANY(ws.ids) AS is_won,
               NOT l.active AND l.probability = 0 AS is_lost,
               l.active AND l.date_closed IS NULL AND NOT COALESCE(l.stage_id = ANY(ws.ids), FALSE) AS is_open,
               %(revenue)s AS revenue
          FROM crm_lead l
          CROSS JOIN won_stages ws
         WHERE (l.company_id IS NULL OR l.company_id = ANY(%(companies)s))
           AND ((l.create_date >= %(prev_from)s AND l.create_date < %(to)s)
                OR (l.date_closed >= %(prev_from)s AND l.date_closed < %(to)s))
        OFFSET 0
     )
SELECT p.name,
       COUNT(*) FILTER (WHERE c_in AND (active OR probability = 0)),
       COUNT(*) FILTER (WHERE c_in AND (active OR probability = 0) AND type = 'opportunity'),
       COUNT(*) FILTER (WHERE d_in AND is_won),
       COUNT(*) FILTER (WHERE d_in AND is_lost),
       SUM(revenue) FILTER (WHERE d_in AND is_won),
       AVG(EXTRACT(EPOCH FROM date_closed - create_date) / 86400) FILTER (WHERE d_in AND is_won),
       SUM(revenue) FILTER (WHERE c_in AND type = 'opportunity' AND is_open),
       SUM(revenue * probability / 100) FILTER (WHERE c_in AND type = 'opportunity' AND is_open)
  FROM leads
 CROSS JOIN (VALUES ('cur', %(from)s::timestamp, %(to)s::timestamp),
                    ('prev', %(prev_from)s::timestamp, %(from)s::timestamp)) AS p(name, start, stop)
 CROSS JOIN LATERAL (SELECT leads.create_date >= p.start AND leads.create_date < p.stop AS c_in,
                            leads.date_closed >= p.start AND leads.date_closed < p.stop AS d_in) w
 GROUP BY p.name
"""


def baseline_kpis(cr, revenue, companies, bounds):
    """One query; the currency conversion is the same step-function expression as the module's
    (res.currency.rate read once, binary search per lead), with the lead table aliased l."""
    from odoo.tools import SQL
    cr.execute(SQL(BASELINE_SQL, revenue=revenue, companies=companies, **bounds))
    result = {}
    for name, leads, opps, won, lost, revenue, cycle, pipeline, weighted in cr.fetchall():
        revenue = revenue or 0.0
        result[name] = {
            "total_leads": leads, "total_opportunities": opps, "won_opportunities": won,
            "lost_opportunities": lost, "won_revenue": round(revenue, 2),
            "conversion_rate": round(100.0 * opps / leads, 1) if leads else 0.0,
            "win_rate": round(100.0 * won / (won + lost), 1) if won + lost else 0.0,
            "avg_deal_size": round(revenue / won, 2) if won else 0.0,
            "avg_sales_cycle_days": round(float(cycle or 0), 1),
            "pipeline_value": round(pipeline or 0.0, 2), "weighted_pipeline": round(weighted or 0.0, 2),
        }
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--database", required=True)
    parser.add_argument("--db-host", default="127.0.0.1")
    parser.add_argument("--db-port", default="5432")
    parser.add_argument("--db-user", default="odoo")
    parser.add_argument("--db-password", default="odoo")
    parser.add_argument("--addons-path", default=None)
    parser.add_argument("--leads", type=int, default=1000000, help="fill the database up to this many leads")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--login", default="admin", help="user the dashboard is computed for")
    args = parser.parse_args()

    import odoo
    from odoo import SUPERUSER_ID, api, sql_db
    from odoo.tools import SQL

    odoo_args = ["--db_host", args.db_host, "--db_port", args.db_port, "--db_user", args.db_user,
                 "--db_password", args.db_password, "--log-level", "warn"]
    if args.addons_path:
        odoo_args += ["--addons-path", args.addons_path]
    odoo.tools.config.parse_config(odoo_args)
    registry = odoo.modules.registry.Registry(args.database)

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
            print("generated %s leads in %.0f s" % (args.leads - existing, time.monotonic() - started))
        cr.execute("SELECT count(*) FROM crm_lead")
        total = cr.fetchone()[0]

    date_to = date.today()
    date_from = date_to - timedelta(days=364)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        user = env["res.users"].search([("login", "=", args.login)])
        context = {"allowed_company_ids": user.company_ids.ids, "tz": user.tz or "UTC"}
        env = api.Environment(cr, user.id, context)
        dashboard = env["crm.executive.dashboard"]
        params = dashboard._dashboard_params(date_from, date_to, None, None)
        bounds = {"from": params["from_utc"], "to": params["to_utc"], "prev_from": params["prev_from_utc"]}
        companies = env.companies.ids
        revenue = SQL(dashboard._revenue_sql(env.company.currency_id).code.replace("crm_lead.", "l."),
                      *dashboard._revenue_sql(env.company.currency_id).params)

        dashboard.get_dashboard_data(date_from, date_to)  # warm-up: ORM caches, PostgreSQL buffers
        baseline_kpis(cr, revenue, companies, bounds)
        dash_times, sql_times = [], []
        queries = None
        tracemalloc.start()
        for _run in range(args.runs):
            env.invalidate_all()
            before = sql_db.sql_counter
            started = time.perf_counter()
            data = dashboard.get_dashboard_data(date_from, date_to)
            dash_times.append(time.perf_counter() - started)
            queries = sql_db.sql_counter - before
        peak_trace = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        for _run in range(args.runs):
            started = time.perf_counter()
            base = baseline_kpis(cr, revenue, companies, bounds)
            sql_times.append(time.perf_counter() - started)
        mismatches = [
            (key, period, data["kpis"][key][field], base[period][key])
            for key in base["cur"] for period, field in (("cur", "value"), ("prev", "previous"))
            if abs(data["kpis"][key][field] - base[period][key]) > 0.011
        ]

    dash, sql = statistics.median(dash_times), statistics.median(sql_times)
    print("leads in database     : %s" % total)
    print("period                : %s to %s (previous: %s to %s), %s companies, user %s"
          % (date_from, date_to, params["prev_from"], params["prev_to"], len(companies), args.login))
    print("leads created / won   : %s / %s (period)" % (data["kpis"]["total_leads"]["value"],
                                                        data["kpis"]["won_opportunities"]["value"]))
    print("get_dashboard_data    : %.3f s median of %s (min %.3f, max %.3f)"
          % (dash, args.runs, min(dash_times), max(dash_times)))
    print("hand-written KPI SQL  : %.3f s median of %s (min %.3f)" % (sql, args.runs, min(sql_times)))
    print("ratio                 : %.2f" % (dash / sql))
    print("queries               : %s" % queries)
    print("peak memory           : %.1f MB traced during get_dashboard_data, %.0f MB process RSS"
          % (peak_trace / 1e6, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))
    print("KPIs equal to the SQL : %s" % ("yes" if not mismatches else "NO %s" % mismatches))


if __name__ == "__main__":
    main()
