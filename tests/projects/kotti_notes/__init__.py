"""A small Kotti add-on used as a test fixture.

It registers its migrations the way Kotti add-ons do, from
``kotti_configure``; its ``alembic/`` folder has no ``env.py``.
"""


def kotti_configure(settings):
    from . import models  # noqa: F401  (the tables belong to the metadata)

    settings["kotti.alembic_dirs"] += " kotti_notes:alembic"
    settings["kotti.populators"] = (settings.get("kotti.populators") or "") + " kotti_notes.populate"


def populate():
    """Add a note once (checks what exists, like Kotti's own populator)."""
    from kotti import DBSession

    from .models import Note

    if DBSession.query(Note).count() == 0:
        DBSession.add(Note(title="first note", body="hello"))
