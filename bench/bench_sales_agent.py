#!/usr/bin/env python3
"""Benchmark: the sales agent's follow-up and escalation crons over N open leads (not a test).

Tops the database up with the shared generator (bench/generate.py) until it holds at least
--open-leads open leads (active, not in a won stage), then, in a fresh process so that memory
figures belong to the crons only, runs each cron as a cron worker would (batches, one commit
per batch) twice: the first run does the work (activities, risk, escalations), the second shows
the steady state (idempotent: nothing more is created). Prints time, queries per open lead and
memory (RSS before, peak during) for each run.

Needs crm_sales_agent installed (it installs crm and llm_lead_scoring) and up to date
(``-u crm_sales_agent`` on a database made with an older version: risk and next action moved to
crm_sales_agent_lead_state in 17.0.1.1.0). The crons' results are committed: run it on a
scratch database.

    python3 bench/bench_sales_agent.py -d DB --open-leads 100000 [--go-live-days-ago 14] \\
        [--addons-path ...] [--db-host 127.0.0.1 --db-user odoo --db-password odoo]

All go-lives in one command, each on a fresh copy of a template database (see bench/README.md):

    python3 bench/bench_sales_agent.py -d SCRATCH --template TEMPLATE --scenarios 0,30,-1

The agent acts only on leads that went quiet after each company's go-live date (the install
date by default, so a first run right after the install creates next to nothing).
``--go-live-days-ago N`` sets every company's go-live N days before now, as on a database
where the agent has been live that long; ``--go-live-days-ago -1`` clears it (the whole
backlog, the worst case). The dry run (what the settings' preview button computes) is timed
first, then each cron is run twice. Besides wall time, the process CPU time is printed: on a
shared machine it moves less than the wall time.
"""

import argparse
import cProfile
import datetime
import os
import resource
import subprocess
import sys
import time

from benchlib import add_database_arguments, connect, open_registry

HERE = os.path.dirname(os.path.abspath(__file__))
OPEN_LEADS_SQL = """SELECT COUNT(*) FROM crm_lead l
                     WHERE l.active AND NOT EXISTS (
                           SELECT 1 FROM crm_stage s WHERE s.id = l.stage_id AND s.is_won)"""


