"""``python -m kotti_migrate <config_uri> <command>``: same as ``kotti-migrate``."""

from .cli import run

run()
