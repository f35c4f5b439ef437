"""Tests that need no Odoo: the plain-Python helpers of llm_lead_scoring/lib.

The addon's package imports Odoo, so its lib/ folder is loaded here as a package of its own.
"""

import importlib.util
import pathlib
import sys

LIB = pathlib.Path(__file__).resolve().parent.parent / "llm_lead_scoring" / "lib"


def _load_lib():
    spec = importlib.util.spec_from_file_location(
        "llm_lib", LIB / "__init__.py", submodule_search_locations=[str(LIB)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["llm_lib"] = module
    spec.loader.exec_module(module)
    return module


_load_lib()
