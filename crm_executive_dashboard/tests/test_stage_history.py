from freezegun import freeze_time

from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import JsonRpcException
from odoo.tools import mute_logger

from .analyses_common import AnalysesCommon


class StageHistoryCase(AnalysesCommon):
    def rows(self, lead):
        """[(stage left, stage entered, entered, left)] of a lead's stage history table."""
        history = self.env["crm.lead.stage.history"].search(
            [("lead_id", "=", lead.id)], order="date_to, id"
        )
        return [(h.stage_id.id, h.next_stage_id.id, h.date_from, h.date_to) for h in history]

    def expected_rows(self, lead):
        """The same, independently, from the lead's chatter (tracking values of the stage)."""
        result, previous = [], False
        for date, old, new in self.stage_changes(lead):
            result.append((old or False, new or False, previous, date))
            previous = date
        return result

    def create_date_mismatches(self):
        """[(lead, row's lead creation date, lead's)] of the rows whose lead creation date is
        not their lead's (the funnel joins the leads with their rows by it)."""
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT h.lead_id, h.lead_create_date, l.create_date
                 FROM crm_lead_stage_history h JOIN crm_lead l ON l.id = h.lead_id
                WHERE h.lead_create_date IS DISTINCT FROM l.create_date"""
        )
        return self.env.cr.fetchall()

    def move(self, leads, stage, when):
        with freeze_time(when):
            leads.write({"stage_id": stage.id})
            self.env.flush_all()
            self.env.cr.precommit.run()

    def new_lead(self, name, when, **vals):
        with freeze_time(when):
            lead = self.env["crm.lead"].create(
                dict(
                    {
                        "name": name,
                        "type": "opportunity",
                        "team_id": self.team_a.id,
                        "user_id": self.user_salesman.id,
                        "stage_id": self.stage_new.id,
                    },
                    **vals,
                )
            )
            self.env.flush_all()
            self.env.cr.precommit.run()
        return lead


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestStageHistory(StageHistoryCase):
    def test_stage_changes_and_create(self):
        """Every change of stage made through the ORM is a row, equal to the chatter's."""
        for key, lead in self.history.items():
            with self.subTest(lead=key):
                self.assertEqual(self.rows(lead), self.expected_rows(lead))
        h1 = self.history["h1"]
        self.assertEqual(
            [(left, entered) for left, entered, _from, _to in self.rows(h1)],
            [
                (self.stage_new.id, self.stage_qual.id),
                (self.stage_qual.id, self.stage_prop.id),
                (self.stage_prop.id, self.stage_won.id),
            ],
        )
        self.assertFalse(self.rows(h1)[0][2])  # the first stay began at the lead's creation
        # a new lead: no row until it changes stage, its stage is its current one
        lead = self.new_lead("History create", "2019-06-01 08:00:00")
        self.assertEqual(self.rows(lead), [])
        self.assertEqual(lead.dashboard_visited_stage_ids, self.stage_new)
        self.move(lead, self.stage_qual, "2019-06-03 08:00:00")
        self.move(lead, self.stage_qual, "2019-06-04 08:00:00")  # not a change
        self.move(lead, self.stage_prop, "2019-06-06 08:00:00")
        self.assertEqual(self.rows(lead), self.expected_rows(lead))
        self.assertEqual(len(self.rows(lead)), 2)
        self.assertEqual(self.rows(lead)[1][2], self.day("2019-06-03 08:00:00"))
        lead.invalidate_recordset()
        self.assertEqual(
            lead.dashboard_visited_stage_ids, self.stage_new | self.stage_qual | self.stage_prop
        )
        # several leads from different stages in one write: one row each
        other = self.new_lead("History create 2", "2019-06-01 09:00:00")
        self.move(lead | other, self.stage_won, "2019-06-08 08:00:00")
        self.assertEqual(self.rows(lead)[-1][:2], (self.stage_prop.id, self.stage_won.id))
        self.assertEqual(self.rows(other), self.expected_rows(other))
        # the history does not depend on the chatter: a change with tracking off is kept too
        self.move(other.with_context(tracking_disable=True), self.stage_qual, "2019-06-09")
        self.assertEqual(self.rows(other)[-1][:2], (self.stage_won.id, self.stage_qual.id))

    def test_rows_carry_the_lead_create_date(self):
        """Every row carries its lead's creation date: written by the ORM, with the lead's
        creation date written in SQL before (the fixture, as an import does) or after, and
        for a table of an earlier version without it (filled on update, indexed)."""
        History = self.env["crm.lead.stage.history"]
        self.assertGreaterEqual(History.search_count([]), 10)
        self.assertEqual(self.create_date_mismatches(), [])
        h1 = self.history["h1"]
        self.env.cr.execute(
            "UPDATE crm_lead SET create_date = '2018-12-31 23:00:00' WHERE id = %s", [h1.id]
        )
        self.assertEqual(self.create_date_mismatches(), [])
        self.env.cr.execute(
            "SELECT DISTINCT lead_create_date::text FROM crm_lead_stage_history WHERE lead_id = %s",
            [h1.id],
        )
        self.assertEqual(self.env.cr.fetchall(), [("2018-12-31 23:00:00",)])
        # a module updated over a table of the earlier version: no column, index or triggers
        self.env.cr.execute(
            """DROP TRIGGER crm_lead_stage_history_create_date ON crm_lead;
               DROP TRIGGER crm_lead_stage_history_lead_create_date ON crm_lead_stage_history;
               DROP TRIGGER crm_lead_stage_history_lead_moved ON crm_lead_stage_history;
               DROP INDEX crm_lead_stage_history_created_idx;
               ALTER TABLE crm_lead_stage_history DROP COLUMN lead_create_date"""
        )
        History._init_lead_create_date()
        self.assertEqual(self.create_date_mismatches(), [])
        self.env.cr.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = "
            "'crm_lead_stage_history_created_idx'"
        )
        self.assertIn("(lead_create_date, lead_id) INCLUDE (date_to", self.env.cr.fetchone()[0])
        # the rows written after it carry it too
        self.move(h1, self.stage_qual, "2019-04-02 09:00:00")
        self.assertEqual(self.create_date_mismatches(), [])

    def test_merge(self):
        """Merged leads give their history to the lead kept, as crm gives it their messages."""
        first = self.new_lead("Merge A", "2019-06-01 08:00:00", expected_revenue=100)
        second = self.new_lead("Merge B", "2019-06-02 08:00:00", expected_revenue=200)
        self.move(first, self.stage_qual, "2019-06-03 08:00:00")
        self.move(second, self.stage_prop, "2019-06-04 08:00:00")
        self.move(first, self.stage_prop, "2019-06-05 08:00:00")
        self.env["crm.executive.dashboard.norm"].sudo().create(
            {"key": "x", "day": "2019-06-05", "norms": {}}
        )
        # creation dates apart (the ORM writes the transaction's time): the head's rows carry
        # the head's after the merge
        self.env.cr.execute(
            "UPDATE crm_lead SET create_date = create_date - (id %% 7 + 1) * interval '1 day' "
            "WHERE id IN %s",
            [(first.id, second.id)],
        )
        (first | second).invalidate_recordset(["create_date"])
        self.assertNotEqual(first.create_date, second.create_date)
        with freeze_time("2019-06-07 08:00:00"):
            head = (first | second)._merge_opportunity(max_length=None)
            self.env.flush_all()
            self.env.cr.precommit.run()
        tail = (first | second) - head
        self.assertFalse(tail.exists())
        self.assertEqual(
            self.env["crm.lead.stage.history"].search_count([("lead_id", "in", tail.ids)]), 0
        )
        self.assertEqual(len(self.rows(head)), 3)
        self.assertEqual(self.rows(head), self.expected_rows(head))
        self.assertEqual(self.create_date_mismatches(), [])  # the rows moved to the head's
        # the norms learned from the history before the merge are forgotten
        self.assertFalse(self.env["crm.executive.dashboard.norm"].sudo().search([]))

    def test_message_moved_alone_keeps_the_history(self):
        """A salesperson may move a message of his lead to another of his leads (over RPC):
        the history stays with the lead it belongs to; only a merge, which moves every
        message, gives it away."""
        first = self.new_lead("Moved A", "2019-06-01 08:00:00")
        second = self.new_lead("Moved B", "2019-06-02 08:00:00")
        self.move(first, self.stage_qual, "2019-06-03 08:00:00")
        before_first, before_second = self.rows(first), self.rows(second)
        self.assertTrue(before_first)
        note = first.with_user(self.user_salesman).message_post(body="Meant for the other lead")
        note.with_user(self.user_salesman).write({"res_id": second.id})
        self.env.flush_all()
        self.env.invalidate_all()
        self.assertEqual(note.res_id, second.id)
        self.assertTrue(first.message_ids)
        self.assertEqual(self.rows(first), before_first)
        self.assertEqual(self.rows(second), before_second)

    def test_merge_without_messages(self):
        """A merged lead without any message (created and moved without chatter) gives its
        history too; the lead kept has messages, and the rows are chained in date order."""
        quiet = self.env["crm.lead"].with_context(tracking_disable=True, mail_create_nolog=True)
        with freeze_time("2019-06-01 08:00:00"):
            silent = quiet.create(
                {
                    "name": "Merge silent",
                    "type": "opportunity",
                    "team_id": self.team_a.id,
                    "stage_id": self.stage_new.id,
                    "expected_revenue": 500,
                }
            )
        self.move(silent.with_context(tracking_disable=True), self.stage_qual, "2019-06-02")
        self.assertFalse(silent.message_ids)
        kept = self.new_lead("Merge kept", "2019-06-03 08:00:00", expected_revenue=900)
        self.move(kept, self.stage_prop, "2019-06-04 08:00:00")
        with freeze_time("2019-06-07 08:00:00"):
            head = (kept | silent)._merge_opportunity(max_length=None)
            self.env.flush_all()
            self.env.cr.precommit.run()
        self.assertEqual(head, kept)
        self.assertFalse(silent.exists())
        rows = self.rows(head)
        self.assertEqual(len(rows), 2)
        self.assertEqual([row[3] for row in rows], sorted(row[3] for row in rows))
        self.assertFalse(rows[0][2])  # the first stay began at the creation
        self.assertEqual(rows[1][2], rows[0][3])  # each stay begins at the change before it
        self.assertEqual(self.create_date_mismatches(), [])

    def test_archive_and_unarchive(self):
        """Archiving or losing a lead keeps its history; restored, it goes on from it."""
        Lead = self.env["crm.lead"].with_context(active_test=False)
        h5, h3 = self.history["h5"], self.history["h3"]
        before = self.rows(h5)
        h5.action_archive()
        self.assertEqual(self.rows(h5), before)
        visited = [("dashboard_visited_stage_ids", "in", [self.stage_qual.id])]
        self.assertEqual(Lead.search(visited + [("id", "in", (h5 | h3).ids)]), h5 | h3)
        h5.action_unarchive()
        self.move(h5, self.stage_won, "2019-03-25 09:00:00")
        self.assertEqual(self.rows(h5)[:-1], before)
        self.assertEqual(self.rows(h5)[-1][2], before[-1][3])  # chained after the last change
        self.assertEqual(self.rows(h5), self.expected_rows(h5))
        # the lost lead h3 keeps its history when restored
        lost = self.rows(h3)
        self.assertTrue(lost)
        h3.toggle_active()
        self.assertTrue(h3.active)
        self.assertEqual(self.rows(h3), lost)

    def test_install_fill(self):
        """The install fills the table from the chatter's tracking values, in one statement:
        the same rows as the ORM keeps; stages deleted since are left empty."""
        History = self.env["crm.lead.stage.history"]
        leads = list(self.history.values())
        stage_gone = self.env["crm.stage"].create({"name": "Dash Gone", "sequence": 4})
        self.move(leads[0], stage_gone, "2019-03-28 09:00:00")
        self.move(leads[0], self.stage_won, "2019-03-29 09:00:00")
        stage_gone.unlink()
        History.invalidate_model()
        kept = {lead.id: self.rows(lead) for lead in leads}
        self.assertEqual(kept[leads[0].id][-1][:2], (False, self.stage_won.id))
        History.flush_model()
        self.env.cr.execute("DELETE FROM crm_lead_stage_history")
        History.invalidate_model()
        count = History._fill_from_tracking()
        self.assertEqual(count, History.search_count([]))
        self.assertEqual({lead.id: self.rows(lead) for lead in leads}, kept)
        self.assertEqual(self.create_date_mismatches(), [])
        # a lead's history alone
        self.env.cr.execute("DELETE FROM crm_lead_stage_history WHERE lead_id = %s", [leads[1].id])
        History.invalidate_model()
        self.assertEqual(History._fill_from_tracking(leads[1].ids), len(kept[leads[1].id]))
        self.assertEqual(self.rows(leads[1]), kept[leads[1].id])
        self.assertEqual(self.rows(leads[2]), kept[leads[2].id])


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestStageNorms(StageHistoryCase):
    def norms(self, user, companies):
        data = self.analysis(user, companies, "bottlenecks")
        return {row["stage_id"]: (row["p90_days"], row["deals"]) for row in data["rows"]}, data

    def test_norms_kept_for_the_day(self):
        """The norms are learned once a day per scope and read by the next pages of the day; a
        change of stage that wins or reopens no deal keeps them, a deal won forgets them (it
        counts at once); the next day they are learned again."""
        companies = [self.company_main.id, self.company_2.id]
        Norm = self.env["crm.executive.dashboard.norm"].sudo()
        with freeze_time("2019-03-31 12:00:00"):
            before = self.env.cr.sql_log_count
            norms, _data = self.norms(self.user_manager, companies)
            first = self.env.cr.sql_log_count - before
            self.assertEqual(len(Norm.search([("day", "=", "2019-03-31")])), 1)
            before = self.env.cr.sql_log_count
            self.assertEqual(self.norms(self.user_manager, companies)[0], norms)
            self.assertLess(self.env.cr.sql_log_count - before, first)
        self.assertEqual(norms[self.stage_new.id][1], 3)  # h1, h2, h6
        self.assertEqual(norms[self.stage_prop.id][1], 1)  # h1
        # an open deal moves on: the norms learned today are kept
        self.move(self.history["h4"], self.stage_qual, "2019-03-31 13:00:00")
        self.assertEqual(len(Norm.search([])), 1)
        # h5 won today (22 days in Dash Proposal): forgotten, learned again with it
        self.move(self.history["h5"], self.stage_won, "2019-03-31 14:00:00")
        self.assertFalse(Norm.search([]))
        with freeze_time("2019-03-31 15:00:00"):
            later, data = self.norms(self.user_manager, companies)
        self.assertEqual(later[self.stage_new.id][1], 4)
        self.assertEqual(later[self.stage_prop.id][1], 2)  # h1, h5
        for row in data["rows"]:
            self.assertEqual(self.count(self.user_manager, companies, row["domain"]), row["deals"])
        with freeze_time("2019-04-01 08:00:00"):
            self.assertEqual(self.norms(self.user_manager, companies)[0], later)
            self.assertEqual(Norm.search([]).mapped("day"), [self.day("2019-04-01").date()])

    def test_norms_under_record_rules(self):
        """A salesperson's norms learn from the won deals he may read only."""
        companies = [self.company_main.id]
        mine, _data = self.norms(self.user_salesman, companies)
        everyone, _data = self.norms(self.user_manager, companies)
        won = self.won_history(self.user_salesman, companies)
        self.assertEqual(mine[self.stage_new.id][1], len([w for w in won if self.stays(w)]))
        self.assertEqual(mine[self.stage_new.id][1], 2)  # h1, h2
        self.assertEqual(everyone[self.stage_new.id][1], 2)  # h6 is company_2's
        both, _data = self.norms(self.user_manager, [self.company_main.id, self.company_2.id])
        self.assertEqual(both[self.stage_new.id][1], 3)


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestStageHistoryAccess(HttpCase, StageHistoryCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        new_test_user(cls.env, "dash_portal_sh", groups="base.group_portal")
        cls.user_leader = new_test_user(
            cls.env, "dash_leader_sh", groups="sales_team.group_sale_salesman", tz="UTC"
        )
        cls.team_a.user_id = cls.user_leader

    def call(self, login, model, method, args, kwargs=None):
        self.authenticate(login, login)
        return self.make_jsonrpc_request(
            "/web/dataset/call_kw",
            {
                "model": model,
                "method": method,
                "args": args,
                "kwargs": dict(
                    kwargs or {}, context={"allowed_company_ids": [self.company_main.id]}
                ),
            },
        )

    def test_access_per_role(self):
        """The stage history is read like the leads: nothing for portal users and users without
        CRM rights, the rows of his own and unassigned leads for a salesperson or team leader,
        all for a manager; nobody writes it. The daily norms are for the superuser only."""
        h3 = self.history["h3"]
        self.env.cr.execute("UPDATE crm_lead SET user_id = NULL WHERE id = %s", [h3.id])
        self.env["crm.lead"].invalidate_model(["user_id"])
        history = self.env["crm.lead.stage.history"]
        read = [[("lead_id", "in", [lead.id for lead in self.history.values()])], ["lead_id"]]
        for login in ("dash_portal_sh", "dash_no_crm"):
            with (
                self.subTest(login=login),
                mute_logger("odoo.http"),
                self.assertRaises(JsonRpcException) as error,
            ):
                self.call(login, history._name, "search_read", read)
            self.assertIn("AccessError", str(error.exception))
        expected = {
            "dash_salesman": {"h1", "h2", "h3", "h5"},
            "dash_leader_sh": {"h3"},
            "dash_manager": {"h1", "h2", "h3", "h5"},  # h6 is company_2's, not selected
        }
        names = {lead.id: key for key, lead in self.history.items()}
        for login, keys in expected.items():
            with self.subTest(login=login):
                rows = self.call(login, history._name, "search_read", read)
                self.assertEqual({names[row["lead_id"][0]] for row in rows}, keys)
                with mute_logger("odoo.http"), self.assertRaises(JsonRpcException) as error:
                    self.call(
                        login,
                        history._name,
                        "create",
                        [{"lead_id": self.history["h1"].id, "date_to": "2019-03-01"}],
                    )
                self.assertIn("AccessError", str(error.exception))
                with mute_logger("odoo.http"), self.assertRaises(JsonRpcException) as error:
                    self.call(login, "crm.executive.dashboard.norm", "search_read", [[], []])
                self.assertIn("AccessError", str(error.exception))
