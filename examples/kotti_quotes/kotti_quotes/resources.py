import sqlalchemy as sa
from kotti.resources import Content


class Quote(Content):
    """A quote and who said it."""

    __tablename__ = "quotes"
    id = sa.Column(sa.Integer, sa.ForeignKey("contents.id"), primary_key=True)
    text = sa.Column(sa.Text)
    author = sa.Column(sa.String(100))

    type_info = Content.type_info.copy(
        name="Quote", title="Quote", add_view="add_quote", addable_to=["Document"]
    )
