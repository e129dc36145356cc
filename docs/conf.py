"""Sphinx configuration for skquant's documentation."""

import skquant

project = "skquant"
author = "the skquant developers"
copyright = "2026, the skquant developers"
release = version = skquant.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
]
autosummary_generate = True
# scikit-learn's metadata-routing helpers are generated on every estimator;
# their docstrings point into scikit-learn's own docs, so they are left out.
autodoc_default_options = {
    "members": True,
    "exclude-members": ",".join(
        ["get_metadata_routing"]
        + [
            f"set_{method}_request"
            for method in (
                "fit", "partial_fit", "predict", "predict_proba", "score",
                "transform", "inverse_transform",
            )
        ]
    ),
}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
intersphinx_mapping = {}
templates_path = ["_templates"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
