"""What `kotti-migrate` says when the app of an ini file cannot be loaded.

"config file X cannot be read" is said only when reading or parsing the
file failed; an import that fails (pkg_resources gone with setuptools 82)
and a `use = egg:NAME` whose distribution is not installed (Kotti vs.
kotti2) each get a message of their own.  All through the real console
script, one line on stderr, exit 1.
"""

from __future__ import annotations

import os

import pytest
from helpers import cli_process, write_ini

PREFIX = "kotti-migrate: error:"

# setuptools 82 removed pkg_resources; Kotti 2.0.9, kotti2 and Pyramid 1.10 import
# it.  Installing setuptools 82 into a throwaway venv per test run is not
# possible offline, so the interpreter is made to behave as if the module were
# absent: an import hook (loaded through sitecustomize) that finds nothing for it.
HIDE_PKG_RESOURCES = '''\
import sys


class _NoPkgResources:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pkg_resources":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoPkgResources())
'''


def error_line(result) -> str:
    """The one error line of a failed run."""
    assert result.code == 1, (result.code, result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err, result.err
    return lines[0]


@pytest.mark.kotti
@pytest.mark.kotti2
def test_missing_pkg_resources_blames_the_import(kotti_ini, sqlite_url, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HIDE_PKG_RESOURCES)
    ini = kotti_ini(sqlite_url)
    env = {"PYTHONPATH": os.pathsep.join([str(hook), os.environ["PYTHONPATH"]])}
    line = error_line(cli_process(ini, "status", env=env))
    assert "No module named 'pkg_resources'" in line
    assert 'pip install "setuptools<82"' in line
    assert "cannot be read" not in line
    assert str(ini) in line


@pytest.mark.kotti
def test_egg_kotti2_when_only_kotti_is_installed(kotti_ini, sqlite_url):
    ini = kotti_ini(sqlite_url, use="egg:kotti2")
    line = error_line(cli_process(ini, "status"))
    assert "'kotti2' is not installed" in line
    assert "use = egg:kotti`" in line  # the hint: Kotti is installed
    assert "cannot be read" not in line


@pytest.mark.kotti2
def test_egg_kotti_when_only_kotti2_is_installed(kotti_ini, sqlite_url):
    ini = kotti_ini(sqlite_url, use="egg:kotti")
    line = error_line(cli_process(ini, "status"))
    assert "No package metadata was found for kotti" in line
    assert "'kotti' is not installed" in line
    assert "use = egg:kotti2" in line
    assert "cannot be read" not in line


def test_egg_of_an_unknown_distribution(tmp_path, sqlite_url):
    ini = write_ini(tmp_path / "app.ini", "egg:no_such_dist_kmt", sqlite_url)
    line = error_line(cli_process(ini, "status"))
    assert "'no_such_dist_kmt' is not installed" in line
    assert str(ini) in line and "pip install no_such_dist_kmt" in line
    assert "cannot be read" not in line


def test_app_factory_module_not_importable(tmp_path, sqlite_url):
    ini = write_ini(tmp_path / "app.ini", "call:no_such_module_kmt:main", sqlite_url)
    line = error_line(cli_process(ini, "status"))
    assert "No module named 'no_such_module_kmt'" in line and str(ini) in line
    assert "cannot be read" not in line


def test_egg_without_an_app_factory_is_not_a_missing_section(tmp_path, sqlite_url):
    # kotti_migrate is installed but declares no paste.app_factory entry point.
    ini = write_ini(tmp_path / "app.ini", "egg:kotti_migrate", sqlite_url)
    line = error_line(cli_process(ini, "status"))
    assert "Entry point 'main' not found in egg 'kotti_migrate'" in line and str(ini) in line
    assert "has no app section" not in line and "cannot be read" not in line


@pytest.mark.parametrize(
    "content",
    [os.urandom(512) + b"\xff", b"[app:main]\nuse = egg:kotti\n\x00\x01\xff\xfe garbage\n"],
    ids=["random-bytes", "binary-after-header"],
)
def test_garbled_binary_ini_names_the_file(tmp_path, content):
    ini = tmp_path / "garbled.ini"
    ini.write_bytes(b"\xf0\x9f" + content)
    line = error_line(cli_process(ini, "status"))
    assert str(ini) in line and "cannot be read" in line and "not a text (UTF-8) ini file" in line


def test_ini_without_sections_cannot_be_read(tmp_path):
    ini = tmp_path / "nosections.ini"
    ini.write_text("use = egg:kotti\nsqlalchemy.url = sqlite://\n")
    line = error_line(cli_process(ini, "status"))
    assert str(ini) in line and "cannot be read" in line and "section" in line



def test_directive_used_before_kotti_migrate_is_included_names_the_fix(tiny_app, sqlite_url):
    """Pyramid says only "AttributeError: add_alembic_dir": the error names the module and the fix."""
    ini, name, _ = tiny_app(sqlite_url)
    init = ini.parent / "pkgs" / name / "__init__.py"
    include = '    config.include("kotti_migrate")\n'
    directive = f'    config.add_alembic_dir("{name}:alembic")\n'
    source = init.read_text()
    assert include + directive in source
    init.write_text(source.replace(include + directive, directive + include))
    assert error_line(cli_process(ini, "status")).endswith(
        f"failed to load: {name} calls config.add_alembic_dir before kotti_migrate is included: include "
        f"kotti_migrate before {name} (put kotti_migrate first in pyramid.includes), or let {name} call "
        "kotti_migrate.add_alembic_dir(config, ...), which works in any order"
    )
