#!/usr/bin/env python3
"""Benchmark data generator of the CRM suite (Odoo 17.0).

Fills a database where ``crm`` and ``llm_lead_scoring`` are installed with realistic CRM data,
by bulk SQL only (``INSERT ... SELECT generate_series``): sales teams and salespeople, stages,
lost reasons, three currencies with rates and two extra companies in other currencies, customer
companies, leads and opportunities spread over two years (open, won, lost, archived),
planned activities, chatter messages (emails in, messages out, done activities, notes),
AI scores with their history.

Python API (the cursor can be an Odoo cursor or a psycopg2 cursor; nothing is committed)::

    sys.path.insert(0, "/path/to/repo/bench")
    from generate import generate
    counts = generate(cr, leads=100000, seed=42, scored_ratio=0.6)

Command line (commits at the end)::

    python3 bench/generate.py -d DB --leads 100000 --seed 42 \\
        [--db-host 127.0.0.1 --db-port 5432 --db-user odoo --db-password odoo]

Every random draw is ``hashint8extended(key, salt)`` of the row number and of a name, so one
seed on one database state gives the same rows whatever the query plan. Dates are relative to
``now`` (default: the current UTC hour); pass ``now`` / ``--now`` for identical dates on
another day. See README.md next to this file.
"""

import argparse
import datetime
import importlib.util
import json
import os
import sys
import time
import zlib

MAIN_TEAM_SHARE = 0.72  # leads of the teams of the main company (split evenly)
FOREIGN_TEAM_SHARES = (0.12, 0.08)  # leads of the teams of the two foreign-currency companies
NO_TEAM_SHARE = 0.08  # leads without sales team
UNASSIGNED_SHARE = 0.12  # leads without salesperson
LEAD_TYPE_SHARE = 0.30  # type 'lead' (the rest are opportunities)
WIN_RATE = 0.42  # of closed opportunities
ARCHIVED_SHARE = 0.03  # archived without being lost
PENDING_SHARE = 0.04  # AI status pending (of all leads, after the scored ones)
FAILED_SHARE = 0.015  # AI status failed
SALESPEOPLE_PER_TEAM = 6
HOME_TEAMS = 3  # teams of the main company (existing active ones are reused)

# units of each currency for one USD (rates are stored relative to each company's currency)
BASE_RATES = {
    "USD": 1.0,
    "EUR": 0.92,
    "GBP": 0.79,
    "CHF": 0.88,
    "CAD": 1.36,
    "AUD": 1.52,
    "INR": 83.1,
    "JPY": 149.0,
}
BENCH_CURRENCIES = ("USD", "EUR", "GBP", "CHF")
FOREIGN_COMPANY_NAMES = {
    "EUR": "Bench Europe",
    "GBP": "Bench UK",
    "USD": "Bench US",
    "CHF": "Bench Switzerland",
}

DEFAULT_STAGES = (
    ("New", 1, False),
    ("Qualified", 2, False),
    ("Proposition", 3, False),
    ("Won", 70, True),
)
LOST_REASONS = (
    "Too expensive",
    "We don't have people/skills",
    "Not enough stock",
    "Chose a competitor",
    "No budget",
    "No answer from the customer",
    "Timing not right",
)

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Lucas",
    "Emma",
    "Louis",
    "Chloe",
    "Noah",
    "Lea",
    "Hugo",
    "Manon",
    "Arthur",
    "Camille",
    "Jonas",
    "Mia",
    "Finn",
    "Hannah",
    "Leon",
    "Sofia",
    "Oliver",
    "Amelia",
    "George",
    "Isla",
    "Arjun",
    "Priya",
    "Rohan",
    "Ananya",
    "Vikram",
    "Kavya",
    "Pieter",
    "Lotte",
    "Wout",
    "Ines",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Jackson",
    "White",
    "Dubois",
    "Lambert",
    "Martens",
    "Peeters",
    "Janssens",
    "Maes",
    "Bernard",
    "Durand",
    "Lefebvre",
    "Moreau",
    "Muller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Evans",
    "Walker",
    "Wright",
    "Hughes",
    "Green",
    "Hall",
    "Sharma",
    "Patel",
    "Gupta",
    "Singh",
    "Iyer",
    "Reddy",
    "Nair",
    "Kumar",
    "Claes",
    "Wouters",
]
COMPANY_WORDS_A = [
    "North",
    "Blue",
    "Bright",
    "Silver",
    "Green",
    "Rapid",
    "Prime",
    "Global",
    "Alpha",
    "Summit",
    "Urban",
    "Pacific",
    "Atlas",
    "Nova",
    "Vertex",
    "Crystal",
    "Iron",
    "Golden",
    "Smart",
    "Red",
    "Delta",
    "Quantum",
    "Eagle",
    "Metro",
    "Oak",
    "Pioneer",
    "Sterling",
    "Harbor",
    "Apex",
    "Cedar",
]
COMPANY_WORDS_B = [
    "wind",
    "stone",
    "field",
    "bridge",
    "point",
    "wave",
    "line",
    "gate",
    "works",
    "tech",
    "logic",
    "soft",
    "core",
    "path",
    "labs",
    "mark",
    "ridge",
    "view",
    "hub",
    "craft",
    "way",
    "net",
    "star",
    "dale",
    "ware",
]
COMPANY_FORMS = [
    "Ltd",
    "Inc",
    "SA",
    "GmbH",
    "BV",
    "Group",
    "Solutions",
    "Logistics",
    "Industries",
    "Consulting",
    "Systems",
    "Retail",
]
JOB_TITLES = [
    "CEO",
    "CFO",
    "CTO",
    "IT Director",
    "Purchasing Manager",
    "Operations Manager",
    "Office Manager",
    "Sales Director",
    "Founder",
    "Head of Procurement",
    "Project Manager",
    "Assistant",
]
SUBJECTS = [
    "ERP implementation",
    "Website redesign",
    "Office furniture",
    "50 laptops",
    "Support contract",
    "Training session",
    "CRM rollout",
    "Cloud migration",
    "Annual maintenance",
    "Consulting days",
    "Warehouse scanners",
    "License renewal",
    "Marketing automation",
    "Data analytics pilot",
    "Security audit",
    "New branch setup",
    "Printer fleet",
    "Mobile app",
    "POS terminals",
    "Custom development",
]
MAIL_PROVIDERS = ["gmail.com", "outlook.com", "yahoo.com", "hotmail.com"]
ACTIVITY_SUMMARIES = [
    "Follow up",
    "Send the proposal",
    "Qualification call",
    "Product demo",
    "Check the budget",
    "Negotiate the discount",
    "Meeting with the CFO",
    "Send references",
]
AI_ERRORS = [
    "Provider timeout after 30 s.",
    "HTTP 429: rate limited by the provider.",
    "The LLM answer was not valid JSON.",
    "HTTP 503: provider unavailable.",
]
# (country code, share, phone pattern, tld, cities); phone digits are drawn per lead
COUNTRIES = (
    (
        "US",
        0.35,
        "us",
        "com",
        ["New York", "San Francisco", "Chicago", "Boston", "Austin", "Seattle"],
    ),
    ("BE", 0.15, "be", "be", ["Brussels", "Antwerp", "Ghent", "Liege", "Leuven"]),
    ("FR", 0.15, "fr", "fr", ["Paris", "Lyon", "Lille", "Toulouse", "Nantes"]),
    ("DE", 0.12, "de", "de", ["Berlin", "Munich", "Hamburg", "Cologne", "Frankfurt"]),
    ("GB", 0.13, "gb", "co.uk", ["London", "Manchester", "Leeds", "Bristol", "Edinburgh"]),
    ("IN", 0.10, "in", "in", ["Mumbai", "Bangalore", "Delhi", "Pune", "Chennai"]),
)
STREETS = [
    "Main Street",
    "Market Square",
    "Station Road",
    "Church Lane",
    "Park Avenue",
    "High Street",
    "Rue de la Loi",
    "Avenue Louise",
    "Hauptstrasse",
    "MG Road",
    "Elm Street",
    "King Street",
]
DESCRIPTIONS = [
    "Just looking for some info.",
    "Not sure what we need yet, maybe a demo?",
    "Please send more info about your products.",
    "We are browsing options, no idea about budget.",
    "Interested in your services.",
    "Can you call me back?",
    "We need a quote for 20 users.",
    "Looking for a CRM for our sales team of 12 people.",
    "We want to replace our old ERP within 6 months.",
    "Please send a quotation for 50 laptops and docking stations.",
    "We need an integration with our accounting software, budget around 15k EUR.",
    "Our CEO asked for a proposal before the end of the quarter.",
    "We plan to migrate 3 sites to the cloud by Q3; the CFO approves the budget of $40k.",
    "Looking for a trial for 5 seats, decision expected next month.",
    "Need 200 licenses, go-live in January, procurement will sign off. Budget 120k USD.",
    "We are a retail chain with 14 stores and need POS terminals before the holiday season.",
    "Head of Procurement here: we need a quote for annual maintenance, budget approved.",
    "Replace our spreadsheet process; 30 users, deadline end of June, price is key.",
    "The board wants a security audit within 8 weeks, budget 25k GBP.",
    "Implement marketing automation for 4 brands; the director decides, launch in Q2.",
    "We require a custom development of 40 days, cost estimate needed urgently.",
    "Demo requested by our COO for the operations team (60 employees).",
    "Small office, 3 people, looking for a cheap solution.",
    "Expanding to a new branch next month, need 10 workstations and a support contract.",
]
STRENGTHS = {
    "email": "Valid email address",
    "phone": "Phone number available",
    "company": "Company identified",
    "revenue": "Expected revenue stated",
    "clear": "Clear requirements",
    "engaged": "Active conversation with the customer",
}
RISKS = {
    "email": "No valid email address",
    "phone": "No phone number",
    "vague": "Vague requirements",
    "silent": "No recent contact",
    "revenue": "No expected revenue",
}


# ------------------------------------------------------------
# Helpers
# ------------------------------------------------------------


class _Rand:
    """SQL expressions of deterministic uniform draws in [0, 1) keyed by (seed, name, key)."""

    def __init__(self, seed):
        self.seed = int(seed)

    def __call__(self, name, key="p.i"):
        salt = (self.seed * 1000003 + zlib.crc32(name.encode())) % (2**62)
        return "((hashint8extended((%s)::int8, %d::int8) & 2147483647)::float8 / 2147483648.0)" % (
            key,
            salt,
        )


def _log(verbose, msg, *args):
    if verbose:
        sys.stdout.write((msg % args if args else msg) + "\n")
        sys.stdout.flush()


def _one(cr, query, params=None):
    cr.execute(query, params or ())
    row = cr.fetchone()
    return row[0] if row else None


def _all(cr, query, params=None):
    cr.execute(query, params or ())
    return cr.fetchall()


def _jsonable(value):
    if isinstance(value, (dict, list)):
        from psycopg2.extras import Json

        return Json(value)
    return value


def _required_fill(cr, table, given, template="ORDER BY id"):
    """Values, copied from a template row, of the NOT NULL columns without default not given.

    Other modules may add required columns to the tables we fill: this keeps inserts valid.
    """
    cols = [
        r[0]
        for r in _all(
            cr,
            """
        SELECT column_name FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = %s
           AND is_nullable = 'NO' AND column_default IS NULL""",
            [table],
        )
    ]
    missing = [c for c in cols if c not in given and c != "id"]
    if not missing:
        return {}
    cr.execute(
        'SELECT %s FROM "%s" %s LIMIT 1' % (", ".join('"%s"' % c for c in missing), table, template)
    )
    row = cr.fetchone()
    if row is None:
        raise RuntimeError(
            "Cannot fill the required columns %s of %s: no row to copy them from."
            % (missing, table)
        )
    return {c: _jsonable(v) for c, v in zip(missing, row, strict=True)}


def _insert(cr, table, vals, template="ORDER BY id"):
    """Insert one row (filling other required columns from a template row); return its id."""
    vals = dict(_required_fill(cr, table, set(vals), template), **vals)
    cols = list(vals)
    cr.execute(
        'INSERT INTO "%s" (%s) VALUES (%s) RETURNING id'
        % (table, ", ".join('"%s"' % c for c in cols), ", ".join(["%s"] * len(cols))),
        [vals[c] for c in cols],
    )
    return cr.fetchone()[0]


