#!/usr/bin/env python3
"""End-to-end run against a real local model (not a test): AI scoring and drafting in Odoo.

Points an OpenAI-compatible provider at a local LLM server (e.g. llama-cpp-python's, see
OPERATIONS.md, "CPU-only local model"), queues N demo leads for AI scoring, runs the scoring
cron as a cron worker would (batches, commits) until the queue is empty or --time-limit, then
makes a few drafts through the drafting wizard (``crm.sales.agent.draft``, as "Draft with AI"
does: the click queues an AI job and returns; the AI job cron writes the draft), and prints
from the AI call log (``llm.call.log``) how many answers were usable and why the others were
rejected, the latency per call, how many drafts the LLM made versus the
template, and that no lead stayed *processing*.

Needs llm_lead_scoring and crm_sales_agent installed with demo data. Commits: run it on a
scratch database. The provider it creates is the company's default while it runs and is
archived at the end (the call log keeps its rows).

    python3 bench/e2e_local_model.py -d DB --db-port 5433 --addons-path /opt/odoo17/addons,. \\
        --base-url http://127.0.0.1:8011/v1 --leads 10 --drafts 4 --timeout 120
"""

import argparse
import collections
import statistics
import time

from benchlib import add_database_arguments, open_registry


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_database_arguments(parser)
    parser.add_argument("--base-url", default="http://127.0.0.1:8011/v1")
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--leads", type=int, default=10, help="demo leads queued for scoring")
    parser.add_argument("--drafts", type=int, default=4, help="drafts made (email, sms, ...)")
    # left unset, the provider's own defaults for an OpenAI-compatible server apply
    parser.add_argument("--timeout", type=int, help="provider timeout (s)")
    parser.add_argument("--max-retries", type=int)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--structured-output", help="e.g. llama_cpp, json_schema, none")
    parser.add_argument(
        "--report-only",
        metavar="SINCE",
        help="run nothing: print the figures of the calls logged since SINCE (UTC, "
        "'YYYY-MM-DD HH:MM:SS') for the leads given by --lead-ids",
    )
    parser.add_argument("--lead-ids", default="", help="with --report-only: 1,2,3")
    parser.add_argument(
        "--time-limit", type=int, default=1200, help="stop running the scoring cron after (s)"
    )
    return parser.parse_args()


def fmt_ms(values):
    if not values:
        return "-"
    values = sorted(values)
    return (
        f"n={len(values)} median {statistics.median(values) / 1000:.1f} s, "
        f"min {values[0] / 1000:.1f} s, max {values[-1] / 1000:.1f} s"
    )


def main():
    args = parse_args()
    registry = open_registry(args)
    from odoo import SUPERUSER_ID, api

    if args.report_only:
        lead_ids = [int(i) for i in args.lead_ids.split(",") if i]
        report(registry, args.report_only, lead_ids, 0, 0, [])
        return
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        started_at = env.cr.now()
        company = env.ref("base.main_company")
        Provider = env["llm.provider"].with_context(active_test=False)
        # this run's provider alone: the others are archived (a scratch database)
        env["llm.provider"].search([]).write({"active": False})
        values = {
            "name": f"E2E local model {time.strftime('%H:%M:%S')}",
            "provider_type": "openai_compatible",
            "base_url": args.base_url,
            "model_name": args.model,
            "timeout": args.timeout,
            "max_retries": args.max_retries,
            "concurrency": args.concurrency,
            "max_tokens": args.max_tokens,
            "structured_output": args.structured_output,
            "temperature": 0.2,
            "is_default": True,
            "company_id": company.id,
        }
        values = {k: v for k, v in values.items() if k in Provider._fields and v is not None}
        provider = Provider.create(values)
        company.write(
            {
                k: v
                for k, v in {
                    "llm_auto_enrich_enabled": True,
                    "llm_purpose_scoring": True,
                    "llm_purpose_drafting": True,
                    "llm_batch_size": max(args.leads, 1),
                }.items()
                if k in company._fields
            }
        )
        Lead = env["crm.lead"]
        leads = Lead.search(
            [("company_id", "in", [company.id, False]), ("stage_id.is_won", "=", False)],
            order="id",
            limit=args.leads,
        )
        # only these leads in the queue: the rest keep what the install gave them
        others = Lead.search(
            [("ai_enrichment_status", "in", ["pending", "failed"]), ("id", "not in", leads.ids)]
        )
        if others:
            cr.execute(
                "UPDATE crm_lead SET ai_enrichment_status = 'completed' WHERE id IN %s",
                (tuple(others.ids),),
            )
        leads.action_ai_queue()
        lead_ids = leads.ids
        settings = ", ".join(
            f"{name} {provider[name]}"
            for name in ("timeout", "max_retries", "concurrency", "max_tokens", "structured_output")
            if name in provider._fields
        )
        print(f"provider {provider.name}: {args.base_url} model {args.model}, {settings}")
        print(f"queued {len(lead_ids)} leads for AI scoring ({len(others)} others left out)")
        cr.commit()

    # the scoring cron, as a cron worker runs it, until the queue is empty or time is up
    t0 = time.monotonic()
    runs = 0
    while time.monotonic() - t0 < args.time_limit:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["crm.lead"]._cron_enrich_leads()  # one run, with the cron's own time budget
            runs += 1
            cr.commit()
            env.invalidate_all()
            left = env["crm.lead"].search_count(
                [("id", "in", lead_ids), ("ai_enrichment_status", "in", ["pending", "processing"])]
            )
            print(f"  cron run {runs}: {time.monotonic() - t0:.0f} s, {left} leads still queued")
            if not left:
                break
            time.sleep(2)
    scoring_wall = time.monotonic() - t0

    # drafts, as a salesperson makes them from the lead form: the click only queues
    draft_rows = []
    kinds = ["email", "sms", "email", "call_script"]
    draft_ids, clicks = [], []
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        admin = env.ref("base.user_admin")
        denv = api.Environment(cr, admin.id, {"lang": admin.lang or "en_US"})
        Draft = denv["crm.sales.agent.draft"]
        kind_values = dict(Draft._fields["kind"].selection)
        for i, lead_id in enumerate(lead_ids[: args.drafts]):
            kind = kinds[i % len(kinds)]
            if kind not in kind_values:
                kind = "email"
            draft = Draft.create({"lead_id": lead_id, "kind": kind})
            t = time.monotonic()
            draft.action_generate()
            clicks.append(time.monotonic() - t)
            draft_ids.append(draft.id)
        cr.commit()
    print(f"drafts queued: {len(draft_ids)}, click {fmt_ms([c * 1000 for c in clicks])}")
    # the AI job cron, as a cron worker runs it, until no draft is being written
    t0 = time.monotonic()
    job_runs = 0
    while draft_ids and time.monotonic() - t0 < args.time_limit:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["llm.job"]._cron_run_jobs()
            job_runs += 1
            cr.commit()
            env.invalidate_all()
            drafts = env["crm.sales.agent.draft"].browse(draft_ids)
            working = drafts.filtered(lambda d: d.state == "working")
            print(
                f"  job cron run {job_runs}: {time.monotonic() - t0:.0f} s, {len(working)} "
                "drafts still being written"
            )
            if not working:
                break
            time.sleep(2)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        for draft in env["crm.sales.agent.draft"].browse(draft_ids):
            draft_rows.append(
                (
                    f"{draft.kind} ({draft.state})",
                    draft.is_template,
                    time.monotonic() - t0,
                    draft.generation_note or "",
                    len(draft.body or ""),
                )
            )

    report(registry, started_at, lead_ids, runs, scoring_wall, draft_rows)


