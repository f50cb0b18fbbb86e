"""The example add-on's own migration tests, with kotti_migrate's fixture.

`kotti_migrate_db(revision=...)` gives a database (SQLite, or a new
database on the server of --kotti-migrate-url) with Kotti's tables and
this add-on at that revision; `upgrade`/`downgrade` step it.
"""


def add_quote(db, id, description, text):
    """A quote as Kotti stores it: a row in nodes, contents and quotes."""
    db.execute(
        "INSERT INTO nodes (id, type, name, title, position, path) "
        "VALUES (:id, 'quote', :name, :name, 0, :path)",
        id=id, name=f"quote-{id}", path=f"/quote-{id}/",
    )
    db.execute(
        "INSERT INTO contents (id, description, in_navigation) VALUES (:id, :description, false)",
        id=id, description=description,
    )
    db.execute("INSERT INTO quotes (id, text) VALUES (:id, :text)", id=id, text=text)


def test_quote_authors_filled(kotti_migrate_db):
    db = kotti_migrate_db(revision="2b000000quot")
    add_quote(db, 101, "Ada", "That brain of mine is something more than merely mortal.")
    add_quote(db, 102, None, "Nobody knows who said this.")

    assert db.upgrade("+1") == ("3c000000quot",)

    rows = db.execute("SELECT id, author FROM quotes ORDER BY id")
    assert [tuple(row) for row in rows] == [(101, "Ada"), (102, "Anonymous")]


def test_author_column_comes_and_goes(kotti_migrate_db):
    db = kotti_migrate_db(revision="1a000000quot")
    assert "author" not in db.columns("quotes")
    db.upgrade("+1")
    assert "author" in db.columns("quotes")
    db.downgrade("base")
    assert "quotes" not in db.tables()
    assert "nodes" in db.tables()  # Kotti's tables stay: only the add-on's history went down