def _bulk_extra(cr, table, given, params, template="ORDER BY id"):
    """(column list, select list) suffixes for required columns a bulk INSERT does not set."""
    extra = _required_fill(cr, table, set(given), template)
    cols, sels = "", ""
    for col, value in extra.items():
        key = "x_%s_%s" % (table, col)
        params[key] = value
        cols += ', "%s"' % col
        sels += ", %%(%s)s" % key
    return cols, sels


def _reserve_ids(cr, table, count):
    """Reserve ``count`` ids of ``table``; return the id before the first one."""
    seq = _one(cr, "SELECT pg_get_serial_sequence(%s, 'id')", [table])
    base = _one(
        cr,
        'SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM "%s"), '
        "(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %s))"
        % (table, seq),
    )
    cr.execute("SELECT setval(%s, %s)", [seq, base + max(count, 0) if base + count > 0 else 1])
    return base


def _has_column(cr, table, column):
    return bool(
        _one(
            cr,
            """SELECT 1 FROM information_schema.columns
                            WHERE table_schema = current_schema() AND table_name = %s
                              AND column_name = %s""",
            [table, column],
        )
    )


def _try_set(cr, setting):
    """SET LOCAL that may be refused (not superuser, temp tables already used): then skip it."""
    cr.execute("SAVEPOINT bench_set")
    try:
        cr.execute("SET LOCAL %s" % setting)
    except Exception:  # noqa: BLE001 - any refusal only costs speed
        cr.execute("ROLLBACK TO SAVEPOINT bench_set")
        return False
    cr.execute("RELEASE SAVEPOINT bench_set")
    return True


