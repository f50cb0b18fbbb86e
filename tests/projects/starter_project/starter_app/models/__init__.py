"""The starter's models package: engine, session factory and ``request.dbsession``.

The starter hooks sessions to ``pyramid_tm``; this fixture closes them at the
end of each request instead (no transaction manager in the test stack).
"""

from sqlalchemy import engine_from_config
from sqlalchemy.orm import configure_mappers, sessionmaker

# Import or define all models here to ensure they are attached to the
# ``Base.metadata`` prior to any initialization routines.
from .mymodel import MyModel  # noqa: F401

# Run ``configure_mappers`` after defining all of the models to ensure
# all relationships can be setup.
configure_mappers()


def get_engine(settings, prefix="sqlalchemy."):
    return engine_from_config(settings, prefix)


def get_session_factory(engine):
    factory = sessionmaker()
    factory.configure(bind=engine)
    return factory


def includeme(config):
    """Initialize the model for a Pyramid app (``config.include('starter_app.models')``)."""
    settings = config.get_settings()
    dbengine = settings.get("dbengine")
    if not dbengine:
        dbengine = get_engine(settings)

    session_factory = get_session_factory(dbengine)
    config.registry["dbsession_factory"] = session_factory

    def dbsession(request):
        session = session_factory(info={"request": request})
        request.add_finished_callback(lambda request: session.close())
        return session

    config.add_request_method(dbsession, reify=True)