def rss_mb():
    """Current resident memory of this process (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024.0 / 1024.0


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser)
    parser.add_argument("--open-leads", type=int, default=100000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="sales agent batch size of every company for the run (default: the setting, 500)",
    )
    parser.add_argument(
        "--go-live-days-ago",
        type=int,
        default=None,
        help="go-live of every company N days before now (-1: none, the whole backlog; "
        "default: as installed)",
    )
    parser.add_argument(
        "--template",
        help="with --scenarios: the database (modules up to date, leads generated) copied "
        "afresh into -d before each scenario; -d is dropped and re-created each time",
    )
    parser.add_argument(
        "--scenarios",
        help="comma-separated go-live values (as --go-live-days-ago) measured one after the "
        "other, each on a fresh copy of --template, e.g. 0,30,-1: go-live today (as at "
        "install), 30 days back, none (the whole backlog)",
    )
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="write a cProfile of each cron run to PREFIX-<cron>-<run>.prof (pstats format)",
    )
    parser.add_argument(
        "--no-generate",
        action="store_true",
        help="use the database as it is (internal: set for the measuring process)",
    )
    return parser.parse_args()


def top_up(args, registry):
    """Generate leads until the database has --open-leads open leads."""
    sys.path.insert(0, HERE)
    from generate import generate

    for round_ in range(4):
        with registry.cursor() as cr:
            cr.execute(OPEN_LEADS_SQL)
            open_leads = cr.fetchone()[0]
            missing = args.open_leads - open_leads
            if missing <= 0:
                return open_leads
            cr.execute("SELECT COUNT(*) FROM crm_lead")
            total = cr.fetchone()[0]
            # the generator makes won, lost and archived leads too: ask for enough
            share = (open_leads / total) if open_leads and total > 1000 else 0.5
            to_generate = int(missing / max(share, 0.2) * 1.05) + 100
            print(
                "generating %s leads (round %s, %s open so far)"
                % (to_generate, round_ + 1, open_leads)
            )
            generate(cr, leads=to_generate, seed=args.seed + round_, verbose=False)
            cr.commit()
    raise SystemExit("could not reach %s open leads" % args.open_leads)


def measure(args, registry):
    from odoo import SUPERUSER_ID, api, sql_db

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        if args.batch_size:
            env["res.company"].search([]).write({"sales_agent_batch_size": args.batch_size})
        if args.go_live_days_ago is not None:
            go_live = (
                False
                if args.go_live_days_ago < 0
                else datetime.date.today() - datetime.timedelta(days=args.go_live_days_ago)
            )
            env["res.company"].search([]).write({"sales_agent_go_live_date": go_live})
        go_lives = sorted(
            {str(d) for d in env["res.company"].search([]).mapped("sales_agent_go_live_date")}
        )
        cr.execute(OPEN_LEADS_SQL)
        open_leads = cr.fetchone()[0]
        cr.execute("SELECT COUNT(*) FROM crm_lead")
        total = cr.fetchone()[0]
        cr.execute("SELECT COUNT(*) FROM mail_message WHERE model = 'crm.lead'")
        messages = cr.fetchone()[0]
        cr.execute("SELECT COUNT(*) FROM mail_activity WHERE res_model = 'crm.lead'")
        activities = cr.fetchone()[0]
        cr.commit()
    print(
        "database          : %s leads, %s open, %s lead messages, %s planned activities"
        % (total, open_leads, messages, activities)
    )
    print("cpu count         : %s" % os.cpu_count())
    print("go-live dates     : %s" % ", ".join(go_lives))
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        started, cpu = time.monotonic(), time.process_time()
        wizard = env["crm.sales.agent.dry.run"].create({"company_id": env.company.id})
        report = {}
        for company in env["res.company"].search([]):
            wizard.company_id = company
            wizard._compute_preview()
            report[company.name] = (wizard.activity_count, wizard.escalation_count)
        cr.rollback()
    print(
        "dry run (all companies): %.1f s (cpu %.1f s); would create activities/escalations: %s"
        % (time.monotonic() - started, time.process_time() - cpu, report)
    )

    def counts(cr):
        cr.execute("""SELECT (SELECT COUNT(*) FROM mail_activity
                               WHERE res_model = 'crm.lead' AND sales_agent_rule IS NOT NULL),
                             (SELECT COUNT(*) FROM crm_sales_agent_escalation WHERE state = 'open'),
                             (SELECT COUNT(*) FROM crm_sales_agent_lead_state
                               WHERE risk_level IN ('medium', 'high'))""")
        return cr.fetchone()

    results = []
    for label, model, method in (
        ("follow-up cron", "crm.sales.agent.followup", "_cron_create_followups"),
        ("escalation cron", "crm.sales.agent.lead.state", "_cron_assess"),
    ):
        for run in (1, 2):
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                before_counts = counts(cr)
                rss_before = rss_mb()
                queries_before = sql_db.sql_counter
                profiler = cProfile.Profile() if args.profile else None
                started, cpu = time.monotonic(), time.process_time()
                if profiler:
                    profiler.enable()
                # a run that reaches its time budget triggers itself: the cron worker would
                # start it again at once; so does this loop (one "run" = the whole pass)
                parts = 1
                while not getattr(env[model], method)():
                    parts += 1
                if profiler:
                    profiler.disable()
                    profiler.dump_stats("%s-%s-%s.prof" % (args.profile, model, run))
                elapsed = time.monotonic() - started
                cpu = time.process_time() - cpu
                queries = sql_db.sql_counter - queries_before
                cr.commit()
                after_counts = counts(cr)
            results.append(
                (
                    label,
                    run,
                    elapsed,
                    queries,
                    rss_before,
                    peak_mb(),
                    before_counts,
                    after_counts,
                    cpu,
                )
            )
            print(
                "%-16s run %s: %6.1f s (cpu %.1f s%s), %7d queries, %.3f queries/open lead,"
                " RSS before %.0f MB,"
                " peak so far %.0f MB; agent activities %s -> %s, open escalations %s -> %s,"
                " leads at risk %s -> %s; load average %s"
                % (
                    label,
                    run,
                    elapsed,
                    cpu,
                    "" if parts == 1 else ", in %s runs of at most 90 s" % parts,
                    queries,
                    queries / max(open_leads, 1),
                    rss_before,
                    peak_mb(),
                    before_counts[0],
                    after_counts[0],
                    before_counts[1],
                    after_counts[1],
                    before_counts[2],
                    after_counts[2],
                    load(),
                )
            )
            sys.stdout.flush()
    total_first = sum(r[2] for r in results if r[1] == 1)
    cpu_first = sum(r[8] for r in results if r[1] == 1)
    print(
        "both crons, first runs: %.1f s wall, %.1f s Odoo CPU for %s open leads (target < 60 s);"
        " load average %s" % (total_first, cpu_first, open_leads, load())
    )
    print("peak memory (RSS) : %.0f MB" % peak_mb())


def load():
    return " ".join("%.1f" % x for x in os.getloadavg())


def copy_template(args):
    """Drop -d and create it again as a copy of --template."""
    connection = connect(args, "postgres")
    with connection.cursor() as cr:
        cr.execute('DROP DATABASE IF EXISTS "%s"' % args.database.replace('"', ""))
        cr.execute(
            'CREATE DATABASE "%s" TEMPLATE "%s"'
            % (args.database.replace('"', ""), args.template.replace('"', ""))
        )
    connection.close()


def run_scenarios(args):
    """Each go-live of --scenarios on a fresh copy of --template, in its own process."""
    if not args.template or args.template == args.database:
        raise SystemExit("--scenarios needs --template, a database other than -d")
    argv = [a for a in sys.argv[1:]]
    for option in ("--scenarios", "--template", "--go-live-days-ago"):
        while option in argv:
            index = argv.index(option)
            del argv[index : index + 2]
    argv = [a for a in argv if not a.startswith(("--scenarios=", "--template=", "--go-live"))]
    status = 0
    for value in args.scenarios.split(","):
        copy_template(args)
        print(
            "\n=== go-live %s (fresh copy of %s), load average %s ==="
            % (
                {"0": "today, as at install", "-1": "none: the whole backlog"}.get(
                    value.strip(), "%s days back" % value.strip()
                ),
                args.template,
                load(),
            )
        )
        sys.stdout.flush()
        command = [sys.executable, os.path.abspath(__file__), "--no-generate"] + argv
        command += ["--go-live-days-ago", value.strip()]
        status = subprocess.call(command) or status
    return status


def main():
    args = parse_args()
    if args.scenarios:
        raise SystemExit(run_scenarios(args))
    registry = open_registry(args)
    if not args.no_generate:
        top_up(args, registry)
        # measure in a fresh process: the generator's memory must not count
        command = [sys.executable, os.path.abspath(__file__), "--no-generate"] + sys.argv[1:]
        raise SystemExit(subprocess.call(command))
    measure(args, registry)


if __name__ == "__main__":
    main()