class _BulkLoad:
    """Drop the secondary indexes of ``table`` when the insert is large compared to the table,
    and build them again afterwards (much faster than maintaining them row by row).

    Indexes backing constraints (primary key, unique constraints) are kept. Everything happens
    in the caller's transaction: a failure rolls the indexes back too.
    """

    def __init__(self, cr, table, new_rows, verbose=False):
        self.cr, self.table, self.new_rows, self.verbose = cr, table, new_rows, verbose
        self.defs = []

    def __enter__(self):
        existing = (
            _one(
                self.cr,
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [self.table],
            )
            or 0
        )
        existing = max(existing, 0)
        if self.new_rows < 20000 or self.new_rows < existing / 2:
            return self
        self.defs = _all(
            self.cr,
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
              FROM pg_index i
             WHERE i.indrelid = %s::regclass
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
             ORDER BY i.indexrelid""",
            [self.table],
        )
        for name, _definition in self.defs:
            self.cr.execute("DROP INDEX %s" % name)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self.defs:
            started = time.monotonic()
            for _name, definition in self.defs:
                self.cr.execute(definition)
            _log(
                self.verbose,
                "    %s: %d indexes rebuilt in %.1f s",
                self.table,
                len(self.defs),
                time.monotonic() - started,
            )
        return False


def _xmlid(cr, module, name):
    return _one(
        cr, "SELECT res_id FROM ir_model_data WHERE module = %s AND name = %s", [module, name]
    )


def _jname(name):
    return json.dumps({"en_US": name})


def _load_rules():
    """llm_lead_scoring's rule module (plain Python) to score descriptions like the addon does."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, os.pardir, "llm_lead_scoring", "lib", "rules.py")
    try:
        from odoo.addons.llm_lead_scoring.lib import rules

        return rules
    except ImportError:
        pass
    if os.path.exists(path):
        spec = importlib.util.spec_from_file_location("_bench_llm_rules", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return None


def _clarity_scores():
    rules = _load_rules()
    scores = []
    for text in DESCRIPTIONS:
        if rules is not None:
            scores.append(float(rules.clarity(text)["score"]))
        else:  # rough stand-in when the addon source is not next to bench/
            scores.append(float(min(100, len(text.split()) * 4)))
    return scores


def _phone_sql(country_expr, rnd, name, key):
    """A valid international phone number of the country, digits drawn per row."""

    def digits(tag, count):
        return "lpad(floor(%s * %d)::int::text, %d, '0')" % (rnd(name + tag, key), 10**count, count)

    return """(CASE %(c)s
        WHEN 'us' THEN '+1 ' || (ARRAY['212','415','617','312','512','206'])[1 + floor(%(r)s *
            6)::int] || '-555-01' || %(d2)s
        WHEN 'be' THEN '+32 2 555 ' || %(d2)s || ' ' || %(d2b)s
        WHEN 'fr' THEN '+33 1 55 55 ' || %(d2)s || ' ' || %(d2b)s
        WHEN 'de' THEN '+49 30 555' || %(d5)s
        WHEN 'gb' THEN '+44 20 7946 0' || %(d3)s
        ELSE '+91 98765 ' || %(d5)s END)""" % {
        "c": country_expr,
        "r": rnd(name + "area", key),
        "d2": digits("d2", 2),
        "d2b": digits("d2b", 2),
        "d3": digits("d3", 3),
        "d5": digits("d5", 5),
    }


# ------------------------------------------------------------
# Setup: companies, currencies, users, teams, stages, reasons
# ------------------------------------------------------------


def _setup_currencies(cr, main_company, anchor, verbose):
    main_currency = _one(
        cr,
        "SELECT name FROM res_currency WHERE id = "
        "(SELECT currency_id FROM res_company WHERE id = %s)",
        [main_company],
    )
    wanted = [main_currency] + [c for c in BENCH_CURRENCIES if c != main_currency]
    wanted = wanted[:3]
    rows = _all(cr, "SELECT name, id FROM res_currency WHERE name = ANY(%s)", [wanted])
    currency_ids = dict(rows)
    missing = [c for c in wanted if c not in currency_ids]
    if missing:
        raise RuntimeError("Currencies %s are not in res_currency." % missing)
    cr.execute(
        "UPDATE res_currency SET active = TRUE WHERE name = ANY(%s) AND active IS NOT TRUE",
        [wanted],
    )
    return main_currency, wanted, currency_ids


def _base_rate(cr, main_company, name):
    if name in BASE_RATES:
        return BASE_RATES[name]
    rate = _one(
        cr,
        """SELECT rate FROM res_currency_rate r JOIN res_currency c ON c.id = r.currency_id
                        WHERE c.name = %s AND (r.company_id = %s OR r.company_id IS NULL)
                     ORDER BY r.name DESC LIMIT 1""",
        [name, main_company],
    )
    usd = _one(
        cr,
        """SELECT rate FROM res_currency_rate r JOIN res_currency c ON c.id = r.currency_id
                       WHERE c.name = 'USD' AND (r.company_id = %s OR r.company_id IS NULL)
                    ORDER BY r.name DESC LIMIT 1""",
        [main_company],
    )
    return float(rate) / float(usd) if rate and usd else 1.0


def _setup_rates(cr, companies, currencies, currency_ids, anchor, main_company):
    """Monthly rates over the two years, relative to each company's currency."""
    bases = {c: _base_rate(cr, main_company, c) for c in currencies}
    before = _one(cr, "SELECT COUNT(*) FROM res_currency_rate")
    first = datetime.date(anchor.year, anchor.month, 1)
    for company_id, company_currency in companies:
        for month in range(25):
            year, mon = first.year, first.month - month
            while mon <= 0:
                mon += 12
                year -= 1
            day = datetime.date(year, mon, 1)
            for cur in currencies:
                if cur == company_currency:
                    continue
                # a smooth deterministic walk, +-4 %
                drift = 1.0 + 0.04 * _wave(zlib.crc32(cur.encode()) % 97, month)
                rate = round(bases[cur] / bases[company_currency] * drift, 6)
                cr.execute(
                    """INSERT INTO res_currency_rate (currency_id, company_id, name, rate,
                                  create_uid, write_uid, create_date, write_date)
                              VALUES (%s, %s, %s, %s, 1, 1, %s, %s) ON CONFLICT DO NOTHING""",
                    [currency_ids[cur], company_id, day, rate, anchor, anchor],
                )
    return _one(cr, "SELECT COUNT(*) FROM res_currency_rate") - before


def _wave(phase, month):
    import math

    return math.sin(phase + month / 3.0)


def _implied_closure(cr, group_id):
    return [
        r[0]
        for r in _all(
            cr,
            """
        WITH RECURSIVE g(id) AS (SELECT %s::int UNION
                                 SELECT r.hid FROM res_groups_implied_rel r JOIN g ON r.gid = g.id)
        SELECT id FROM g""",
            [group_id],
        )
    ]


def _add_groups(cr, user_ids, group_id):
    if not user_ids or not group_id:
        return
    cr.execute(
        """INSERT INTO res_groups_users_rel (gid, uid)
                  SELECT g, u FROM unnest(%s::int[]) g, unnest(%s::int[]) u
                  ON CONFLICT DO NOTHING""",
        [_implied_closure(cr, group_id), list(user_ids)],
    )


def _apply_implied_to_internal_users(cr, group_id):
    """As res.groups._apply_group: base.group_user implies the group, internal users get it."""
    group_user = _xmlid(cr, "base", "group_user")
    if not group_user or not group_id:
        return
    cr.execute(
        "INSERT INTO res_groups_implied_rel (gid, hid) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        [group_user, group_id],
    )
    cr.execute(
        """INSERT INTO res_groups_users_rel (gid, uid)
                  SELECT %s, uid FROM res_groups_users_rel WHERE gid = %s ON CONFLICT DO NOTHING""",
        [group_id, group_user],
    )


def _setup_companies(cr, main_company, currencies, currency_ids, anchor):
    """Two companies in the other currencies: how Odoo 17 CRM holds amounts in other currencies
    (crm.lead has no currency field; its amounts are in the currency of the lead's company)."""
    result = []
    for cur in currencies[1:3]:
        name = FOREIGN_COMPANY_NAMES.get(cur, "Bench %s" % cur)
        company_id = _one(cr, "SELECT id FROM res_company WHERE name = %s", [name])
        if not company_id:
            partner_id = _insert(
                cr,
                "res_partner",
                {
                    "name": name,
                    "complete_name": name,
                    "is_company": True,
                    "type": "contact",
                    "active": True,
                    "partner_share": False,
                    "commercial_company_name": name,
                    "email": "info@%s.example.com" % name.lower().replace(" ", ""),
                    "lang": "en_US",
                    "create_uid": 1,
                    "write_uid": 1,
                    "create_date": anchor,
                    "write_date": anchor,
                },
                "WHERE id = (SELECT partner_id FROM res_company WHERE id = %d)" % main_company,
            )
            cr.execute(
                "UPDATE res_partner SET commercial_partner_id = id WHERE id = %s", [partner_id]
            )
            company_id = _insert(
                cr,
                "res_company",
                {
                    "name": name,
                    "partner_id": partner_id,
                    "currency_id": currency_ids[cur],
                    "sequence": 20,
                    "active": True,
                    "create_uid": 1,
                    "write_uid": 1,
                    "create_date": anchor,
                    "write_date": anchor,
                },
                "WHERE id = %d" % main_company,
            )
            cr.execute("UPDATE res_company SET parent_path = id || '/' WHERE id = %s", [company_id])
            # like res.company.create: the superuser and the admin get the new company
            cr.execute(
                """INSERT INTO res_company_users_rel (cid, user_id)
                          SELECT %s, id FROM res_users WHERE id IN (1, 2) ON CONFLICT DO NOTHING""",
                [company_id],
            )
        result.append((company_id, cur))
    multi = _xmlid(cr, "base", "group_multi_company")
    users = [
        r[0]
        for r in _all(
            cr,
            """SELECT user_id FROM res_company_users_rel
                                        GROUP BY user_id HAVING COUNT(*) > 1""",
        )
    ]
    _add_groups(cr, users, multi)
    return result


def _setup_users(cr, n_homes, foreign, main_company, anchor):
    """~30 salespeople (internal users in Sales / User: Own Documents Only)."""
    salesman = _xmlid(cr, "sales_team", "group_sale_salesman")
    all_leads = _xmlid(cr, "sales_team", "group_sale_salesman_all_leads")
    password = _password_hash(cr)
    lang = _one(
        cr, "SELECT code FROM res_lang WHERE active ORDER BY code = 'en_US' DESC, id LIMIT 1"
    )
    slots = [main_company] * (n_homes * SALESPEOPLE_PER_TEAM)
    for company_id, _cur in foreign:
        slots += [company_id] * SALESPEOPLE_PER_TEAM
    users = []
    for n, company_id in enumerate(slots, start=1):
        login = "bench.sales%02d" % n
        name = "%s %s" % (
            FIRST_NAMES[(n * 7) % len(FIRST_NAMES)],
            LAST_NAMES[(n * 11) % len(LAST_NAMES)],
        )
        row = _all(cr, "SELECT id, partner_id FROM res_users WHERE login = %s", [login])
        if row:
            users.append((row[0][0], row[0][1], company_id))
            continue
        email = "%s@example.com" % login
        partner_id = _insert(
            cr,
            "res_partner",
            {
                "name": name,
                "complete_name": name,
                "email": email,
                "email_normalized": email,
                "is_company": False,
                "type": "contact",
                "active": True,
                "partner_share": False,
                "company_id": company_id,
                "lang": lang,
                "tz": "Europe/Brussels",
                "create_uid": 1,
                "write_uid": 1,
                "create_date": anchor,
                "write_date": anchor,
            },
            "WHERE id = (SELECT partner_id FROM res_users WHERE id = 2)",
        )
        cr.execute("UPDATE res_partner SET commercial_partner_id = id WHERE id = %s", [partner_id])
        user_id = _insert(
            cr,
            "res_users",
            {
                "login": login,
                "partner_id": partner_id,
                "company_id": company_id,
                "active": True,
                "share": False,
                "password": password,
                "notification_type": "email",
                "create_uid": 1,
                "write_uid": 1,
                "create_date": anchor,
                "write_date": anchor,
            },
            "WHERE id = 2",
        )
        cr.execute(
            "INSERT INTO res_company_users_rel (cid, user_id) VALUES (%s, %s) "
            "ON CONFLICT DO NOTHING",
            [company_id, user_id],
        )
        users.append((user_id, partner_id, company_id))
    _add_groups(cr, [u[0] for u in users], salesman)
    leaders = [users[i][0] for i in range(0, len(users), SALESPEOPLE_PER_TEAM)]
    _add_groups(cr, leaders, all_leads)
    return users


def _password_hash(cr):
    """One shared hash: every bench user logs in with the password 'bench'."""
    try:
        from passlib.context import CryptContext

        return CryptContext(["pbkdf2_sha512"]).hash("bench")
    except ImportError:
        return _one(cr, "SELECT password FROM res_users WHERE id = 2")


def _setup_teams(cr, users, foreign, main_company, anchor):
    """3 teams of the main company (reusing active ones) and one per foreign company."""
    homes = [
        r[0]
        for r in _all(
            cr,
            """SELECT id FROM crm_team
                                        WHERE active AND (company_id IS NULL OR company_id = %s)
                                          AND name->>'en_US' NOT LIKE 'Bench %%'
                                     ORDER BY sequence, id LIMIT %s""",
            [main_company, HOME_TEAMS],
        )
    ]
    names = ["Bench Direct Sales", "Bench Inside Sales", "Bench Key Accounts"]
    wanted = [(None, None)] * len(homes)
    wanted += [(names[i], main_company) for i in range(HOME_TEAMS - len(homes))]
    wanted += [
        ("Bench %s Team" % FOREIGN_COMPANY_NAMES.get(cur, cur).replace("Bench ", ""), cid)
        for cid, cur in foreign
    ]
    lead_model = _one(cr, "SELECT id FROM ir_model WHERE model = 'crm.lead'")
    team_model = _one(cr, "SELECT id FROM ir_model WHERE model = 'crm.team'")
    teams = []
    for idx, (name, company_id) in enumerate(wanted):
        members = users[idx * SALESPEOPLE_PER_TEAM : (idx + 1) * SALESPEOPLE_PER_TEAM]
        if name is None:
            team_id = homes[idx]
            company_id = _one(cr, "SELECT company_id FROM crm_team WHERE id = %s", [team_id])
        else:
            team_id = _one(cr, "SELECT id FROM crm_team WHERE name->>'en_US' = %s", [name])
            if not team_id:
                alias_id = _insert(
                    cr,
                    "mail_alias",
                    {
                        "alias_model_id": lead_model,
                        "alias_parent_model_id": team_model,
                        "alias_contact": "everyone",
                        "alias_defaults": "{}",
                        "alias_name": None,
                        "create_uid": 1,
                        "write_uid": 1,
                        "create_date": anchor,
                        "write_date": anchor,
                    },
                )
                team_id = _insert(
                    cr,
                    "crm_team",
                    {
                        "name": _jname(name),
                        "company_id": company_id,
                        "active": True,
                        "sequence": 20 + idx,
                        "user_id": members[0][0],
                        "alias_id": alias_id,
                        "use_leads": True,
                        "use_opportunities": True,
                        "color": idx,
                        "create_uid": 1,
                        "write_uid": 1,
                        "create_date": anchor,
                        "write_date": anchor,
                    },
                )
                cr.execute(
                    """UPDATE mail_alias SET alias_parent_thread_id = %s, alias_defaults = %s
                              WHERE id = %s""",
                    [team_id, "{'type': 'lead', 'team_id': %d}" % team_id, alias_id],
                )
        for user_id, _partner, _company in members:
            if not _one(
                cr,
                "SELECT id FROM crm_team_member WHERE crm_team_id = %s AND user_id = %s",
                [team_id, user_id],
            ):
                _insert(
                    cr,
                    "crm_team_member",
                    {
                        "crm_team_id": team_id,
                        "user_id": user_id,
                        "active": True,
                        "assignment_max": 30,
                        "create_uid": 1,
                        "write_uid": 1,
                        "create_date": anchor,
                        "write_date": anchor,
                    },
                )
            cr.execute(
                "UPDATE res_users SET sale_team_id = %s WHERE id = %s AND sale_team_id IS NULL",
                [team_id, user_id],
            )
        # members drawn for leads: ours plus the active internal members already there
        rows = _all(
            cr,
            """SELECT u.id, u.partner_id, u.company_id FROM crm_team_member m
                             JOIN res_users u ON u.id = m.user_id
                            WHERE m.crm_team_id = %s AND m.active AND u.active AND u.share IS NOT
                                TRUE
                         ORDER BY m.id""",
            [team_id],
        )
        teams.append(
            {"team_id": team_id, "company_id": company_id, "members": rows, "leader": members[0][0]}
        )
    return teams


def _setup_stages(cr, anchor):
    stages = _all(
        cr,
        """SELECT id, is_won FROM crm_stage WHERE team_id IS NULL
                      ORDER BY sequence, id""",
    )
    if len(stages) < 4 or not any(won for _id, won in stages):
        names = {
            r[0] for r in _all(cr, "SELECT name->>'en_US' FROM crm_stage WHERE team_id IS NULL")
        }
        for name, sequence, is_won in DEFAULT_STAGES:
            if name not in names:
                _insert(
                    cr,
                    "crm_stage",
                    {
                        "name": _jname(name),
                        "sequence": sequence,
                        "is_won": is_won,
                        "fold": False,
                        "create_uid": 1,
                        "write_uid": 1,
                        "create_date": anchor,
                        "write_date": anchor,
                    },
                )
        stages = _all(
            cr, "SELECT id, is_won FROM crm_stage WHERE team_id IS NULL ORDER BY sequence, id"
        )
    open_stages = [sid for sid, won in stages if not won]
    won_stage = next(sid for sid, won in stages if won)
    return open_stages, won_stage


def _setup_lost_reasons(cr, anchor):
    names = {r[0] for r in _all(cr, "SELECT name->>'en_US' FROM crm_lost_reason")}
    for name in LOST_REASONS:
        if name not in names:
            _insert(
                cr,
                "crm_lost_reason",
                {
                    "name": _jname(name),
                    "active": True,
                    "create_uid": 1,
                    "write_uid": 1,
                    "create_date": anchor,
                    "write_date": anchor,
                },
            )
    return [r[0] for r in _all(cr, "SELECT id FROM crm_lost_reason WHERE active ORDER BY id")]


def _activity_types(cr):
    ids = []
    for name in (
        "mail_activity_data_call",
        "mail_activity_data_email",
        "mail_activity_data_meeting",
        "mail_activity_data_todo",
    ):
        res_id = _xmlid(cr, "mail", name)
        if res_id and _one(cr, "SELECT active FROM mail_activity_type WHERE id = %s", [res_id]):
            ids.append(res_id)
    if not ids:
        ids = [
            r[0]
            for r in _all(
                cr,
                """SELECT id FROM mail_activity_type WHERE active
                                          AND (res_model IS NULL OR res_model = 'crm.lead')
                                          ORDER BY sequence, id LIMIT 4""",
            )
        ]
    if not ids:
        raise RuntimeError("No active activity type to plan activities with.")
    names = dict(
        _all(cr, "SELECT id, name->>'en_US' FROM mail_activity_type WHERE id = ANY(%s)", [ids])
    )
    return ids, [names[i] for i in ids]


# ------------------------------------------------------------
# Bulk data
# ------------------------------------------------------------


def _create_partners(cr, rnd, count, anchor, countries, lang, verbose):
    """Customer companies (is_company) with address, email, phone; ids base+1..base+count."""
    base = _reserve_ids(cr, "res_partner", count)
    params = {
        "base": base,
        "n": count,
        "anchor": anchor,
        "lang": lang,
        "wa": COMPANY_WORDS_A,
        "wb": COMPANY_WORDS_B,
        "forms": COMPANY_FORMS,
        "streets": STREETS,
    }
    given = [
        "id",
        "name",
        "complete_name",
        "commercial_company_name",
        "is_company",
        "type",
        "active",
        "partner_share",
        "employee",
        "email",
        "email_normalized",
        "phone",
        "phone_sanitized",
        "website",
        "street",
        "city",
        "zip",
        "country_id",
        "lang",
        "color",
        "commercial_partner_id",
        "create_date",
        "write_date",
        "create_uid",
        "write_uid",
    ]
    xcols, xsels = _bulk_extra(cr, "res_partner", given, params)
    cr.execute(
        """
        INSERT INTO res_partner (%(cols)s%(xcols)s)
        SELECT id, name, name, name, TRUE, 'contact', TRUE, TRUE, FALSE, email, email, phone,
               '+' || regexp_replace(phone, '[^0-9]', '', 'g'), 'https://www.' || domain,
               street, city, zip, country_id, %%(lang)s, 0, id, cdate, cdate, 2, 2%(xsels)s
          FROM (
            SELECT q.*, 'info@' || domain AS email, %(phone)s AS phone
              FROM (
                SELECT %%(base)s + j AS id, j,
                       wa || wb || ' ' || form AS name,
                       lower(wa || wb) || CASE WHEN %(rdup)s < 0.5 THEN '' ELSE mod(j, 97)::text END
                           || '.' || c.tld AS domain,
                       floor(%(rnum)s * 200 + 1)::int || ' ' || (%%(streets)s::text[])[1 +
                           floor(%(rst)s * %(nst)d)::int] AS street,
                       c.cities[1 + floor(%(rcity)s * cardinality(c.cities))::int] AS city,
                       lpad(floor(%(rzip)s * 90000 + 10000)::int::text, 5, '0') AS zip,
                       c.country_id, c.pattern,
                       %%(anchor)s::timestamp - (760 + %(rc)s * 400) * interval '1 day' AS cdate
                  FROM (SELECT j,
                               (%%(wa)s::text[])[1 + floor(%(ra)s * %(na)d)::int] AS wa,
                               (%%(wb)s::text[])[1 + floor(%(rb)s * %(nb)d)::int] AS wb,
                               (%%(forms)s::text[])[1 + floor(%(rf)s * %(nf)d)::int] AS form,
                               %(rcountry)s AS rc_
                          FROM generate_series(1, %%(n)s) j) g
                  JOIN _bench_country c ON g.rc_ >= c.lo AND g.rc_ < c.hi
              ) q
          ) p
    """
        % {
            "cols": ", ".join(given),
            "xcols": xcols,
            "xsels": xsels,
            "phone": _phone_sql("pattern", rnd, "pphone", "j"),
            "rdup": rnd("pdup", "j"),
            "rnum": rnd("pnum", "j"),
            "rst": rnd("pst", "j"),
            "nst": len(STREETS),
            "rcity": rnd("pcity", "j"),
            "rzip": rnd("pzip", "j"),
            "rc": rnd("pcdate", "j"),
            "ra": rnd("pwa", "j"),
            "rb": rnd("pwb", "j"),
            "rf": rnd("pform", "j"),
            "na": len(COMPANY_WORDS_A),
            "nb": len(COMPANY_WORDS_B),
            "nf": len(COMPANY_FORMS),
            "rcountry": rnd("pcountry", "j"),
        },
        params,
    )
    return base


def _msg_kind_sql(rnd, key, j, origin):
    """Kind of the j-th chatter message of a lead: in / out / done / note."""
    r = rnd("mkind", key)
    return (
        "(CASE WHEN %(j)s = 1 AND %(origin)s THEN 'in' WHEN %(r)s < 0.36 THEN 'in' "
        "WHEN %(r)s < 0.64 THEN 'out' WHEN %(r)s < 0.90 THEN 'done' ELSE 'note' END)"
        % {"j": j, "origin": origin, "r": r}
    )


def _msg_date_sql(rnd, key, j, n):
    """Date of the j-th of n messages: one per slice of the lead's life, so ids follow dates."""
    return "(p.create_date + (p.span_end - p.create_date) * ((%s - 1 + %s) / %s::float8))" % (
        j,
        rnd("mdate", key),
        n,
    )


def _build_plan(cr, rnd, params, verbose):
    """One row per lead with every value the inserts need (temp table _bench_plan)."""
    msg_key = "p.i * 16 + j"
    origin = "(%s < 0.6)" % rnd("origin")
    kind = _msg_kind_sql(rnd, msg_key, "j", origin)
    mdate = _msg_date_sql(rnd, msg_key, "j", "p.n_msg")
    r = rnd
    cr.execute(
        """
    CREATE TEMP TABLE _bench_plan AS
    WITH g AS (
        SELECT i,
               %(r_type)s < %%(lead_share)s AS is_lead,
               730.0 * power(%(r_age)s, 1.35) AS age_days,
               %(r_team)s AS r_team, %(r_user)s AS r_user, %(r_uidx)s AS r_uidx,
               %(r_country)s AS r_country
          FROM generate_series(1, %%(n)s) i OFFSET 0
    ), t AS (
        SELECT g.*, tm.idx AS team_idx, tm.team_id, tm.company_id AS team_company,
               tm.nmem, tm.leader,
               %%(anchor)s::timestamp - g.age_days * interval '1 day'
                   - %(r_sec)s * interval '1 hour' AS create_date
          FROM g JOIN _bench_team tm ON g.r_team >= tm.lo AND g.r_team < tm.hi OFFSET 0
    ), u AS (
        SELECT t.*, m.user_id, m.partner_id AS user_partner_id, m.company_id AS user_company,
               c.country_id AS c_country, c.pattern, c.tld, c.cities
          FROM t
          LEFT JOIN _bench_member m ON m.team_idx = t.team_idx AND t.r_user >= %%(unassigned)s
                                   AND m.k = floor(t.r_uidx * t.nmem)::int
          JOIN _bench_country c ON t.r_country >= c.lo AND t.r_country < c.hi OFFSET 0
    ), s AS (
        -- status: older opportunities are more often closed
        SELECT u.*,
               CASE WHEN u.is_lead THEN
                        CASE WHEN %(r_closed)s < LEAST(0.45, u.age_days / 730.0) THEN 'lost' ELSE
                            'open' END
                    WHEN %(r_closed)s < LEAST(0.92, u.age_days / 150.0) THEN
                        CASE WHEN %(r_won)s < %%(win_rate)s THEN 'won' ELSE 'lost' END
                    ELSE 'open' END AS status0,
               %(r_arch)s < %%(archived)s AS archived,
               %(r_partner)s < CASE WHEN u.is_lead THEN 0.15 ELSE 0.65 END AS has_partner,
               LEAST(u.age_days * 0.98, 2 + 118 * power(%(r_cycle)s, 1.6)) AS cycle_days,
               1 + floor(power(%(r_stage)s, 1.3) * %%(n_open_stages)s)::int AS stage_pos
          FROM u OFFSET 0
    ), l AS (
        SELECT s.*,
               CASE WHEN s.status0 = 'open' AND s.archived THEN 'archived' ELSE s.status0 END AS
                   status,
               CASE WHEN s.has_partner THEN %%(pbase)s + 1 + floor(%(r_pidx)s * %%(np)s)::int END
                   AS partner_id,
               COALESCE(s.team_company, CASE WHEN s.user_id IS NOT NULL THEN s.user_company END) AS
                   company_id
          FROM s OFFSET 0
    ), d AS (
        SELECT l.*,
               CASE WHEN l.status IN ('won', 'lost') THEN l.create_date + l.cycle_days * interval
                   '1 day' END AS date_closed,
               CASE WHEN l.user_id IS NOT NULL
                    THEN LEAST(l.create_date + power(%(r_open)s, 3) * interval '2 days',
                               %%(anchor)s::timestamp - interval '1 minute',
                               CASE WHEN l.status IN ('won', 'lost')
                                    THEN l.create_date + l.cycle_days * interval '1 day' END) END
                                        AS date_open,
               CASE WHEN l.is_lead THEN 1
                    WHEN l.status = 'lost' THEN 1 + floor(%(r_lstage)s * %%(n_open_stages)s)::int
                    ELSE LEAST(l.stage_pos, %%(n_open_stages)s) END AS spos,
               rp.name AS rp_name, rp.email AS rp_email, rp.phone AS rp_phone,
               rp.street AS rp_street, rp.city AS rp_city, rp.zip AS rp_zip,
               rp.country_id AS rp_country, rp.website AS rp_website
          FROM l LEFT JOIN res_partner rp ON rp.id = l.partner_id OFFSET 0
    ), e AS (
        SELECT d.*,
               CASE WHEN d.is_lead THEN 2 + floor(%(r_prob)s * 20)
                    ELSE LEAST(99, GREATEST(1, round(10 + 70.0 * (d.spos - 1) /
                        GREATEST(%%(n_open_stages)s - 1, 1)
                                                  + (%(r_prob)s - 0.5) * 16))) END AS stage_prob,
               CASE WHEN d.status IN ('won', 'lost') THEN d.date_closed
                    WHEN d.is_lead THEN d.create_date
                    ELSE d.create_date + (%%(anchor)s::timestamp - d.create_date) * %(r_dlsu)s *
                        0.8 END AS date_last_stage_update,
               (%%(first)s::text[])[1 + floor(%(r_first)s * %(n_first)d)::int] AS first_name,
               (%%(last)s::text[])[1 + floor(%(r_last)s * %(n_last)d)::int] AS last_name,
               (%%(wa)s::text[])[1 + floor(%(r_wa)s * %(n_wa)d)::int]
                   || (%%(wb)s::text[])[1 + floor(%(r_wb)s * %(n_wb)d)::int] AS co_word,
               (%%(forms)s::text[])[1 + floor(%(r_form)s * %(n_forms)d)::int] AS co_form,
               %(r_company)s < 0.7 AS is_b2b,
               %(r_email)s AS r_email,
               CASE WHEN %(r_desc)s < 0.78 THEN 1 + floor(%(r_desc_idx)s * %(n_desc)d)::int END AS
                   desc_idx,
               CASE WHEN NOT d.is_lead AND %(r_rev)s < 0.95
                         OR d.is_lead AND %(r_rev)s < 0.55
                    THEN round((exp(ln(500) + %(r_rev_amount)s * ln(400)) / 50)::numeric) * 50
                    ELSE 0 END AS expected_revenue
          FROM d OFFSET 0
    ), f AS (
        SELECT e.*,
               CASE e.status WHEN 'won' THEN 100 WHEN 'lost' THEN 0 ELSE e.stage_prob END AS
                   probability,
               COALESCE(e.rp_name, CASE WHEN e.is_b2b THEN e.co_word || ' ' || e.co_form END) AS
                   partner_name,
               e.first_name || ' ' || e.last_name AS contact_name,
               CASE WHEN e.rp_email IS NOT NULL THEN e.rp_email
                    WHEN e.r_email < 0.06 THEN NULL
                    WHEN e.r_email < 0.08 THEN lower(e.first_name) || '.' || lower(e.last_name) ||
                        '(at)mail'
                    WHEN e.is_b2b THEN lower(e.first_name) || '.' || lower(e.last_name) || '@' ||
                        lower(e.co_word) || '.' || e.tld
                    ELSE lower(e.first_name) || '.' || lower(e.last_name) || floor(%(r_email_n)s *
                        90 + 10)::int
                         || '@' || (%%(providers)s::text[])[1 + floor(%(r_provider)s *
                             %(n_providers)d)::int] END AS email_from,
               CASE WHEN e.rp_phone IS NOT NULL THEN e.rp_phone
                    WHEN %(r_phone)s < 0.75 THEN %(phone)s END AS phone,
               CASE WHEN %(r_mobile)s < 0.25 THEN %(mobile)s END AS mobile,
               CASE WHEN e.partner_id IS NOT NULL OR %(r_addr)s < 0.55 THEN
                   COALESCE(e.rp_country, e.c_country) END AS country_id,
               CASE WHEN e.partner_id IS NOT NULL THEN e.rp_street
                    WHEN %(r_addr)s < 0.45 THEN floor(%(r_num)s * 200 + 1)::int || ' ' ||
                         (%%(streets)s::text[])[1 + floor(%(r_street)s * %(n_streets)d)::int] END
                             AS street,
               CASE WHEN e.partner_id IS NOT NULL THEN e.rp_city
                    WHEN %(r_addr)s < 0.55 THEN e.cities[1 + floor(%(r_city)s *
                        cardinality(e.cities))::int] END AS city,
               CASE WHEN e.partner_id IS NOT NULL THEN e.rp_zip
                    WHEN %(r_addr)s < 0.45 THEN lpad(floor(%(r_zip)s * 90000 + 10000)::int::text,
                        5, '0') END AS zip,
               CASE WHEN e.partner_id IS NOT NULL THEN e.rp_website
                    WHEN e.is_b2b AND %(r_web)s < 0.5 THEN 'https://www.' || lower(e.co_word) ||
                        '.' || e.tld END AS website,
               CASE WHEN %(r_func)s < 0.45 THEN (%%(jobs)s::text[])[1 + floor(%(r_job)s *
                   %(n_jobs)d)::int] END AS function,
               CASE WHEN e.status = 'lost' AND %(r_reason)s < 0.92
                    THEN (%%(reasons)s::int[])[1 + floor(%(r_reason_idx)s * %(n_reasons)s)::int]
                        END AS lost_reason_id,
               (%%(subjects)s::text[])[1 + floor(%(r_subject)s * %(n_subjects)d)::int] AS subject,
               CASE WHEN e.status IN ('won', 'lost') THEN e.date_closed
                    WHEN e.status = 'archived' THEN e.date_last_stage_update
                    ELSE GREATEST(e.create_date + interval '1 minute', %%(anchor)s::timestamp -
                        interval '1 hour') END AS span_end,
               CASE WHEN %(r_msg)s < CASE e.status WHEN 'won' THEN 0.9 WHEN 'lost' THEN 0.55
                                                     WHEN 'archived' THEN 0.3 ELSE
                                                     CASE WHEN e.is_lead THEN 0.3 ELSE 0.65 END END
                                                         * %%(msg_ratio)s / 0.5
                    THEN 1 + floor(power(%(r_nmsg)s, 1.4) * 6)::int ELSE 0 END AS n_msg,
               CASE WHEN e.status = 'open' AND %(r_act)s < %%(act_ratio)s
                    THEN 1 + (%(r_act2)s < 0.25)::int ELSE 0 END AS n_planned
          FROM e OFFSET 0
    )
    SELECT f.i, f.is_lead, f.status, f.team_id, f.user_id, f.user_partner_id, f.leader,
           f.company_id, f.partner_id, f.create_date, f.date_open, f.date_closed,
           f.date_last_stage_update, f.cycle_days, f.probability, f.expected_revenue,
           f.lost_reason_id, f.contact_name, f.partner_name, f.function, f.email_from, f.phone,
           f.mobile, f.website, f.street, f.city, f.zip, f.country_id, f.desc_idx, f.subject,
           f.span_end, f.n_msg, f.n_planned,
           %%(lbase)s + f.i AS id,
           CASE WHEN f.is_lead THEN 'lead' ELSE 'opportunity' END AS type,
           f.status NOT IN ('lost', 'archived') AS active,
           CASE WHEN f.status = 'won' THEN %%(won_stage)s
                ELSE (%%(open_stages)s::int[])[f.spos] END AS stage_id,
           CASE WHEN f.status IN ('won', 'lost') THEN f.stage_prob ELSE f.probability END AS
               automated_probability,
           f.subject || ' - ' || COALESCE(f.partner_name, f.contact_name) AS name,
           mc.n_in, mc.n_out, mc.n_done, mc.last_contact
      FROM f
      CROSS JOIN LATERAL (
          SELECT COUNT(*) FILTER (WHERE kind = 'in') AS n_in,
                 COUNT(*) FILTER (WHERE kind = 'out') AS n_out,
                 COUNT(*) FILTER (WHERE kind = 'done') AS n_done,
                 MAX(mdate) FILTER (WHERE kind <> 'note') AS last_contact
            FROM (SELECT %(kind)s AS kind, %(mdate)s AS mdate
                    FROM generate_series(1, f.n_msg) j, (SELECT f.i, f.create_date, f.span_end,
                        f.n_msg) p) x
      ) mc
    """
        % {
            "r_type": r("type", "i"),
            "r_age": r("age", "i"),
            "r_team": r("team", "i"),
            "r_user": r("user", "i"),
            "r_uidx": r("uidx", "i"),
            "r_country": r("country", "i"),
            "r_sec": r("sec", "g.i"),
            "r_closed": r("closed", "u.i"),
            "r_won": r("won", "u.i"),
            "r_arch": r("arch", "u.i"),
            "r_partner": r("partner", "u.i"),
            "r_cycle": r("cycle", "u.i"),
            "r_stage": r("stage", "u.i"),
            "r_pidx": r("pidx", "s.i"),
            "r_open": r("open", "l.i"),
            "r_lstage": r("lstage", "l.i"),
            "r_prob": r("prob", "d.i"),
            "r_dlsu": r("dlsu", "d.i"),
            "r_first": r("first", "d.i"),
            "n_first": len(FIRST_NAMES),
            "r_last": r("last", "d.i"),
            "n_last": len(LAST_NAMES),
            "r_wa": r("wa", "d.i"),
            "n_wa": len(COMPANY_WORDS_A),
            "r_wb": r("wb", "d.i"),
            "n_wb": len(COMPANY_WORDS_B),
            "r_form": r("form", "d.i"),
            "n_forms": len(COMPANY_FORMS),
            "r_company": r("b2b", "d.i"),
            "r_email": r("email", "d.i"),
            "r_desc": r("desc", "d.i"),
            "r_desc_idx": r("desc_idx", "d.i"),
            "n_desc": len(DESCRIPTIONS),
            "r_rev": r("rev", "d.i"),
            "r_rev_amount": r("rev_amount", "d.i"),
            "r_email_n": r("email_n", "e.i"),
            "r_provider": r("provider", "e.i"),
            "n_providers": len(MAIL_PROVIDERS),
            "r_phone": r("phone", "e.i"),
            "phone": _phone_sql("e.pattern", r, "lphone", "e.i"),
            "r_mobile": r("mobile", "e.i"),
            "mobile": _phone_sql("e.pattern", r, "lmobile", "e.i"),
            "r_addr": r("addr", "e.i"),
            "r_num": r("num", "e.i"),
            "r_street": r("street", "e.i"),
            "n_streets": len(STREETS),
            "r_city": r("city", "e.i"),
            "r_zip": r("zip", "e.i"),
            "r_web": r("web", "e.i"),
            "r_func": r("func", "e.i"),
            "r_job": r("job", "e.i"),
            "n_jobs": len(JOB_TITLES),
            "r_reason": r("reason", "e.i"),
            "r_reason_idx": r("reason_idx", "e.i"),
            "n_reasons": "cardinality(%(reasons)s::int[])",
            "r_subject": r("subject", "e.i"),
            "n_subjects": len(SUBJECTS),
            "r_msg": r("msg", "e.i"),
            "r_nmsg": r("nmsg", "e.i"),
            "r_act": r("act", "e.i"),
            "r_act2": r("act2", "e.i"),
            "kind": kind,
            "mdate": mdate,
        },
        params,
    )
    return cr.rowcount


def _score_plan(cr, rnd, params):
    """AI columns (same rules and weights as llm_lead_scoring) and children id offsets:
    temp table _bench_lead, one row per lead, in lead order."""
    r = rnd
    cr.execute(
        """
    CREATE TEMP TABLE _bench_lead AS
    WITH a AS (
        SELECT p.*,
               CASE WHEN %(r_ai)s < %%(scored)s THEN 'completed'
                    WHEN NOT p.active THEN NULL
                    WHEN %(r_ai)s < %%(scored)s + %%(pending)s THEN 'pending'
                    WHEN %(r_ai)s < %%(scored)s + %%(pending)s + %%(failed)s THEN 'failed' END AS
                        ai_status,
               %(r_prev)s < 0.5 AS pending_prev,
               p.create_date + (p.span_end - p.create_date) * (0.6 + 0.4 * %(r_aidate)s) AS ai_date,
               (15 * (p.contact_name IS NOT NULL)::int + 15 * (p.partner_name IS NOT NULL)::int
                + 20 * COALESCE(p.email_from LIKE '%%%%@%%%%.%%%%', FALSE)::int
                + 15 * (p.phone IS NOT NULL OR p.mobile IS NOT NULL)::int
                + 15 * (p.desc_idx IS NOT NULL)::int
                + 10 * (p.street IS NOT NULL OR p.city IS NOT NULL OR p.zip IS NOT NULL
                        OR p.country_id IS NOT NULL)::int
                + 10 * (p.expected_revenue > 0)::int)::float8 AS comp,
               CASE WHEN %(r_method)s < 0.25 AND p.desc_idx IS NOT NULL THEN 'llm' ELSE 'rules' END
                   AS method
          FROM _bench_plan p OFFSET 0
    ), b AS (
        SELECT a.*,
               CASE WHEN a.desc_idx IS NULL THEN 0.0
                    WHEN a.method = 'llm' THEN round(LEAST(100, GREATEST(0,
                        (%%(clarity)s::float8[])[a.desc_idx] + (%(r_llm)s - 0.5) * 20))::numeric,
                            1)::float8
                    ELSE (%%(clarity)s::float8[])[a.desc_idx] END AS clar,
               (LEAST(a.n_done * 10, 30) + LEAST(a.n_planned * 10, 20) + LEAST(a.n_in * 10, 25)
                + LEAST(a.n_out * 5, 15)
                + CASE WHEN a.last_contact IS NULL THEN 0
                       WHEN a.ai_date - a.last_contact <= interval '7 days' THEN 10
                       WHEN a.ai_date - a.last_contact <= interval '30 days' THEN 5 ELSE 0
                           END)::float8 AS eng
          FROM a OFFSET 0
    ), c AS (
        SELECT b.*,
               round(((b.comp * %%(w_comp)s + b.clar * %%(w_clar)s + b.eng * %%(w_eng)s)
                      / (%%(w_comp)s + %%(w_clar)s + %%(w_eng)s))::numeric, 1) AS score,
               CASE WHEN %(r_trend)s < 0.55 THEN 'new' WHEN %(r_trend)s < 0.75 THEN 'up'
                    WHEN %(r_trend)s < 0.90 THEN 'down' ELSE 'stable' END AS trend,
               round((2 + %(r_delta)s * 18)::numeric, 1) AS delta,
               COALESCE(b.ai_status IN ('completed', 'failed')
                        OR (b.ai_status = 'pending' AND b.pending_prev), FALSE) AS has_scores
          FROM b OFFSET 0
    ), h AS (
        SELECT c.*,
               CASE c.trend WHEN 'up' THEN GREATEST(0, c.score - c.delta)
                            WHEN 'down' THEN LEAST(100, c.score + c.delta)
                            WHEN 'stable' THEN c.score END AS prev_score,
               CASE WHEN c.ai_status = 'failed' THEN 1 + floor(%(r_att)s * 3)::int ELSE 0 END AS
                   attempts,
               CASE WHEN c.has_scores THEN 1 + (c.trend IN ('up', 'down'))::int ELSE 0 END AS n_hist
          FROM c OFFSET 0
    )
    SELECT h.*,
           SUM(h.n_msg) OVER w - h.n_msg AS m_off,
           SUM(h.n_planned) OVER w - h.n_planned AS a_off,
           SUM(h.n_hist) OVER w - h.n_hist AS h_off
      FROM h
    WINDOW w AS (ORDER BY h.i)
    """
        % {
            "r_ai": r("ai"),
            "r_prev": r("ai_prev"),
            "r_aidate": r("ai_date"),
            "r_method": r("ai_method"),
            "r_llm": r("ai_llm", "a.i"),
            "r_trend": r("ai_trend", "b.i"),
            "r_delta": r("ai_delta", "b.i"),
            "r_att": r("ai_att", "c.i"),
        },
        params,
    )
    cr.execute("DROP TABLE _bench_plan")
    cr.execute("CREATE UNIQUE INDEX ON _bench_lead (id)")
    cr.execute("ANALYZE _bench_lead")


def _insert_leads(cr, rnd, params):
    r = rnd
    cols = """id, name, type, active, priority, stage_id, team_id, user_id, company_id, partner_id,
        contact_name, partner_name, function, email_from, email_normalized, email_domain_criterion,
        email_state, phone, mobile, phone_sanitized, phone_state, website, street, city, zip,
        country_id, lang_id, description, expected_revenue, prorated_revenue, recurring_revenue,
        recurring_plan, recurring_revenue_monthly, recurring_revenue_monthly_prorated,
        recurring_revenue_prorated, probability, automated_probability, lost_reason_id, date_open,
        day_open, date_closed, day_close, date_last_stage_update, date_deadline, date_conversion,
        source_id, medium_id, color, message_bounce, create_date, write_date, create_uid, write_uid,
        auto_enrich, ai_enrichment_status, ai_probability_score, ai_completeness_score,
        ai_clarity_score, ai_engagement_score, ai_score_trend, ai_score_method,
        ai_last_enrichment_date, ai_analysis_summary, ai_strengths, ai_risks, ai_next_action,
        ai_enrichment_data, ai_enrichment_error, ai_enrichment_attempts, ai_next_retry_date"""
    given = [c.strip() for c in cols.split(",")]
    # newer llm_lead_scoring: ai_score_method is rules/learned and ai_analysis_method rules/llm
    split_method = _has_column(cr, "crm_lead", "ai_analysis_method")
    score_method = "'rules'" if split_method else "p.method"
    opt_cols, opt_sels = "", ""
    if split_method:
        given.append("ai_analysis_method")
        opt_cols, opt_sels = ", ai_analysis_method", ", CASE WHEN p.has_scores THEN p.method END"
    xcols, xsels = _bulk_extra(cr, "crm_lead", given, params)
    xcols, xsels = opt_cols + xcols, opt_sels + xsels
    ai_cols = {
        row[0]
        for row in _all(
            cr,
            """SELECT column_name FROM information_schema.columns
                WHERE table_name = 'crm_lead' AND column_name LIKE 'ai\\_%%'""",
        )
    }
    missing = [c for c in given if c.startswith("ai_") and c not in ai_cols]
    if missing:
        raise RuntimeError("crm_lead lacks %s: is llm_lead_scoring installed?" % missing)
    cr.execute(
        """
    INSERT INTO crm_lead (%(cols)s%(xcols)s)
    SELECT p.id, p.name, p.type, p.active,
           CASE WHEN %(r_prio)s < 0.55 THEN '0' WHEN %(r_prio)s < 0.80 THEN '1'
                WHEN %(r_prio)s < 0.95 THEN '2' ELSE '3' END,
           p.stage_id, p.team_id, p.user_id, p.company_id, p.partner_id,
           p.contact_name, p.partner_name, p.function, p.email_from,
           CASE WHEN p.email_from LIKE '%%%%@%%%%' THEN lower(p.email_from) END,
           CASE WHEN p.email_from IS NULL THEN NULL
                WHEN p.email_from NOT LIKE '%%%%@%%%%' THEN lower(p.email_from)
                WHEN split_part(p.email_from, '@', 2) = ANY(%%(providers)s::text[]) THEN
                    lower(p.email_from)
                ELSE '@' || lower(split_part(p.email_from, '@', 2)) END,
           CASE WHEN p.email_from IS NULL THEN NULL
                WHEN p.email_from LIKE '%%%%@%%%%' THEN 'correct' ELSE 'incorrect' END,
           p.phone, p.mobile,
           '+' || regexp_replace(COALESCE(p.mobile, p.phone), '[^0-9]', '', 'g'),
           CASE WHEN p.phone IS NOT NULL THEN 'correct' END,
           p.website, p.street, p.city, p.zip, p.country_id, %%(lang_id)s,
           CASE WHEN p.desc_idx IS NOT NULL THEN '<p>' || (%%(descriptions)s::text[])[p.desc_idx]
               || '</p>' END,
           p.expected_revenue,
           round(p.expected_revenue * p.probability::numeric / 100, 2),
           rr.recurring_revenue, rr.plan_id,
           rr.recurring_revenue / rr.months,
           rr.recurring_revenue / rr.months * p.probability::numeric / 100,
           rr.recurring_revenue * p.probability::numeric / 100,
           p.probability, p.automated_probability, p.lost_reason_id,
           p.date_open,
           CASE WHEN p.date_open IS NOT NULL THEN
               floor(extract(epoch FROM p.date_open - date_trunc('second', p.create_date)) / 86400)
                   END,
           p.date_closed,
           CASE WHEN p.date_closed IS NOT NULL THEN
               floor(extract(epoch FROM p.date_closed - p.create_date) / 86400) END,
           p.date_last_stage_update,
           CASE WHEN NOT p.is_lead AND %(r_dl)s < 0.7
                THEN (p.create_date + (15 + %(r_dl2)s * 105) * interval '1 day')::date END,
           CASE WHEN NOT p.is_lead AND %(r_conv)s < 0.6
                THEN p.create_date + LEAST(p.cycle_days * 0.5, 10 * %(r_conv2)s) * interval '1 day'
                    END,
           CASE WHEN cardinality(%%(sources)s::int[]) > 0 AND %(r_src)s < 0.6
                THEN (%%(sources)s::int[])[1 + floor(%(r_src2)s *
                    cardinality(%%(sources)s::int[]))::int] END,
           CASE WHEN cardinality(%%(mediums)s::int[]) > 0 AND %(r_med)s < 0.6
                THEN (%%(mediums)s::int[])[1 + floor(%(r_med2)s *
                    cardinality(%%(mediums)s::int[]))::int] END,
           0, 0, p.create_date,
           GREATEST(p.create_date, p.date_open, p.date_closed, p.date_last_stage_update,
                    CASE WHEN p.has_scores THEN p.ai_date END),
           COALESCE(CASE WHEN %(r_cuid)s < 0.6 THEN p.user_id END, %%(admin)s),
           COALESCE(p.user_id, %%(admin)s),
           %(r_auto)s < 0.97,
           p.ai_status,
           CASE WHEN p.has_scores THEN p.score END,
           CASE WHEN p.has_scores THEN p.comp END,
           CASE WHEN p.has_scores THEN p.clar END,
           CASE WHEN p.has_scores THEN p.eng END,
           CASE WHEN p.has_scores THEN p.trend END,
           CASE WHEN p.has_scores THEN %(score_method)s END,
           CASE WHEN p.has_scores THEN p.ai_date END,
           CASE WHEN p.has_scores THEN
               'AI score ' || round(p.score) || '/100 ('
               || CASE WHEN p.score >= 70 THEN 'high' WHEN p.score >= 40 THEN 'medium' ELSE 'low'
                   END
               || '): completeness ' || round(p.comp) || ', clarity ' || round(p.clar::numeric)
               || ', engagement ' || round(p.eng) || '. '
               || CASE WHEN p.clar >= 70 THEN 'Requirements are clear.'
                       WHEN p.clar >= 40 THEN 'Requirements are partly clear.'
                       ELSE 'Requirements are vague.' END END,
           CASE WHEN p.has_scores THEN concat_ws(E'\\n',
               CASE WHEN p.email_from LIKE '%%%%@%%%%' THEN %%(s_email)s END,
               CASE WHEN p.phone IS NOT NULL OR p.mobile IS NOT NULL THEN %%(s_phone)s END,
               CASE WHEN p.partner_name IS NOT NULL THEN %%(s_company)s END,
               CASE WHEN p.expected_revenue > 0 THEN %%(s_revenue)s END,
               CASE WHEN p.clar >= 70 THEN %%(s_clear)s END,
               CASE WHEN p.n_in + p.n_out >= 2 THEN %%(s_engaged)s END) END,
           CASE WHEN p.has_scores THEN concat_ws(E'\\n',
               CASE WHEN p.email_from IS NULL OR p.email_from NOT LIKE '%%%%@%%%%' THEN
                   %%(k_email)s END,
               CASE WHEN p.phone IS NULL AND p.mobile IS NULL THEN %%(k_phone)s END,
               CASE WHEN p.clar < 40 THEN %%(k_vague)s END,
               CASE WHEN p.last_contact IS NULL OR p.ai_date - p.last_contact > interval '30 days'
                    THEN %%(k_silent)s END,
               CASE WHEN p.expected_revenue = 0 THEN %%(k_revenue)s END) END,
           CASE WHEN NOT p.has_scores THEN NULL
                WHEN p.score >= 70 THEN 'Send a proposal and agree on a closing date.'
                WHEN p.score >= 40 THEN 'Call the contact to confirm budget and timeline.'
                ELSE 'Qualify the need: ask for the project, budget and decision maker.' END,
           CASE WHEN p.has_scores THEN jsonb_build_object(
               'scores', jsonb_build_object('probability', p.score, 'completeness', p.comp,
                                            'clarity', p.clar, 'engagement', p.eng),
               'weights', jsonb_build_object('completeness', %%(w_comp)s, 'clarity', %%(w_clar)s,
                                             'engagement', %%(w_eng)s),
               'method', p.method, 'generator', 'bench',
               'timestamp', to_char(p.ai_date, 'YYYY-MM-DD HH24:MI:SS')) END,
           CASE WHEN p.ai_status = 'failed'
                THEN (%%(errors)s::text[])[1 + floor(%(r_err)s * %(n_err)d)::int] END,
           p.attempts,
           CASE WHEN p.ai_status = 'failed' AND p.attempts < 3
                THEN %%(anchor)s::timestamp + 5 * power(2, p.attempts - 1) * interval '1 minute' END
           %(xsels)s
      FROM _bench_lead p
      LEFT JOIN LATERAL (
          SELECT round((p.expected_revenue / (2 + floor(%(r_rr)s * 8)))::numeric, 2) AS
              recurring_revenue,
                 (%%(plans)s::int[])[k] AS plan_id, (%%(plan_months)s::int[])[k] AS months
            FROM (SELECT 1 + floor(%(r_plan)s * cardinality(%%(plans)s::int[]))::int AS k) kk
           WHERE NOT p.is_lead AND p.expected_revenue > 0 AND cardinality(%%(plans)s::int[]) > 0
             AND %(r_recur)s < 0.2
      ) rr ON TRUE
    """
        % {
            "cols": cols,
            "xcols": xcols,
            "xsels": xsels,
            "score_method": score_method,
            "r_prio": r("prio"),
            "r_dl": r("dl"),
            "r_dl2": r("dl2"),
            "r_conv": r("conv"),
            "r_conv2": r("conv2"),
            "r_src": r("src"),
            "r_src2": r("src2"),
            "r_med": r("med"),
            "r_med2": r("med2"),
            "r_cuid": r("cuid"),
            "r_auto": r("auto"),
            "r_err": r("err"),
            "n_err": len(AI_ERRORS),
            "r_rr": r("rr"),
            "r_plan": r("plan"),
            "r_recur": r("recur"),
        },
        params,
    )
    return cr.rowcount


def _insert_tags(cr, rnd, params):
    if not params["tags"]:
        return 0
    r = rnd
    cr.execute(
        """
    INSERT INTO crm_tag_rel (lead_id, tag_id)
    SELECT DISTINCT p.id, (%%(tags)s::int[])[1 + mod(floor(%(r_tag)s * n)::int + k * (1 +
        floor(%(r_tag2)s * GREATEST(n - 1, 1))::int), n)]
      FROM _bench_lead p, (SELECT cardinality(%%(tags)s::int[]) AS n) c,
           generate_series(0, 1) k
     WHERE %(r_has)s < 0.35 AND (k = 0 OR %(r_two)s < 0.3)
    ON CONFLICT DO NOTHING
    """
        % {"r_tag": r("tag"), "r_tag2": r("tag2"), "r_has": r("has_tag"), "r_two": r("two_tags")},
        params,
    )
    return cr.rowcount


def _insert_messages(cr, rnd, params):
    total = _one(cr, "SELECT COALESCE(SUM(n_msg), 0) FROM _bench_lead")
    base = _reserve_ids(cr, "mail_message", total)
    params["mbase"] = base
    key = "p.i * 16 + j"
    origin = "(%s < 0.6)" % rnd("origin")
    kind = _msg_kind_sql(rnd, key, "j", origin)
    mdate = _msg_date_sql(rnd, key, "j", "p.n_msg")
    given = [
        "id",
        "model",
        "res_id",
        "record_name",
        "record_company_id",
        "message_type",
        "subtype_id",
        "mail_activity_type_id",
        "author_id",
        "email_from",
        "subject",
        "body",
        "is_internal",
        "date",
        "message_id",
        "create_date",
        "write_date",
        "create_uid",
        "write_uid",
    ]
    xcols, xsels = _bulk_extra(cr, "mail_message", given, params)
    cr.execute(
        """
    INSERT INTO mail_message (%(cols)s%(xcols)s)
    SELECT %%(mbase)s + m.m_off + m.j, 'crm.lead', m.id, m.name, m.company_id,
           CASE m.kind WHEN 'in' THEN 'email' WHEN 'done' THEN 'notification' ELSE 'comment' END,
           CASE m.kind WHEN 'done' THEN %%(st_activities)s WHEN 'note' THEN %%(st_note)s
                ELSE %%(st_comment)s END,
           CASE WHEN m.kind = 'done' THEN m.act_type END,
           CASE WHEN m.kind = 'in' THEN m.partner_id ELSE m.writer_partner END,
           CASE WHEN m.kind = 'in' THEN
                    '"' || COALESCE(m.contact_name, '') || '" <' || COALESCE(m.email_from,
                        'unknown@example.com') || '>'
                ELSE m.writer_email END,
           CASE WHEN m.kind = 'in' THEN CASE WHEN m.j = 1 THEN m.subject ELSE 'Re: ' || m.subject
               END END,
           CASE m.kind
                WHEN 'in' THEN '<p>Hello, ' || (%%(in_bodies)s::text[])[1 + floor(m.r_body *
                    %(n_in)d)::int] || '</p><p>' || COALESCE(m.contact_name, '') || '</p>'
                WHEN 'out' THEN '<p>' || (%%(out_bodies)s::text[])[1 + floor(m.r_body *
                    %(n_out)d)::int] || '</p>'
                WHEN 'done' THEN '<div><div class="o_mail_activity_done">' || m.act_name ||
                    ' done</div></div>'
                ELSE '<p>' || (%%(note_bodies)s::text[])[1 + floor(m.r_body * %(n_note)d)::int] ||
                    '</p>' END,
           m.kind = 'note',
           m.mdate,
           '<bench-' || %%(seed)s || '-' || m.id || '-' || m.j || '@bench.invalid>',
           m.mdate, m.mdate, m.writer_uid, m.writer_uid
           %(xsels)s
      FROM (
        SELECT p.id, p.m_off, p.name, p.company_id, p.partner_id, p.contact_name, p.email_from,
               p.subject, j, %(kind)s AS kind, %(mdate)s AS mdate, %(r_body)s AS r_body,
               (%%(act_types)s::int[])[1 + floor(%(r_act)s *
                   cardinality(%%(act_types)s::int[]))::int] AS act_type,
               (%%(act_names)s::text[])[1 + floor(%(r_act)s *
                   cardinality(%%(act_types)s::int[]))::int] AS act_name,
               COALESCE(p.user_id, %%(admin)s) AS writer_uid,
               COALESCE(p.user_partner_id, %%(admin_partner)s) AS writer_partner,
               COALESCE(up.email, 'admin@example.com') AS writer_email
          FROM _bench_lead p
          LEFT JOIN res_partner up ON up.id = COALESCE(p.user_partner_id, %%(admin_partner)s)
          CROSS JOIN LATERAL generate_series(1, p.n_msg) j
         WHERE p.n_msg > 0
      ) m
    """
        % {
            "cols": ", ".join(given),
            "xcols": xcols,
            "xsels": xsels,
            "kind": kind,
            "mdate": mdate,
            "r_body": rnd("mbody", key),
            "r_act": rnd("mact", key),
            "n_in": len(IN_BODIES),
            "n_out": len(OUT_BODIES),
            "n_note": len(NOTE_BODIES),
        },
        params,
    )
    return cr.rowcount


IN_BODIES = [
    "could you send me a quotation?",
    "we would like a demo next week.",
    "what are your prices for 20 users?",
    "thanks for the call, we are interested.",
    "we need the offer before Friday.",
    "can we discuss the delivery terms?",
    "our director asked for references.",
    "please call me back tomorrow.",
]
OUT_BODIES = [
    "Thank you for your interest, please find our offer attached.",
    "As discussed, here is the planning for the demo.",
    "Following our call, I summarized the next steps below.",
    "Could you confirm the number of users?",
    "Here are two customer references in your industry.",
    "Our proposal is valid until the end of the month.",
]
NOTE_BODIES = [
    "Customer compares us with two competitors.",
    "Budget confirmed by phone.",
    "Decision maker is the CFO.",
    "Call back after the holidays.",
    "Wants a discount of 10 %.",
]


def _insert_activities(cr, rnd, params):
    total = _one(cr, "SELECT COALESCE(SUM(n_planned), 0) FROM _bench_lead")
    base = _reserve_ids(cr, "mail_activity", total)
    params["abase"] = base
    key = "p.i * 4 + a"
    given = [
        "id",
        "res_model_id",
        "res_model",
        "res_id",
        "res_name",
        "activity_type_id",
        "summary",
        "note",
        "date_deadline",
        "user_id",
        "automated",
        "active",
        "create_date",
        "write_date",
        "create_uid",
        "write_uid",
    ]
    xcols, xsels = _bulk_extra(cr, "mail_activity", given, params)
    cr.execute(
        """
    INSERT INTO mail_activity (%(cols)s%(xcols)s)
    SELECT %%(abase)s + p.a_off + a, %%(lead_model)s, 'crm.lead', p.id, p.name,
           (%%(act_types)s::int[])[1 + floor(%(r_type)s * cardinality(%%(act_types)s::int[]))::int],
           (%%(act_summaries)s::text[])[1 + floor(%(r_sum)s * %(n_sum)d)::int],
           CASE WHEN %(r_note)s < 0.3 THEN '<p>Prepare the figures before the call.</p>' END,
           (%%(anchor)s::timestamp)::date + (floor(-14 + 44 * %(r_dl)s))::int,
           COALESCE(p.user_id, p.leader, %%(admin)s), FALSE, TRUE,
           GREATEST(p.create_date, %%(anchor)s::timestamp - interval '10 days' * %(r_c)s),
           GREATEST(p.create_date, %%(anchor)s::timestamp - interval '10 days' * %(r_c)s),
           COALESCE(p.user_id, %%(admin)s), COALESCE(p.user_id, %%(admin)s)
           %(xsels)s
      FROM _bench_lead p CROSS JOIN LATERAL generate_series(1, p.n_planned) a
     WHERE p.n_planned > 0
    """
        % {
            "cols": ", ".join(given),
            "xcols": xcols,
            "xsels": xsels,
            "r_type": rnd("atype", key),
            "r_sum": rnd("asum", key),
            "n_sum": len(ACTIVITY_SUMMARIES),
            "r_note": rnd("anote", key),
            "r_dl": rnd("adl", key),
            "r_c": rnd("acdate", key),
        },
        params,
    )
    return cr.rowcount


def _insert_history(cr, params):
    total = _one(
        cr,
        """SELECT COALESCE(SUM(1 + (trend IN ('up', 'down'))::int), 0)
                          FROM _bench_lead WHERE has_scores""",
    )
    base = _reserve_ids(cr, "crm_lead_score_history", total)
    params["hbase"] = base
    given = [
        "id",
        "lead_id",
        "company_id",
        "score",
        "previous_score",
        "change",
        "trend",
        "method",
        "reason",
        "create_date",
        "write_date",
        "create_uid",
        "write_uid",
    ]
    date_col = ""
    if _has_column(cr, "crm_lead_score_history", "date"):  # scoring date (newer versions)
        given.append("date")
        date_col = ", h.d"
    xcols, xsels = _bulk_extra(cr, "crm_lead_score_history", given, params)
    cr.execute(
        """
    INSERT INTO crm_lead_score_history (%(cols)s%(xcols)s)
    SELECT %%(hbase)s + p.h_off + h.n, p.id, p.company_id, h.score, h.previous, h.change, h.trend,
           p.method, h.reason, h.d, h.d, 1, 1%(date_col)s %(xsels)s
      FROM _bench_lead p
      CROSS JOIN LATERAL (
          -- first scoring ("new"), then the last change when the trend is up or down
          SELECT 1 AS n,
                 CASE WHEN p.trend IN ('up', 'down') THEN p.prev_score ELSE p.score END AS score,
                 0.0 AS previous, 0.0 AS change, 'new' AS trend,
                 'enrichment' AS reason,
                 p.create_date + (p.ai_date - p.create_date) * 0.3 AS d
          UNION ALL
          SELECT 2, p.score, p.prev_score, p.score - p.prev_score, p.trend, 'enrichment', p.ai_date
           WHERE p.trend IN ('up', 'down')
      ) h
     WHERE p.has_scores
    """
        % {"cols": ", ".join(given), "xcols": xcols, "xsels": xsels, "date_col": date_col},
        params,
    )
    return cr.rowcount


# ------------------------------------------------------------
# Entry point
# ------------------------------------------------------------


def generate(
    cr,
    leads=100000,
    seed=42,
    scored_ratio=0.6,
    now=None,
    message_ratio=0.5,
    activity_ratio=0.5,
    verbose=True,
):
    """Fill the database of ``cr`` with ``leads`` leads and their context; return the counts.

    :param cr: Odoo cursor or psycopg2 cursor (crm and llm_lead_scoring installed). Nothing is
        committed: the caller commits (the command line does).
    :param int leads: number of crm.lead rows to add (setup records are reused when present).
    :param int seed: same seed + same database state + same ``now`` = same rows.
    :param float scored_ratio: share of leads with AI status completed (others pending, failed
        or never scored).
    :param datetime now: anchor of the two years of history (naive UTC); default: this hour.
    :param float message_ratio: density of chatter messages (0.5 = about 1.6 per lead).
    :param float activity_ratio: share of open leads with planned activities.
    """
    started = time.monotonic()
    steps = {}

    def step(name, t0):
        steps[name] = round(time.monotonic() - t0, 2)
        _log(verbose, "  %-28s %7.2f s", name, steps[name])
        return time.monotonic()

    odoo_env = _odoo_env(cr)
    if odoo_env is not None:
        odoo_env.flush_all()
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    anchor = now.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    leads = int(leads)
    rnd = _Rand(seed)
    _log(
        verbose,
        "bench generator: %s leads, seed %s, scored %.0f%%, anchor %s UTC",
        leads,
        seed,
        scored_ratio * 100,
        anchor,
    )
    cr.execute("SET LOCAL work_mem = '256MB'")
    cr.execute("SET LOCAL maintenance_work_mem = '512MB'")
    cr.execute("SET LOCAL synchronous_commit = off")
    cr.execute(
        "SET LOCAL jit = off"
    )  # compiling these wide expressions costs more than running them
    _try_set(cr, "temp_buffers = '256MB'")  # refused once the session has used temp tables
    # the rows are consistent by construction: skip the foreign-key triggers (superuser only)
    fk_off = _try_set(cr, "session_replication_role = replica")
    if not fk_off:
        _log(verbose, "  (not superuser: foreign keys are checked row by row, slower)")
    t = time.monotonic()

    main_company = _one(cr, "SELECT company_id FROM res_users WHERE id = 2") or _one(
        cr, "SELECT MIN(id) FROM res_company"
    )
    admin_partner = _one(cr, "SELECT partner_id FROM res_users WHERE id = 2")
    lang_id, lang = _all(
        cr,
        """SELECT id, code FROM res_lang WHERE active
                                ORDER BY code = 'en_US' DESC, id LIMIT 1""",
    )[0]
    main_currency, currencies, currency_ids = _setup_currencies(cr, main_company, anchor, verbose)
    foreign = _setup_companies(cr, main_company, currencies, currency_ids, anchor)
    rates = _setup_rates(
        cr,
        [(main_company, main_currency)] + foreign,
        currencies,
        currency_ids,
        anchor,
        main_company,
    )
    _apply_implied_to_internal_users(cr, _xmlid(cr, "base", "group_multi_currency"))
    users = _setup_users(cr, HOME_TEAMS, foreign, main_company, anchor)
    teams = _setup_teams(cr, users, foreign, main_company, anchor)
    open_stages, won_stage = _setup_stages(cr, anchor)
    reasons = _setup_lost_reasons(cr, anchor)
    act_types, act_names = _activity_types(cr)
    t = step("setup", t)

    # small lookup tables for the plan
    cr.execute(
        "DROP TABLE IF EXISTS _bench_team, _bench_member, _bench_country, _bench_lead, "
        "_bench_plan, _bench_plan2"
    )
    cr.execute("""CREATE TEMP TABLE _bench_team (idx int, team_id int, company_id int, lo float8,
                  hi float8, nmem int, leader int)""")
    cr.execute(
        "CREATE TEMP TABLE _bench_member (team_idx int, k int, user_id int, partner_id int, "
        "company_id int)"
    )
    home_teams = [tm for tm in teams if tm["company_id"] in (None, main_company)]
    foreign_teams = [tm for tm in teams if tm["company_id"] not in (None, main_company)]
    home_members = []
    for tm in home_teams:
        home_members += [m for m in tm["members"] if m not in home_members]
    spans = [(0, None, None, NO_TEAM_SHARE, home_members, None)]
    for tm in home_teams:
        spans.append(
            (
                len(spans),
                tm["team_id"],
                tm["company_id"],
                MAIN_TEAM_SHARE / len(home_teams),
                tm["members"],
                tm["leader"],
            )
        )
    for tm, share in zip(foreign_teams, FOREIGN_TEAM_SHARES, strict=False):
        spans.append(
            (len(spans), tm["team_id"], tm["company_id"], share, tm["members"], tm["leader"])
        )
    total_share = sum(s[3] for s in spans)
    lo = 0.0
    for idx, team_id, company_id, share, members, leader in spans:
        hi = lo + share / total_share
        if idx == len(spans) - 1:
            hi = 1.0000001
        cr.execute(
            "INSERT INTO _bench_team VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [idx, team_id, company_id, lo, hi, max(len(members), 1), leader],
        )
        for k, (user_id, partner_id, user_company) in enumerate(members):
            cr.execute(
                "INSERT INTO _bench_member VALUES (%s, %s, %s, %s, %s)",
                [idx, k, user_id, partner_id, user_company],
            )
        lo = hi
    country_ids = dict(
        _all(
            cr, "SELECT code, id FROM res_country WHERE code = ANY(%s)", [[c[0] for c in COUNTRIES]]
        )
    )
    cr.execute(
        "CREATE TEMP TABLE _bench_country (country_id int, pattern text, tld text, cities text[], "
        "lo float8, hi float8)"
    )
    lo = 0.0
    for n, (code, share, pattern, tld, cities) in enumerate(COUNTRIES):
        hi = 1.0000001 if n == len(COUNTRIES) - 1 else lo + share
        cr.execute(
            "INSERT INTO _bench_country VALUES (%s, %s, %s, %s, %s, %s)",
            [country_ids.get(code), pattern, tld, cities, lo, hi],
        )
        lo = hi

    n_partners = max(50, leads // 8)
    with _BulkLoad(cr, "res_partner", n_partners, verbose):
        pbase = _create_partners(cr, rnd, n_partners, anchor, COUNTRIES, lang, verbose)
    t = step("partners", t)

    weights = {"w_comp": 30, "w_clar": 40, "w_eng": 30}
    plans = _all(
        cr,
        "SELECT id, GREATEST(number_of_months, 1) FROM crm_recurring_plan WHERE active ORDER BY id",
    )
    params = {
        "n": leads,
        "anchor": anchor,
        "lead_share": LEAD_TYPE_SHARE,
        "unassigned": UNASSIGNED_SHARE,
        "win_rate": WIN_RATE,
        "archived": ARCHIVED_SHARE,
        "n_open_stages": len(open_stages),
        "open_stages": open_stages,
        "won_stage": won_stage,
        "pbase": pbase,
        "np": n_partners,
        "lbase": _reserve_ids(cr, "crm_lead", leads),
        "first": FIRST_NAMES,
        "last": LAST_NAMES,
        "wa": COMPANY_WORDS_A,
        "wb": COMPANY_WORDS_B,
        "forms": COMPANY_FORMS,
        "providers": MAIL_PROVIDERS,
        "streets": STREETS,
        "jobs": JOB_TITLES,
        "reasons": reasons,
        "subjects": SUBJECTS,
        "msg_ratio": message_ratio,
        "act_ratio": activity_ratio,
        "scored": scored_ratio,
        "pending": PENDING_SHARE,
        "failed": FAILED_SHARE,
        "clarity": _clarity_scores(),
        "lang_id": lang_id,
        "descriptions": DESCRIPTIONS,
        "sources": [r[0] for r in _all(cr, "SELECT id FROM utm_source ORDER BY id")],
        "mediums": [r[0] for r in _all(cr, "SELECT id FROM utm_medium WHERE active ORDER BY id")],
        "plans": [p[0] for p in plans],
        "plan_months": [p[1] for p in plans],
        "admin": 2,
        "admin_partner": admin_partner,
        "errors": AI_ERRORS,
        "s_email": STRENGTHS["email"],
        "s_phone": STRENGTHS["phone"],
        "s_company": STRENGTHS["company"],
        "s_revenue": STRENGTHS["revenue"],
        "s_clear": STRENGTHS["clear"],
        "s_engaged": STRENGTHS["engaged"],
        "k_email": RISKS["email"],
        "k_phone": RISKS["phone"],
        "k_vague": RISKS["vague"],
        "k_silent": RISKS["silent"],
        "k_revenue": RISKS["revenue"],
        "tags": [r[0] for r in _all(cr, "SELECT id FROM crm_tag ORDER BY id")],
        "seed": str(seed),
        "act_types": act_types,
        "act_names": act_names,
        "act_summaries": ACTIVITY_SUMMARIES,
        "lead_model": _one(cr, "SELECT id FROM ir_model WHERE model = 'crm.lead'"),
        "st_comment": _xmlid(cr, "mail", "mt_comment"),
        "st_note": _xmlid(cr, "mail", "mt_note"),
        "st_activities": _xmlid(cr, "mail", "mt_activities"),
        "in_bodies": IN_BODIES,
        "out_bodies": OUT_BODIES,
        "note_bodies": NOTE_BODIES,
    }
    params.update(weights)
    _build_plan(cr, rnd, params, verbose)
    _score_plan(cr, rnd, params)
    t = step("plan", t)
    with _BulkLoad(cr, "crm_lead", leads, verbose):
        n_leads = _insert_leads(cr, rnd, params)
    t = step("crm_lead", t)
    n_tags = _insert_tags(cr, rnd, params)
    t = step("crm_tag_rel", t)
    with _BulkLoad(
        cr, "mail_message", _one(cr, "SELECT COALESCE(SUM(n_msg), 0) FROM _bench_lead"), verbose
    ):
        n_messages = _insert_messages(cr, rnd, params)
    t = step("mail_message", t)
    n_activities = _insert_activities(cr, rnd, params)
    t = step("mail_activity", t)
    with _BulkLoad(cr, "crm_lead_score_history", leads, verbose):
        n_history = _insert_history(cr, params)
    t = step("crm_lead_score_history", t)
    _insert_dashboard_ai_rows(cr, params["lbase"] + 1, params["lbase"] + n_leads)
    t = step("crm_lead_ai_dashboard", t)

    stats = dict(
        _all(
            cr,
            """SELECT 'won', COUNT(*) FILTER (WHERE status = 'won') FROM _bench_lead
                       UNION ALL SELECT 'lost', COUNT(*) FILTER (WHERE status = 'lost') FROM
                           _bench_lead
                       UNION ALL SELECT 'archived', COUNT(*) FILTER (WHERE status = 'archived')
                           FROM _bench_lead
                       UNION ALL SELECT 'open', COUNT(*) FILTER (WHERE status = 'open') FROM
                           _bench_lead
                       UNION ALL SELECT 'type_lead', COUNT(*) FILTER (WHERE is_lead) FROM
                           _bench_lead
                       UNION ALL SELECT 'foreign_currency', COUNT(*) FILTER (WHERE company_id =
                           ANY(%s)) FROM _bench_lead
                       UNION ALL SELECT 'no_company', COUNT(*) FILTER (WHERE company_id IS NULL)
                           FROM _bench_lead
                       UNION ALL SELECT 'ai_completed', COUNT(*) FILTER (WHERE ai_status =
                           'completed') FROM _bench_lead
                       UNION ALL SELECT 'ai_pending', COUNT(*) FILTER (WHERE ai_status = 'pending')
                           FROM _bench_lead
                       UNION ALL SELECT 'ai_failed', COUNT(*) FILTER (WHERE ai_status = 'failed')
                           FROM _bench_lead
                       UNION ALL SELECT 'overdue_activities', COUNT(*) FROM mail_activity
                                  WHERE id > %s AND date_deadline < %s""",
            [[f[0] for f in foreign] or [0], params["abase"], anchor.date()],
        )
    )
    cr.execute("DROP TABLE _bench_lead, _bench_team, _bench_member, _bench_country")
    for table in (
        "crm_lead",
        "res_partner",
        "mail_message",
        "mail_activity",
        "crm_lead_score_history",
        "crm_tag_rel",
        "res_users",
        "crm_team",
        "crm_team_member",
        "res_currency_rate",
        "res_company",
    ):
        cr.execute('ANALYZE "%s"' % table)
    t = step("analyze", t)
    for setting in ("work_mem", "maintenance_work_mem", "synchronous_commit", "jit"):
        cr.execute("RESET %s" % setting)
    if fk_off:
        cr.execute("SET LOCAL session_replication_role = origin")
    if odoo_env is not None:
        odoo_env.invalidate_all()
        odoo_env.registry.clear_all_caches()
    elapsed = round(time.monotonic() - started, 1)
    counts = {
        "leads": n_leads,
        "partners": n_partners,
        "messages": n_messages,
        "activities": n_activities,
        "score_history": n_history,
        "tag_links": n_tags,
        "salespeople": len(users),
        "teams": len(teams),
        "companies": 1 + len(foreign),
        "currencies": currencies,
        "currency_rates": rates,
        "stages": len(open_stages) + 1,
        "lost_reasons": len(reasons),
        "lead_ids": (params["lbase"] + 1, params["lbase"] + n_leads),
        "seconds": elapsed,
        "steps": steps,
    }
    counts.update(stats)
    _log(
        verbose,
        "bench generator: done in %.1f s: %s leads (%s won, %s lost, %s archived), "
        "%s messages, %s activities (%s overdue), %s history rows, %s partners",
        elapsed,
        n_leads,
        stats["won"],
        stats["lost"],
        stats["archived"],
        n_messages,
        n_activities,
        stats["overdue_activities"],
        n_history,
        n_partners,
    )
    return counts


def _odoo_env(cr):
    """An environment on ``cr`` when it is an Odoo cursor (to flush before and invalidate after)."""
    if not hasattr(cr, "transaction") or not hasattr(cr, "dbname"):
        return None
    try:
        from odoo import SUPERUSER_ID, api
    except ImportError:
        return None
    return api.Environment(cr, SUPERUSER_ID, {})


def _insert_dashboard_ai_rows(cr, first_id, last_id):
    """The rows of the generated leads in the dashboard's narrow AI table, when
    crm_executive_dashboard is installed: its triggers on crm_lead write them, but the triggers
    are off while generating (session_replication_role). The same rows as its triggers write
    (crm_executive_dashboard/models/crm_lead.py, AI_COLUMNS)."""
    if not _one(cr, "SELECT to_regclass('crm_lead_ai_dashboard') IS NOT NULL"):
        return
    cr.execute(
        """INSERT INTO crm_lead_ai_dashboard (lead_id, scored_at, score, completeness, clarity,
                                              engagement, status, lead_create_date,
                                              lead_date_closed)
           SELECT id, ai_last_enrichment_date, ai_probability_score, ai_completeness_score,
                  ai_clarity_score, ai_engagement_score, ai_enrichment_status, create_date,
                  date_closed
             FROM crm_lead
            WHERE id BETWEEN %s AND %s
              AND (ai_last_enrichment_date IS NOT NULL OR ai_enrichment_status IS NOT NULL)""",
        (first_id, last_id),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Fill an Odoo 17 CRM database with benchmark data."
    )
    parser.add_argument("-d", "--database", required=True)
    parser.add_argument("--leads", type=int, default=100000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scored-ratio", type=float, default=0.6)
    parser.add_argument("--message-ratio", type=float, default=0.5)
    parser.add_argument("--activity-ratio", type=float, default=0.5)
    parser.add_argument(
        "--now", help="anchor date (YYYY-MM-DD[THH:MM], UTC) for reproducible dates"
    )
    parser.add_argument("--db-host", "--db_host", default=os.environ.get("PGHOST", "127.0.0.1"))
    parser.add_argument(
        "--db-port", "--db_port", type=int, default=int(os.environ.get("PGPORT", "5432"))
    )
    parser.add_argument("--db-user", "--db_user", default=os.environ.get("PGUSER", "odoo"))
    parser.add_argument(
        "--db-password", "--db_password", default=os.environ.get("PGPASSWORD", "odoo")
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not 0 <= args.scored_ratio <= 1:
        parser.error("--scored-ratio must be between 0 and 1")
    now = None
    if args.now:
        now = datetime.datetime.fromisoformat(args.now)
    import psycopg2

    conn = psycopg2.connect(
        dbname=args.database,
        host=args.db_host,
        port=args.db_port,
        user=args.db_user,
        password=args.db_password,
    )
    try:
        with conn.cursor() as cr:
            counts = generate(
                cr,
                leads=args.leads,
                seed=args.seed,
                scored_ratio=args.scored_ratio,
                now=now,
                message_ratio=args.message_ratio,
                activity_ratio=args.activity_ratio,
                verbose=not args.quiet,
            )
        conn.commit()
    finally:
        conn.close()
    if not args.quiet:
        sys.stdout.write(json.dumps({k: v for k, v in counts.items() if k != "steps"}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
