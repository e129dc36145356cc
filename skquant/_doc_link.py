"""Where an estimator's HTML representation links: its page of the API docs.

scikit-learn's HTML representation (a fitted pipeline shown in a notebook)
puts a "?" on each estimator that links to its documentation, for the
estimators whose ``_doc_link_module`` is the estimator's own package. The
docs' base URL comes from, in this order:

- the environment variable ``SKQUANT_DOCS_URL`` (for docs built locally,
  ``file:///.../html``, or hosted inside an organization);
- the ``Documentation`` URL of skquant's installed metadata (``[project.urls]``
  in ``pyproject.toml``).

Without either there is no link (rather than one to a page that does not
exist). The pages are the ones ``docs/api.rst`` generates:
``<base>/generated/skquant.<Name>.html``.
"""

import os
from importlib import metadata

ENVIRONMENT_VARIABLE = "SKQUANT_DOCS_URL"


def documentation_url():
    """The docs' base URL without a trailing slash, or ``""`` when none is set."""
    url = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if not url:
        try:
            entries = metadata.metadata("skquant").get_all("Project-URL") or []
        except metadata.PackageNotFoundError:  # run from a source tree
            entries = []
        for entry in entries:
            label, _, value = entry.partition(",")
            if label.strip().lower() == "documentation":
                url = value.strip()
                break
    return url.rstrip("/")


class DocLinkMixin:
    """Links skquant's public estimators to their API pages (see the module)."""

    _doc_link_module = "skquant"

    @property
    def _doc_link_template(self):
        # braces of the URL itself escaped: scikit-learn's _get_doc_link
        # fills {estimator_name} with str.format; the public estimators are
        # all exported at skquant's top level
        base = documentation_url().replace("{", "{{").replace("}", "}}")
        return f"{base}/generated/skquant.{{estimator_name}}.html" if base else ""
