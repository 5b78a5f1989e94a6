"""Sphinx configuration of xentbench's documentation site.

Build it with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(``pip install -e '.[docs]'`` first); ``-b doctest`` runs every example of the
pages and docstrings (``tests/test_docs.py`` does both).

Why Sphinx, numpydoc, MyST and the PyData theme: the people who use this suite
read the NumPy, SciPy and scikit-learn references every day, which are built
exactly so; numpydoc is the docstring style of ``impls``' functions (Parameters
with shapes and dtypes, Returns, Raises, Examples); MyST lets the guides stay
Markdown, readable on a forge as they are; and Sphinx's doctest builder runs
the examples of both.
"""

import doctest
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's impls and xentbench, whatever is installed
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))
os.environ.setdefault("COLUMNS", "100")  # the width argparse wraps the commands' help to

project = "xentbench"
author = "the xentbench developers"
copyright = "the xentbench developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "xentbench_commands",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

numpydoc_show_class_members = False
numpydoc_xref_param_type = False
autodoc_member_order = "bysource"

doctest_global_setup = "import numpy as np\nimport impls"
# the same comparison as the README's examples (tests/test_readme.py)
doctest_default_flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS

html_theme = "pydata_sphinx_theme"
html_title = "xentbench"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
