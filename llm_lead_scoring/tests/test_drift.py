import math
from datetime import timedelta

from odoo.tests import tagged

from .common_bant import BantHistoryCommon


def shares(probabilities):
    """Independent binning: 10 equal-width bands of the probability, 1.0 in the last."""
    counts = [0] * 10
    for p in probabilities:
        counts[9 if p >= 1 else int(math.floor(p * 10))] += 1
    return [c / len(probabilities) for c in counts]


@tagged("llm_lead_scoring", "llm_drift")
class TestDrift(BantHistoryCommon):
    def _managers(self):
        return self.env.ref("sales_team.group_sale_manager").users.filtered(
            lambda u: not u.share and self.env.company in u.company_ids
        )

    def _drift_activities(self):
        return self.env["mail.activity"].search(
            [("res_model", "=", "llm.scoring.model"), ("res_id", "=", self.model.id)]
        )

    def _save_settings(self, **values):
        for _i in range(2):  # saved twice, as a user clicking Save again
            self.env["res.config.settings"].create(values).execute()

    def test_after_training_nothing_new(self):
        self.assertTrue(self.model.training_distribution, self.summary["message"])
        self.assertAlmostEqual(sum(self.model.training_distribution), 1.0)
        self.assertTrue(self.model.drift_checked_at)  # checked right after the training
        self.assertEqual((self.model.drift_new_count, self.model.drift_psi), (0, 0.0))
        self.assertFalse(self._drift_activities())

    def test_psi_against_an_independent_computation_and_one_activity(self):
        Model = self.env["llm.scoring.model"]
        company = self.env.company
        # the leads coming in have changed: all with a confirmed budget
        later = self.model.trained_at + timedelta(minutes=1)
        new_ids = self._insert_leads(300, seed=2, created=later, closed=False, budget="confirmed")
        Model._check_drift(company)
        # independently: every closed lead the model learned from and every new lead scored
        # through the rescoring's own path, binned and compared here
        closed = (
            self.env["crm.lead"]
            .with_context(active_test=False)
            .search(
                [
                    ("company_id", "in", [company.id, False]),
                    "|",
                    "&",
                    ("active", "=", True),
                    ("stage_id.is_won", "=", True),
                    "&",
                    ("active", "=", False),
                    ("probability", "=", 0),
                ]
            )
        )
        self.assertEqual(len(closed), self.model.leads_used)
        predict = Model._predict_rows

        def probabilities(ids):
            return [p["probability"] for p in predict(company, Model._lead_rows(ids)).values()]

        expected, actual = shares(probabilities(closed.ids)), shares(probabilities(new_ids))
        psi = sum(
            (max(a, 1e-4) - max(e, 1e-4)) * math.log(max(a, 1e-4) / max(e, 1e-4))
            for e, a in zip(expected, actual, strict=True)
        )
        self.assertEqual(self.model.drift_new_count, 300)
        self.assertAlmostEqual(self.model.drift_psi, psi, delta=0.0005)  # stored with 3 digits
        self.assertGreater(psi, 0.2)  # the default threshold
        activities = self._drift_activities()
        self.assertEqual(activities.user_id, self._managers()[:10])
        self.assertEqual(len(activities), len(activities.user_id))  # one each
        self.assertIn("%.3f" % psi, activities[0].note)
        self.assertEqual(self.model.drift_alerted, "psi")
        # weekly cron, same drift: no second activity
        self.env.ref("llm_lead_scoring.ir_cron_llm_lead_scoring_drift").method_direct_trigger()
        self.assertEqual(self._drift_activities(), activities)

    def test_calibration_on_leads_closed_since_training(self):
        Model = self.env["llm.scoring.model"]
        company = self.env.company
        later = self.model.trained_at + timedelta(minutes=1)
        # closed since training, won far more often than predicted: all were won
        ids = self._insert_leads(120, seed=3, created=later, closed=later)
        self.env.cr.execute(
            "UPDATE crm_lead SET active = TRUE, probability = 100, stage_id = %s "
            "WHERE id = ANY(%s)",
            [self.won_stage.id, ids],
        )
        self.env.invalidate_all()
        self._save_settings(llm_drift_psi_threshold=0, llm_drift_calibration_threshold=0.05)
        self.assertEqual(company.llm_drift_psi_threshold, 0.0)  # 0 stays 0: not watched
        Model._check_drift(company)
        predicted = [
            p["probability"] for p in Model._predict_rows(company, Model._lead_rows(ids)).values()
        ]
        # every lead won: the calibration error is 1 - the mean prediction
        self.assertEqual(self.model.drift_closed_count, 120)
        self.assertAlmostEqual(
            self.model.drift_calibration_error, 1 - sum(predicted) / len(predicted), delta=0.0005
        )
        self.assertGreater(self.model.drift_psi, 0.0)  # measured, but not watched
        self.assertEqual(self.model.drift_alerted, "calibration")
        self.assertEqual(len(self._drift_activities()), len(self._managers()[:10]))

    def test_thresholds_off_no_activity(self):
        later = self.model.trained_at + timedelta(minutes=1)
        self._insert_leads(300, seed=2, created=later, closed=False, budget="confirmed")
        self._save_settings(llm_drift_psi_threshold=0, llm_drift_calibration_threshold=0)
        company = self.env.company
        self.assertEqual(
            (company.llm_drift_psi_threshold, company.llm_drift_calibration_threshold), (0, 0)
        )
        self.env["llm.scoring.model"]._check_drift(company)
        self.assertGreater(self.model.drift_psi, 0.2)
        self.assertFalse(self._drift_activities())
        # back to the defaults through the page: the next check alerts
        self._save_settings(llm_drift_psi_threshold=0.2, llm_drift_calibration_threshold=0.05)
        self.env["llm.scoring.model"]._check_drift(company)
        self.assertTrue(self._drift_activities())
