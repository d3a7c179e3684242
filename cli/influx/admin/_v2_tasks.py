"""The downsampling tasks of an InfluxDB v2/Cloud sink: what to do with each, and its check.

Why apart from the backend: a task is found by name and compared by its Flux script; whether
to create it, leave it, or ask for it to be deleted or activated (bridge-cli never edits a
task) is decided on the task list the backend fetched, here, as pure functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from telegraf_bridge.cli.influx.admin._v2_flux import same_flux, task_flux, task_name
from telegraf_bridge.cli.influx.admin.base import Check, Step
from telegraf_bridge.cli.tiers import Layout, Tier

Task = Mapping[str, object]  # one task as GET /api/v2/tasks lists it


def _named(tasks: Sequence[Task], name: str) -> list[Task]:
    return [t for t in tasks if t.get("name") == name]


def _same_script(tasks: Sequence[Task], flux: str) -> Task | None:
    return next((t for t in tasks if same_flux(str(t.get("flux", "")), flux)), None)


def last_run(task: Task) -> str:
    """``last run success (completed up to ...)``, or ``not run yet``."""
    status = task.get("lastRunStatus")
    if not status:
        return "not run yet"
    when = task.get("latestCompleted")
    return f"last run {status}" + (f" (completed up to {when})" if when else "")


def task_step(
    layout: Layout,
    tier: Tier,
    org_name: str,
    tasks: Sequence[Task],
    *,
    create: Callable[[Layout, Tier, str], str],
) -> Step:
    """The plan's step for the task that fills ``tier``; ``create`` makes it when missing."""
    name = task_name(layout, tier)
    what = f"task {name}"
    flux = task_flux(layout, tier, org_name)
    same_name = _named(tasks, name)
    if not same_name:
        return Step(
            what,
            "create",
            f"every {tier.every_s // 60}m into {tier.name}",
            apply=lambda: create(layout, tier, flux),
        )
    task = _same_script(same_name, flux)
    if task is None:
        return Step(
            what,
            "mismatch",
            "a task with this name runs a different script than the layout requires; "
            "bridge-cli never edits a task: delete it (influx task delete --id "
            f"{same_name[0].get('id')}) and run setup-influxdb again",
        )
    if task.get("status") != "active":
        return Step(
            what,
            "mismatch",
            f"exists but is {task.get('status')}: activate it (influx task update --id "
            f"{task.get('id')} --status active)",
        )
    return Step(what, "present", last_run(task))


def task_check(layout: Layout, tier: Tier, org_name: str, tasks: Sequence[Task]) -> Check:
    """``verify``'s row for the task that fills ``tier``: present, active, last run not failed."""
    name = task_name(layout, tier)
    row = f"task {name}"
    fix = "run bridge-cli setup-influxdb"
    same_name = _named(tasks, name)
    if not same_name:
        return Check(row, False, "does not exist", fix)
    task = _same_script(same_name, task_flux(layout, tier, org_name))
    if task is None:
        return Check(row, False, "runs a different script than the layout requires", fix)
    if task.get("status") != "active":
        return Check(
            row,
            False,
            f"is {task.get('status')}",
            f"influx task update --id {task.get('id')} --status active",
        )
    if task.get("lastRunStatus") == "failed":
        return Check(
            row,
            False,
            f"last run failed: {task.get('lastRunError') or 'no error text'}",
            "see the task's runs in the InfluxDB UI (Tasks) for the whole log",
        )
    return Check(row, True, f"active; {last_run(task)}")
