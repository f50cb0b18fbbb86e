"""kotti_quotes: an example Kotti add-on whose migrations are tested with kotti_migrate's pytest plugin.

One content type (``Quote``, table ``quotes`` joined to Kotti's ``contents``)
and three revisions: create ``quotes``, add ``quotes.author``, fill the
authors of existing quotes (a data migration).
"""


def kotti_configure(settings):
    from . import resources  # noqa: F401  (its table belongs to Kotti's metadata)

    settings["kotti.alembic_dirs"] += " kotti_quotes:alembic"
    settings["kotti.available_types"] += " kotti_quotes.resources.Quote"
