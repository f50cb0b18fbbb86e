import sqlalchemy as sa
from pyramid.view import view_config

from ..models import MyModel


@view_config(route_name="home", renderer="string")
def my_view(request):
    # Counts rows without loading columns a pending migration may still add.
    count = request.dbsession.scalar(sa.select(sa.func.count()).select_from(MyModel))
    return f"models: {count}"
