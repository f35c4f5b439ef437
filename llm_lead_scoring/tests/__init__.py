from . import test_llm_provider
from . import test_llm_service
from . import test_crm_lead_scoring
from . import test_cron
from . import test_learned_model
from . import test_gateway_access
from . import test_gateway
