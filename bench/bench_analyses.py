"""Benchmark: the dashboard's analysis pages (crm.executive.dashboard.get_analysis) on a big
database (not a test).

The generator (bench/generate.py) writes no tracking values; ``--history`` first gives every lead
without one a stage history, as the chatter's tracking of ``stage_id`` would have: one message
with one tracking value per step from the first stage (order of the stages) to the lead's
current stage, spread between its creation and its closing (or 20 days per step for open
leads, never after now). Bulk SQL, run once (leads that already have a stage history are left
alone); use it on a COPY of a shared benchmark database (``createdb -T dash_bench1m COPY``).

Then times each analysis (funnel, bottlenecks, winloss, roi) as the admin user (a sales
manager: record rules and the company rule apply, every company of the user selected) for the
current month (the page's default) and the last 365 days, ``--runs`` times each, interleaved,
after one warm-up call (``--cold``: the stage norms, learned once a day, are forgotten before
each call, as for the first page of the day), and prints the median and best time, the number
of queries of one call and the load average of the machine.

    python3 bench/bench_analyses.py -d COPY --history --addons-path ...
"""

import argparse
import os
import statistics
import time
from datetime import date, timedelta
from functools import partial

from benchlib import add_database_arguments, connect, open_registry, profile_queries

ANALYSES = ("funnel", "bottlenecks", "winloss", "roi")

HISTORY_SQL = """
CREATE TEMP TABLE bench_moves ON COMMIT DROP AS
WITH ordered AS (
    SELECT array_agg(id ORDER BY sequence, id) AS ids FROM crm_stage
), leads AS (
    SELECT l.id, l.create_date, l.date_closed, array_position(o.ids, l.stage_id) AS pos, o.ids
      FROM crm_lead l CROSS JOIN ordered o
     WHERE l.stage_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM mail_message m
                        JOIN mail_tracking_value v ON v.mail_message_id = m.id
                       WHERE m.model = 'crm.lead' AND m.res_id = l.id AND v.field_id = %(field)s)
)
SELECT nextval('mail_message_id_seq') AS message_id, l.id AS lead_id,
       l.ids[g.step] AS old_stage, l.ids[g.step + 1] AS new_stage,
       LEAST(now() AT TIME ZONE 'UTC',
             l.create_date + (COALESCE(l.date_closed, l.create_date + interval '20 days' * l.pos)
                              - l.create_date) * g.step / l.pos) AS date
  FROM leads l CROSS JOIN LATERAL generate_series(1, l.pos - 1) g(step)
 WHERE l.pos > 1;
INSERT INTO mail_message (id, model, res_id, message_type, date, create_date, write_date,
                          subtype_id, body)
     SELECT message_id, 'crm.lead', lead_id, 'notification', date, date, date, %(subtype)s, ''
       FROM bench_moves;
INSERT INTO mail_tracking_value (field_id, mail_message_id, old_value_integer, new_value_integer,
                                 create_date, write_date)
     SELECT %(field)s, message_id, old_stage, new_stage, date, date FROM bench_moves;
"""


def add_history(env):
    field = env["ir.model.fields"]._get("crm.lead", "stage_id").id
    subtype = env.ref("mail.mt_note").id
    started = time.time()
    env.cr.execute(HISTORY_SQL, {"field": field, "subtype": subtype})
    env.cr.execute("SELECT COUNT(*) FROM mail_tracking_value WHERE field_id = %s", (field,))
    count = env.cr.fetchone()[0]
    print("stage history: %d tracking values of stage_id (%.1f s)" % (count, time.time() - started))
    # the dashboard's stage history table, rebuilt from them as the install fills it
    started = time.time()
    rows = env["crm.lead.stage.history"]._fill_from_tracking()
    env["crm.executive.dashboard.norm"]._invalidate_norms()
    env.cr.commit()  # the history is data for the next runs: keep it
    print("crm_lead_stage_history: %d rows (%.1f s)" % (rows, time.time() - started))


def vacuum(args):
    """VACUUM ANALYZE the tables the history step wrote, as autovacuum does after a bulk insert
    (the visibility map lets the analyses read the stage history's index alone), and the leads'
    tables: a copy of a database the generator has just filled was never vacuumed, and its
    index-only scans would read the heap (the year's funnel 3.1 s instead of 1.7 s)."""
    connection = connect(args)
    started = time.time()
    with connection.cursor() as cr:
        for table in (
            "mail_message",
            "mail_tracking_value",
            "crm_lead_stage_history",
            "crm_lead",
            "crm_lead_ai_dashboard",
        ):
            cr.execute("VACUUM ANALYZE %s" % table)
    connection.close()
    print("vacuum analyze (%.1f s)" % (time.time() - started))


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_arguments(parser)
    parser.add_argument("--history", action="store_true", help="add the stage history first")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--profile", action="store_true", help="also time each query of one more call"
    )
    parser.add_argument(
        "--periods",
        default="this month,last 365 days",
        help="comma-separated: 'this month', 'last 365 days'",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="forget the stage norms learned today before each call (the first page of the day)",
    )
    args = parser.parse_args()
    registry = open_registry(args)
    import odoo

    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        if args.history:
            add_history(env)
    if args.history:
        vacuum(args)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        admin = env.ref("base.user_admin")
        companies = admin.company_ids.ids
        env = odoo.api.Environment(cr, admin.id, {"allowed_company_ids": companies, "tz": "UTC"})
        dashboard = env["crm.executive.dashboard"]
        leads = env["crm.lead"].sudo().with_context(active_test=False).search_count([])
        print("database %s: %d leads, load average %s" % (args.database, leads, load()))
        today = date.today()
        periods = {
            "this month": (today.replace(day=1), today),
            "last 365 days": (today - timedelta(days=364), today),
        }
        periods = {label: periods[label] for label in args.periods.split(",")}
        for label, (start, stop) in periods.items():
            times = {name: [] for name in ANALYSES}
            cpu = {name: [] for name in ANALYSES}
            queries = {}
            for name in ANALYSES:
                dashboard.get_analysis(name, start, stop)  # warm the ORM caches
                env.invalidate_all()
            for _run in range(args.runs):
                for name in ANALYSES:
                    if args.cold:
                        env["crm.executive.dashboard.norm"].sudo()._invalidate_norms()
                    env.invalidate_all()
                    before = cr.sql_log_count
                    started, cpu_started = time.perf_counter(), time.process_time()
                    dashboard.get_analysis(name, start, stop)
                    times[name].append(time.perf_counter() - started)
                    cpu[name].append(time.process_time() - cpu_started)
                    queries[name] = cr.sql_log_count - before
            for name in ANALYSES:
                print(
                    "%-13s %-11s median %.2f s, best %.2f s (Odoo CPU %.2f s), %d queries, "
                    "load average %s %s"
                    % (
                        label,
                        name,
                        statistics.median(times[name]),
                        min(times[name]),
                        statistics.median(cpu[name]),
                        queries[name],
                        load(),
                        "OK (< 2 s)" if statistics.median(times[name]) < 2 else "OVER 2 s",
                    )
                )
            if args.profile:
                for name in ANALYSES:
                    if args.cold:
                        env["crm.executive.dashboard.norm"].sudo()._invalidate_norms()
                    print("%s, %s: slowest queries" % (label, name))
                    for elapsed, caller, text in profile_queries(
                        dashboard.env, partial(dashboard.get_analysis, name, start, stop)
                    )[:4]:
                        print("    %.3f s  %-28s %s" % (elapsed, caller, text))
        cr.rollback()


if __name__ == "__main__":
    main()
