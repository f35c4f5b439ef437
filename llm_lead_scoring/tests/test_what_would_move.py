from odoo.tests import tagged

from ..models.llm_scoring_model_explain import CHANGEABLE
from .common_bant import BantHistoryCommon


@tagged("llm_lead_scoring", "llm_what_would_move")
class TestWhatWouldMove(BantHistoryCommon):
    def _open_lead(self, **vals):
        values = {
            "name": "Open lead",
            "type": "opportunity",
            "team_id": False,
            "description": False,
            "ai_bant_budget": "unknown",
        }
        values.update(vals)
        return self.env["crm.lead"].create(values)

    def test_moves_raise_the_probability_and_are_changeable(self):
        self.assertTrue(self.model, self.summary["message"])
        lead = self._open_lead()  # no phone, no source, budget unknown, no customer
        Model = self.env["llm.scoring.model"]
        moves = Model._what_would_move_data(self.env.company, lead.ids)[lead.id]
        fields_moved = [field for field, _before, _after in moves]
        changeable = {field for field, _values in CHANGEABLE}
        self.assertLessEqual(len(moves), 3)
        self.assertTrue(set(fields_moved) <= changeable, fields_moved)
        # the strongest lever of this history first: confirming the budget
        self.assertEqual(fields_moved[0], "bant_budget")
        self.assertIn("phone", fields_moved)
        # linking a customer lowers the chance here: never proposed
        self.assertNotIn("partner", fields_moved)
        before = moves[0][1]
        for _field, now, after in moves:
            self.assertEqual(now, before)
            self.assertGreater(after, now)
        gains = [after - now for _f, now, after in moves]
        self.assertEqual(gains, sorted(gains, reverse=True))
        # the "before" is the lead's win probability with the published model
        Model._rescore_open_leads(self.env.company)
        self.assertAlmostEqual(lead.ai_win_probability, round(100 * before, 1), places=1)
        self.assertIn("Confirm the budget: %s %%" % round(100 * before), lead.ai_what_would_move)

    def test_changes_done_are_not_proposed_and_the_probability_moves_as_said(self):
        lead = self._open_lead()
        Model = self.env["llm.scoring.model"]
        moves = dict(
            (f, (b, a))
            for f, b, a in Model._what_would_move_data(self.env.company, lead.ids)[lead.id]
        )
        lead.write({"ai_bant_budget": "confirmed"})
        after = Model._what_would_move_data(self.env.company, lead.ids).get(lead.id, [])
        self.assertNotIn("bant_budget", [f for f, _b, _a in after])
        # changed alone, the probability is the one announced
        self.assertAlmostEqual(after[0][1], moves["bant_budget"][1], places=6)
        # a lead with everything set has nothing left to propose on those features
        lead.write({"phone": "+32 2 555 12 12", "source_id": self.sources[0].id})
        lead.phone_state = "correct"
        done = Model._what_would_move_data(self.env.company, lead.ids).get(lead.id, [])
        self.assertFalse({"bant_budget", "phone", "source"} & {f for f, _b, _a in done})

    def test_batched_and_empty_without_a_model(self):
        leads = self.env["crm.lead"].create(
            [{"name": "Batch %s" % i, "type": "opportunity", "team_id": False} for i in range(20)]
        )

        def queries(records):
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            texts = records.mapped("ai_what_would_move")
            self.assertTrue(all(texts))
            return self.env.cr.sql_log_count - before

        queries(leads)  # the creation's pending writes flushed, the ORM's caches warm
        # the same few queries for 2 leads or 20: the leads, the model, the features
        self.assertEqual(queries(leads[:2]), queries(leads))
        self.assertLessEqual(queries(leads), 5)
        self.model.write({"active": False, "state": "replaced"})
        leads.invalidate_recordset()
        self.assertFalse(any(leads.mapped("ai_what_would_move")))
