"""Site Setup -> "Migrations": where every location of a Kotti site stands.

An admin-only page ``@@migrations`` on the site root, linked from Kotti's
Site Setup menu and rendered in Kotti's admin look: one table per location
(spec, version table, current revision(s), head(s), the pending revisions
with their messages, the ``kotti-migrate`` command that upgrades it) and,
when this process's start-up recorded it, what start-up did (decision,
revisions applied, duration).  It only reads: there is no upgrade button.

Registered by :func:`kotti_migrate.includeme` in a Kotti site only (this module is imported
when the page is first requested).
"""

from __future__ import annotations

from typing import Any

from . import database
from .boot import STARTUP_RECORD, AtHead
from .commands import Migrations
from .errors import MigrateError
from .kotti_site import PAGE_NAME, PAGE_TITLE, kotti_bound_engine
from .plan import Plan
from .settings import app_folder
from .values import Value, factory

#: The view's name (``<site>/@@migrations``) and the page's title, in the Site Setup menu too.
VIEW_NAME, TITLE = PAGE_NAME, PAGE_TITLE


class PendingRevision(Value):
    """One revision an upgrade would apply (in upgrade order)."""

    revision: str
    message: str


class StartupLocation(Value):
    """What start-up did for one location."""

    decision: str
    #: ``upgrade <rev> (<message>) in 0.012 s`` per revision run (or stamped).
    steps: list[str] = factory(list)


class LocationRow(Value):
    """One location's table on the page."""

    spec: str
    version_table: str
    current: str
    heads: str
    up_to_date: bool
    pending: list[PendingRevision] = factory(list)
    unknown: str = ""
    #: The command that upgrades it ("" when at its head(s) or at a revision the code lacks).
    command: str = ""
    startup: StartupLocation | None = None


class MigrationsPage(Value):
    """Everything the page shows."""

    locations: list[LocationRow] = factory(list)
    #: The database could not be read: the reason (password masked).
    error: str = ""
    #: When start-up finished and how long it took ("" when not recorded).
    startup_finished: str = ""
    startup_seconds: float | None = None
    startup_created: list[str] = factory(list)

    @property
    def up_to_date(self) -> bool:
        return not self.error and all(row.up_to_date for row in self.locations)


def _decision_text(plan: Plan, spec: str) -> StartupLocation | None:
    decision = next((d for d in plan.decisions if d.location.spec == spec), None)
    if decision is None:
        return None
    text = decision.message or {
        "fresh": "fresh database: tables created from the models, stamped at head",
    }.get(decision.reason, decision.action)
    steps = [
        f"{step.direction} {step.revision}" + (f" ({step.description})" if step.description else "")
        + f" in {step.seconds:.3f} s"
        for report in plan.reports
        if report.location.spec == spec
        for step in report.steps
    ]
    return StartupLocation(f"{decision.action}: {text}", steps)


def migrations_page(registry: Any) -> MigrationsPage:
    """Read where every location stands (and what start-up recorded) for the page."""
    settings = registry.settings
    plan: Plan | AtHead | None = getattr(registry, STARTUP_RECORD, None)
    page = MigrationsPage()
    if plan is not None:
        page.startup_seconds = plan.seconds
        page.startup_created = list(plan.created)
        if plan.finished is not None:
            page.startup_finished = plan.finished.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    # The site's own engine (Kotti's DBSession is bound to it): no second pool.
    engine = kotti_bound_engine(settings.get("sqlalchemy.url"))
    migrations = None
    try:
        migrations = Migrations(settings, registry, here=app_folder(settings), engine=engine)
        statuses = migrations.status()
    except MigrateError as exc:
        first = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
        page.error = database.scrub(first, settings.get("sqlalchemy.url"))
        return page
    finally:
        if migrations is not None:
            migrations.dispose()
    for st in statuses:
        loc = st.location
        current = "(no version table)" if st.current is None else ", ".join(st.current) or "base"
        row = LocationRow(
            spec=loc.spec,
            version_table=loc.version_table,
            current=current,
            heads=", ".join(st.heads) or "(no revisions yet)",
            up_to_date=st.up_to_date,
            pending=[
                PendingRevision(s.revision, next(iter((s.doc or "").strip().splitlines()), ""))
                for s in reversed(st.pending)
            ],
            unknown=", ".join(st.unknown),
        )
        if st.current is None:  # not recorded yet: start-up's decision (stamp or adopt) applies
            row.command = migrations.command("prepare")
        elif not st.up_to_date and not st.unknown:  # unknown: the code, not the database, is behind
            row.command = migrations.command(f"upgrade --scripts={loc.spec}")
        if plan is not None:
            row.startup = _decision_text(plan, loc.spec)
        page.locations.append(row)
    return page


def migrations_view(context: Any, request: Any) -> dict[str, Any]:
    """``@@migrations``: the page (admin only, site root only)."""
    from kotti.views.site_setup import CONTROL_PANEL_LINKS
    from kotti.views.util import template_api
    from pyramid.httpexceptions import HTTPNotFound

    if context is not request.root:  # as Kotti's root_only (not registered in every Kotti app)
        raise HTTPNotFound()

    api = template_api(context, request, cp_links=CONTROL_PANEL_LINKS)
    api.page_title = TITLE
    request.response.headers["X-Caching-Policy"] = "No Cache"
    return {"api": api, "page": migrations_page(request.registry)}
