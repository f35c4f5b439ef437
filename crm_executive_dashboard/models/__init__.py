from . import crm_executive_dashboard
from . import crm_lead
