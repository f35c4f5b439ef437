"""Copilot benchmark: 50 questions with known answers, time per answer, retrieval time.

Runs the copilot without a provider (the parser; the time excludes any LLM latency) on a
benchmark database where crm_sales_agent is installed (a copy: ``createdb -T dash_bench100k
h7_bench`` then ``odoo-bin -i crm_sales_agent -u crm_executive_dashboard,llm_lead_scoring -d
h7_bench``, the update when the copy's modules are older than the code). The known answers
are computed here independently: KPIs by the dashboard's own API (``get_dashboard_data``) for
the same period and filters, lists by ORM counts of their definition. "My" questions and the
second series of searches are asked by the salesperson with most leads among those who read
only their own and unassigned leads (record rules). Nothing is kept: every question runs in a
transaction that is rolled back. Prints the load average before and after, and the Odoo
process CPU time of the answers.

    python3 bench/bench_copilot.py -d h7_bench --addons-path=...
    python3 bench/bench_copilot.py -d h7_bench1m --retrieval-only --addons-path=...
"""

import argparse
import os
import statistics
import sys
import time
from datetime import date, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import add_database_arguments, open_registry  # noqa: E402

# common words of the generated data (subjects, message bodies), a company name, two words
SEARCH_WORDS = ("renewal", "analytics pilot", "novaworks", "pricing", "demo", "contract")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser)
    parser.add_argument("--manager", default="admin", help="login asking the team questions")
    parser.add_argument("--salesperson", default=None, help="login asking 'my' questions")
    parser.add_argument("--retrieval-only", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each retrieval")
    return parser.parse_args()


def period(key, today):
    """The period of the questions, computed here (not by the copilot)."""
    quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    if key == "this_month":
        return today.replace(day=1), today
    if key == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    if key == "this_quarter":
        return quarter, today
    if key == "last_quarter":
        end = quarter - timedelta(days=1)
        return date(end.year, 3 * ((end.month - 1) // 3) + 1, 1), end
    if key == "this_year":
        return today.replace(month=1, day=1), today
    if key == "last_year":
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    return today - timedelta(days=int(key) - 1), today  # last N days


def questions(env, team, person):
    """(question, tool, expected args, expected value or None, user: 'manager'/'sales')."""
    kpi_phrases = {
        "total_leads": "How many leads",
        "total_opportunities": "How many opportunities",
        "won_opportunities": "How many deals did we win",
        "lost_opportunities": "How many deals did we lose",
        "won_revenue": "What revenue did we win",
        "conversion_rate": "What is the conversion rate",
        "win_rate": "What is the win rate",
        "avg_deal_size": "What is the average deal size",
        "avg_sales_cycle_days": "What is the average sales cycle",
        "pipeline_value": "What is the pipeline value",
        "weighted_pipeline": "What is the weighted pipeline",
    }
    periods = {
        "this_month": "this month",
        "last_month": "last month",
        "this_quarter": "this quarter",
        "last_quarter": "last quarter",
        "this_year": "this year",
        "last_year": "last year",
        "90": "in the last 90 days",
    }
    out = []
    period_keys = list(periods)
    for i, (metric, phrase) in enumerate(kpi_phrases.items()):
        for j, (who, filters) in enumerate(
            (("", {}), (" for %s" % team, {"team": team}), (" for %s" % person, {"person": person}))
        ):
            key = period_keys[(i + j) % len(period_keys)]
            out.append(
                (
                    "%s%s %s?" % (phrase, who, periods[key]),
                    "kpi",
                    dict(filters, metric=metric, key=key),
                )
            )
    out += [
        ("Pipeline by stage this year", "pipeline_by_stage", {"key": "this_year"}),
        (
            "Pipeline by stage for %s last year" % team,
            "pipeline_by_stage",
            {"key": "last_year", "team": team},
        ),
        ("Leads by source this quarter", "breakdown", {"by": "source", "key": "this_quarter"}),
        ("Leads by team this year", "breakdown", {"by": "team", "key": "this_year"}),
        (
            "Leads per salesperson last month",
            "breakdown",
            {"by": "salesperson", "key": "last_month"},
        ),
        ("Lost reasons this year", "breakdown", {"by": "lost_reason", "key": "this_year"}),
        ("My opportunities at risk", "list_at_risk", {"sales": True}),
        ("My leads not contacted for 14 days", "list_not_contacted", {"days": 14, "sales": True}),
        ("Top scored leads", "list_top_scored", {"by": "quality"}),
        ("Which leads are most likely to win?", "list_top_scored", {"by": "win_probability"}),
        ("My overdue activities", "list_overdue_activities", {"sales": True}),
        ("Open escalations", "list_escalations", {}),
        ("Top scored leads this month", "list_top_scored", {"by": "quality"}),
    ]
    for lead in env["crm.lead"].search([], order="id desc", limit=50):
        if env["crm.lead"].search_count([("name", "ilike", lead.name)]) == 1:
            break  # names repeat in generated data: a lead named once
    out += [
        ("Summarise %s" % lead.name, "lead_summary", {"lead": lead.name, "id": lead.id}),
    ]
    for word in SEARCH_WORDS[:3]:
        out.append(("search %s" % word, "search_crm", {"query": word}))
    return out


def own_documents_salesperson(env, manager):
    """The salesperson with most leads in the manager's company among those who read only
    their own and unassigned leads (the record rule ``crm_rule_personal_lead``)."""
    all_leads = env.ref("sales_team.group_sale_salesman_all_leads").users
    groups = env["crm.lead"]._read_group(
        [
            ("user_id", "not in", [False, manager.id] + all_leads.ids),
            ("company_id", "=", manager.company_id.id),
        ],
        ["user_id"],
        ["__count"],
        order="__count desc",
        limit=1,
    )
    return groups[0][0]


def expected_value(env, tool, spec, today, team_ids, user_ids):
    """The known answer: the dashboard's figure, or an ORM count of the list's definition."""
    from odoo.addons.crm_executive_dashboard.models.crm_executive_dashboard import OPEN_DOMAIN

    if tool == "kpi":
        start, end = period(spec["key"], today)
        data = env["crm.executive.dashboard"].get_dashboard_data(start, end, team_ids, user_ids)
        return data["kpis"][spec["metric"]]["value"]
    if tool == "pipeline_by_stage":
        start, end = period(spec["key"], today)
        data = env["crm.executive.dashboard"].get_dashboard_data(start, end, team_ids, None)
        return {s["name"]: s["count"] for s in data["pipeline"]}
    Lead = env["crm.lead"]
    if tool == "list_at_risk":
        return Lead.search_count(
            OPEN_DOMAIN
            + [
                ("type", "=", "opportunity"),
                ("user_id", "=", env.uid),
                ("sales_agent_risk_level", "in", ("medium", "high")),
            ]
        )
    if tool == "list_top_scored":
        field = "ai_win_probability" if spec["by"] == "win_probability" else "ai_probability_score"
        return Lead.search_count(OPEN_DOMAIN + [(field, ">", 0)])
    if tool == "list_overdue_activities":
        return env["mail.activity"].search_count(
            [
                ("res_model", "=", "crm.lead"),
                ("user_id", "=", env.uid),
                ("date_deadline", "<", today),
            ]
        )
    if tool == "list_escalations":
        return env["crm.sales.agent.escalation"].search_count([("state", "=", "open")])
    return None


def run_questions(args, registry):
    from odoo import SUPERUSER_ID, api, fields

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        manager = env["res.users"].search([("login", "=", args.manager)])
        if args.salesperson:
            sales = env["res.users"].search([("login", "=", args.salesperson)])
        else:
            sales = own_documents_salesperson(env, manager)
        team = env["crm.team"].search(
            [("company_id", "in", (False, manager.company_id.id)), ("member_ids", "!=", False)],
            limit=1,
        ) or env["crm.team"].search([], limit=1)
        team_name, person = team.name, sales.name
        team_id, person_id = team.id, sales.id
        manager_id, sales_login = manager.id, sales.login
        question_list = questions(env(user=manager.id), team_name, person)
    print(
        "database %s: as %s (manager) and %s (salesperson); team %r"
        % (args.database, args.manager, sales_login, team_name)
    )
    times, cpu_times, by_tool, exact, failures = [], [], {}, 0, []
    for question, tool, spec in question_list:
        with registry.cursor() as cr:
            uid = person_id if spec.get("sales") else manager_id
            env = api.Environment(cr, uid, {})
            Copilot = env["crm.copilot"]
            today = fields.Date.context_today(Copilot)
            team_ids = [team_id] if spec.get("team") else None
            user_ids = [person_id] if spec.get("person") else None
            expected = expected_value(env, tool, spec, today, team_ids, user_ids)
            started, cpu = time.perf_counter(), time.process_time()
            answer = Copilot.ask(question)
            times.append((time.perf_counter() - started) * 1000)
            cpu_times.append((time.process_time() - cpu) * 1000)
            by_tool.setdefault(tool, []).append(times[-1])
            plan = Copilot._copilot_parse(question)
            ok = bool(plan) and plan[0][0] == tool and not answer["error"]
            figures = answer["figures"]
            if ok and tool in (
                "kpi",
                "list_at_risk",
                "list_top_scored",
                "list_overdue_activities",
                "list_escalations",
            ):
                ok = len(figures) == 1 and figures[0]["value"] == expected
            elif ok and tool == "pipeline_by_stage":
                ok = {f["label"]: f["value"] for f in figures} == expected
            elif ok and tool == "breakdown":
                lead_model = env["crm.lead"].with_context(active_test=False)
                ok = all(lead_model.search_count(f["domain"]) == f["value"] for f in figures)
            elif ok and tool == "lead_summary":
                ok = [r["id"] for r in answer["records"]] == [spec["id"]]
            elif ok and tool == "search_crm":
                ok = bool(answer["records"])
            elif ok and tool == "list_not_contacted":
                ok = len(figures) == 1
            exact += ok
            if not ok:
                failures.append(
                    (question, expected, [f["value"] for f in figures][:5], answer["error"])
                )
            cr.rollback()
    times.sort()
    print("questions: %s, answered exactly: %s" % (len(question_list), exact))
    for failure in failures:
        print("  NOT EXACT: %r expected %r got %r error %r" % failure)
    print(
        "time per answer (ms, no LLM): median %.0f, p90 %.0f, max %.0f; Odoo process CPU per "
        "answer: median %.0f ms, total %.1f s"
        % (
            statistics.median(times),
            times[int(len(times) * 0.9) - 1],
            times[-1],
            statistics.median(cpu_times),
            sum(cpu_times) / 1000,
        )
    )
    for tool, tool_times in sorted(by_tool.items()):
        print(
            "  %s: %s questions, median %.0f ms, max %.0f ms"
            % (tool, len(tool_times), statistics.median(tool_times), max(tool_times))
        )


def run_retrieval(args, registry):
    """``_copilot_search`` of each word as the manager and as a salesperson who reads only his
    own and unassigned leads (record rules), ``--repeat`` runs each; the time of a word is the
    median of its runs."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        cr.execute("SELECT COUNT(*) FROM mail_message WHERE model = 'crm.lead'")
        messages = cr.fetchone()[0]
        cr.execute("SELECT COUNT(*) FROM crm_lead")
        leads = cr.fetchone()[0]
        manager = env["res.users"].search([("login", "=", args.manager)])
        users = [manager]
        if args.salesperson:
            users.append(env["res.users"].search([("login", "=", args.salesperson)]))
        else:
            users.append(own_documents_salesperson(env, manager))
        times = []
        for user in users:
            Copilot = env["crm.copilot"].with_user(user)
            for word in SEARCH_WORDS:
                runs = []
                for _run in range(args.repeat):
                    started = time.perf_counter()
                    hits = Copilot._copilot_search(word)
                    runs.append((time.perf_counter() - started) * 1000)
                times.append(statistics.median(runs))
                print(
                    "  %s: search %r: %s hits, median %.0f ms, max %.0f ms (%s runs)"
                    % (user.login, word, len(hits), times[-1], max(runs), args.repeat)
                )
        cr.rollback()
    times.sort()
    print(
        "retrieval over %s leads, %s lead messages (%s searches): median %.0f ms, p90 %.0f ms, "
        "max %.0f ms"
        % (
            leads,
            messages,
            len(times),
            statistics.median(times),
            times[max(int(len(times) * 0.9) - 1, 0)],
            times[-1],
        )
    )


def main():
    args = parse_args()
    registry = open_registry(args)
    print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    if not args.retrieval_only:
        run_questions(args, registry)
    run_retrieval(args, registry)
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
