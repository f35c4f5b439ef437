from . import crm_executive_dashboard
from . import crm_executive_dashboard_figures
from . import crm_executive_dashboard_sections
from . import crm_executive_dashboard_activities
from . import crm_executive_dashboard_ai
from . import crm_executive_dashboard_export
from . import crm_lead
