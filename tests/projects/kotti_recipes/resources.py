import sqlalchemy as sa
from kotti.resources import Content


class Recipe(Content):
    """A recipe: a content type with a table of its own (``recipes``)."""

    __tablename__ = "recipes"
    id = sa.Column(sa.Integer, sa.ForeignKey("contents.id"), primary_key=True)
    servings = sa.Column(sa.Integer)

    type_info = Content.type_info.copy(
        name="Recipe", title="Recipe", add_view="add_recipe", addable_to=["Document"]
    )


class Menu(Content):
    """A menu: the content type a later release added (``menus``)."""

    __tablename__ = "menus"
    id = sa.Column(sa.Integer, sa.ForeignKey("contents.id"), primary_key=True)
    course = sa.Column(sa.String(50))

    type_info = Content.type_info.copy(
        name="Menu", title="Menu", add_view="add_menu", addable_to=["Document"]
    )
