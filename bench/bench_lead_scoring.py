"""Benchmark: background AI scoring of N leads against a local LLM server (not a test).

Creates N pending leads in a database where llm_lead_scoring is installed, points a provider at
a local OpenAI-compatible server answering after --latency seconds (in its own process, as a real
provider is: its CPU is not Odoo's), runs the scoring cron as a cron worker would (with its
commits) and prints leads/s next to the limit concurrency / latency, queries per lead and peak
memory. The leads and the provider are deleted afterwards.

    python3 bench/bench_lead_scoring.py -d DB --leads 1000 --latency 0.3 --concurrency 8
"""

import argparse
import cProfile
import json
import multiprocessing
import os
import resource
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchlib import add_database_arguments, open_registry

ANSWER = json.dumps(
    {
        "choices": [
            {
                "message": {
                    "content": json.dumps(
                        {
                            "clarity": 70,
                            "summary": "A benchmark answer of a few words.",
                            "strengths": ["a"],
                            "risks": ["b"],
                            "next_action": "Call the buyer.",
                        }
                    )
                }
            }
        ],
        "usage": {"prompt_tokens": 300, "completion_tokens": 60},
    }
).encode()


def serve(latency, port_pipe):
    """The provider: its own process, as a real one is, so that its CPU is not Odoo's."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # as real servers (uvicorn, llama.cpp) do: without it, the body written after the
        # headers waits for the client's delayed ACK, about 40 ms per answer on Linux
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            self.wfile.write(ANSWER)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port_pipe.send(httpd.server_address[1])
    httpd.serve_forever()


def start_server(latency):
    """Start the provider process; return (process, port)."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=serve, args=(latency, child), daemon=True
    )
    process.start()
    return process, parent.recv()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser)
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="write a cProfile of the cron's main thread to FILE (pstats format)",
    )
    args = parser.parse_args()

    from odoo import SUPERUSER_ID, api, sql_db

    server, port = start_server(args.latency)  # forked before Odoo opens connections
    registry = open_registry(args)
    settings = {"llm_batch_size": args.batch_size}
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        saved = {key: env.company[key] for key in settings}
        env.company.write(settings)
        inactive = env["llm.provider"].search([])
        inactive.write({"active": False})
        provider = env["llm.provider"].create(
            {
                "name": "Benchmark server",
                "provider_type": "openai_compatible",
                "base_url": "http://127.0.0.1:%s/v1" % port,
                "is_default": True,
                "max_retries": 0,
                "timeout": 30,
                "concurrency": args.concurrency,
            }
        )
        # the rest of the backlog stays out of the way
        cr.execute("SELECT id FROM crm_lead WHERE ai_enrichment_status IN ('pending', 'failed')")
        parked = [row[0] for row in cr.fetchall()]
        cr.execute(
            "UPDATE crm_lead SET ai_enrichment_status = 'completed' WHERE id = ANY(%s)", [parked]
        )
        leads = env["crm.lead"].create(
            [
                {
                    "name": "Benchmark lead %s" % i,
                    "email_from": "b%s@example.com" % i,
                    "contact_name": "Contact %s" % i,
                    "phone": "+1 555 %04d" % i,
                    "description": "<p>Need %s licences by Q3, budget %sk EUR, "
                    "the CFO approves.</p>" % (i, i),
                }
                for i in range(args.leads)
            ]
        )
        lead_ids = leads.ids
    registry.clear_cache()
    try:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["llm.service"]._get_config()
            queries_before = sql_db.sql_counter
            profiler = cProfile.Profile() if args.profile else None
            started, cpu = time.monotonic(), time.process_time()
            if profiler:
                profiler.enable()
            env["crm.lead"]._cron_enrich_leads(time_budget=3600)
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            elapsed = time.monotonic() - started
            cpu = time.process_time() - cpu
            queries = sql_db.sql_counter - queries_before
            cr.execute(
                "SELECT ai_enrichment_status, count(*) FROM crm_lead WHERE id = ANY(%s) GROUP BY 1",
                [lead_ids],
            )
            statuses = dict(cr.fetchall())
    finally:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["crm.lead"].browse(lead_ids).unlink()
            env["llm.provider"].browse(provider.id).unlink()
            inactive.with_env(env).write({"active": True})
            cr.execute(
                "UPDATE crm_lead SET ai_enrichment_status = 'pending' WHERE id = ANY(%s)", [parked]
            )
            env.company.write(saved)
        server.terminate()
    rate = args.leads / elapsed
    limit = args.concurrency / args.latency
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("leads scored      : %s (%s)" % (args.leads, statuses))
    print("time              : %.1f s (Odoo process CPU %.1f s, all threads)" % (elapsed, cpu))
    print("throughput        : %.1f leads/s" % rate)
    print(
        "limit             : %.1f leads/s (concurrency %s / latency %.2f s)"
        % (limit, args.concurrency, args.latency)
    )
    print("share of limit    : %.0f %%" % (100.0 * rate / limit))
    print("queries per lead  : %.2f (%s queries)" % (queries / args.leads, queries))
    print("peak memory (RSS) : %.0f MB" % peak_mb)
    print(
        "batch size        : %s; load average after the run: %s"
        % (args.batch_size, " ".join("%.2f" % x for x in os.getloadavg()))
    )


if __name__ == "__main__":
    main()
