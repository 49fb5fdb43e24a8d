"""Sphinx configuration for ptycore's documentation."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "ptycore"
author = "the ptycore maintainers"
copyright = "2026, the ptycore maintainers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "session_diagram",
    "modes_table",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
nitpicky = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
