"""A Kotti add-on with two content types (joined-table inheritance), used as a test fixture.

Like most real Kotti add-ons (kotti_image, kotti_pdf, kotti2_iframe...),
its models subclass ``kotti.resources.Content``: each has its own table
joined to Kotti's ``contents`` and ``nodes``, and Kotti loads every node
polymorphically, so every query of ``Node`` joins ``recipes`` and
``menus``.  Its history: ``Create recipes``, ``Create menus`` (a second
content type added in a later release), ``Add recipes.servings``.
"""


def kotti_configure(settings):
    from . import resources  # noqa: F401  (the tables belong to Kotti's metadata)

    settings["kotti.alembic_dirs"] += " kotti_recipes:alembic"
    settings["kotti.available_types"] += " kotti_recipes.resources.Recipe kotti_recipes.resources.Menu"
