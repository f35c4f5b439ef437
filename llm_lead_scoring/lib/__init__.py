# Plain-Python helpers of llm_lead_scoring: no Odoo import, so they run in worker
# threads (HTTP) and are tested without a database (see tests_pure/ at the repository root).