def report(registry, started_at, lead_ids, runs, scoring_wall, draft_rows):
    """Print the figures of the calls logged since started_at."""
    from odoo import SUPERUSER_ID, api

    # the figures, from the AI call log
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        logs = env["llm.call.log"].search([("date", ">=", started_at)], order="id")
        leads = env["crm.lead"].browse(lead_ids)
        print()
        print(f"scoring: {len(lead_ids)} leads, cron runs {runs}, {scoring_wall:.0f} s wall")
        by_purpose = collections.defaultdict(list)
        for log in logs:
            by_purpose[log.purpose].append(log)
        for purpose, rows in sorted(by_purpose.items()):
            outcomes = collections.Counter(r.outcome for r in rows)
            print(
                f"  {purpose}: {len(rows)} calls, "
                + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
                + f", attempts {sum(r.attempts for r in rows)}"
            )
            print(f"    latency, all calls: {fmt_ms([r.latency_ms for r in rows])}")
            ok = [r.latency_ms for r in rows if r.outcome == "ok"]
            if ok:
                print(f"    latency, usable answers: {fmt_ms(ok)}")
            toks = [r.tokens_out for r in rows if r.tokens_out]
            if toks:
                print(f"    tokens out: median {statistics.median(toks)}, max {max(toks)}")
            reasons = collections.Counter(
                f"{r.outcome}/{r.error_kind or '-'}: {(r.error or '')[:110]}"
                for r in rows
                if r.outcome != "ok"
            )
            for reason, count in reasons.most_common():
                print(f"    {count} x {reason}")
            # what the model wrote when it was refused (the managers' excerpt in the log)
            for r in [r for r in rows if r.outcome == "invalid" and r.error_detail][:4]:
                print(f"    e.g. {r.error_detail[:160]!r}")
        statuses = collections.Counter(leads.mapped("ai_enrichment_status"))
        print(f"  lead statuses: {dict(statuses)}")
        processing = leads.filtered(lambda lead: lead.ai_enrichment_status == "processing")
        print(f"  leads still processing: {len(processing)}")
        by_ai = [
            lead
            for lead in leads
            if lead.ai_enrichment_status == "completed" and not lead.ai_enrichment_error
        ]
        print(f"  leads completed without an AI error: {len(by_ai)}")
        for lead in leads[:3]:
            print(
                f"    e.g. {lead.name[:40]!r}: {lead.ai_enrichment_status}, "
                f"summary {(lead.ai_analysis_summary or '')[:100]!r}, "
                f"next action {(lead.ai_next_action or '')[:80]!r}, "
                f"error {(lead.ai_enrichment_error or '')[:80]!r}"
            )
        print()
        llm_made = sum(1 for row in draft_rows if not row[1])
        if not draft_rows:
            print("drafts: see the drafting calls above (no usable answer: template-based)")
        print(
            f"drafts: {len(draft_rows)}, by the LLM {llm_made}, "
            f"template-based {len(draft_rows) - llm_made}"
        )
        for kind, is_template, _elapsed, note, size in draft_rows:
            print(
                f"  {kind}: {'template' if is_template else 'LLM'}, " f"{size} chars, {note[:160]}"
            )
        env["llm.provider"].search([("name", "like", "E2E local model")]).write({"active": False})
        cr.commit()


if __name__ == "__main__":
    main()
