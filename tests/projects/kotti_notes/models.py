import sqlalchemy as sa
from kotti import Base


class Note(Base):
    __tablename__ = "notes"
    id = sa.Column(sa.Integer, primary_key=True)
    title = sa.Column(sa.String(100), nullable=False)
    body = sa.Column(sa.Text)


class NoteLink(Base):
    __tablename__ = "note_links"
    id = sa.Column(sa.Integer, primary_key=True)
    note_id = sa.Column(sa.Integer, sa.ForeignKey("notes.id"), nullable=False)
    url = sa.Column(sa.String(200), nullable=False)
