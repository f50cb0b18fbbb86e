"""A plain Pyramid 2 / SQLAlchemy 2 app (no Kotti) used as a test fixture."""

from pyramid.config import Configurator
from pyramid.response import Response


def main(global_config, **settings):
    settings.setdefault("kotti_migrate.metadata", "example_app.models.Base")
    config = Configurator(settings=settings)
    config.include("kotti_migrate")
    config.add_alembic_dir("example_app:alembic")
    config.add_route("home", "/")
    config.add_view(home, route_name="home")
    return config.make_wsgi_app()


def home(request):
    import sqlalchemy as sa

    engine = sa.engine_from_config(request.registry.settings, prefix="sqlalchemy.")
    try:
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM items")).scalar()
    finally:
        engine.dispose()
    return Response(f"items: {count}")
