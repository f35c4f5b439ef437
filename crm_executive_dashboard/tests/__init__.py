from . import test_dashboard_data
from . import test_controller
from . import test_performance
from . import test_ui
from . import test_dashboard_fixes
