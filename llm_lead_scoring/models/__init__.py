from . import llm_provider
from . import llm_service
from . import llm_scoring_model
from . import crm_lead
from . import crm_lead_score_history
from . import res_company
from . import res_config_settings
