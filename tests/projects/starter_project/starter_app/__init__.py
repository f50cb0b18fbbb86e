"""A Pyramid app shaped like the Pyramid starter (pyramid-cookiecutter-starter,
sqlalchemy backend), used to test adopting kotti_migrate in an existing app."""

from pyramid.config import Configurator


def main(global_config, **settings):
    """This function returns a Pyramid WSGI application."""
    with Configurator(settings=settings) as config:
        config.include(".routes")
        config.include(".models")
        config.scan()
    return config.make_wsgi_app()
