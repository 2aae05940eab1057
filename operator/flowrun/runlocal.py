"""`flowrun run FILE.yaml`: run a FlowRun manifest here, without Kubernetes.

The same models parse the manifest, the same engine runs the flow and the same status builder
renders the result, so what a data engineer sees locally is what `kubectl get fr -o yaml` will
show. Live progress goes to stderr (rich); the final status goes to stdout as YAML.

Exit code: 0 when the run Succeeded; 1 when it Failed or was Cancelled (Ctrl-C or SIGTERM
cancel gracefully: no new task starts, running tasks end Cancelled); 2 when the manifest or the
command line is wrong (a message naming the field, no traceback).

Executors: `--executor local` (in this process), `sync` (Dask's synchronous scheduler) or
`dask` (a LocalCluster, or the manifest's External address); by default the manifest's
`spec.executor.type`. A Kubernetes Dask cluster becomes a LocalCluster here.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flowrun.api import flows, models, validation
from flowrun.api.status import FAILED_STATES, StatusBuilder, state_names
from flowrun.api.validation import SpecError
from flowrun.engine import events
from flowrun.engine import state as states
from flowrun.runs import manifests
from flowrun.runs.execute import Runner, RunResult
from flowrun.runs.masked_fds import mask_process
from flowrun.runs.outcome import (
    CANCEL_REQUESTED,
    DEADLINE_EXCEEDED,
    INTERRUPTED,
    Outcome,
    flow_outcome,
    stopped_outcome,
)
from flowrun.runs.plan import make_plan, resolve_template
from flowrun.runs.render import render
from flowrun.runs.secrets import Masker

HELP = "run a FlowRun manifest locally, without a cluster"
EXECUTORS = {"local": "Local", "sync": "Synchronous", "dask": "Dask"}
NOTABLE = FAILED_STATES | state_names(states.Retrying) | state_names(states.Cancelled)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE.yaml", help="a FlowRun manifest")
    parser.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter (VALUE is read as YAML: 5 is a number); overrides spec.parameters "
        "and provides spec.parametersFrom values",
    )
    parser.add_argument(
        "--executor",
        choices=sorted(EXECUTORS),
        default=None,
        help="how tasks run (default: the manifest's spec.executor.type)",
    )
    parser.add_argument(
        "--template",
        "-t",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a file of FlowTemplates for a FlowRun with spec.flow.templateRef (repeatable; "
        "the manifest's own FlowTemplate documents are found too)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no live progress")


def _params(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise SpecError([f"--param {item!r}: expected NAME=VALUE"])
        try:
            out[name] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError as err:
            raise SpecError([f"--param {name}: value is not valid YAML: {err}"]) from None
    return out


def load_manifest(
    path: Path, overrides: Mapping[str, Any], template_paths: Sequence[Path] = ()
) -> tuple[models.FlowRun, tuple[str, ...], dict[str, Any] | None]:
    """Read one FlowRun; `overrides` become spec.parameters (and satisfy parametersFrom).

    Also returns the values given for `parametersFrom` parameters: they are secrets, and are
    masked in every message shown or written; and, for a `spec.flow.templateRef`, the
    FlowTemplate it names (`status.template`): the run's spec then holds that template's flow,
    found in the manifest's own documents or in `template_paths`.
    """
    raw, found = manifests.split(path, manifests.read_documents(path))
    run, secrets = _parse(raw, overrides)
    if run.spec.flow.template_ref is None:
        return run, secrets, None
    where = ", ".join(str(p) for p in (path, *template_paths))
    source = manifests.Files([*found, *manifests.template_files(template_paths)], where)
    spec, origin = asyncio.run(resolve_template(run.spec, source))
    return run.model_copy(update={"spec": spec}), secrets, origin


def _parse(raw: Any, overrides: Mapping[str, Any]) -> tuple[models.FlowRun, tuple[str, ...]]:
    secrets: list[str] = []
    if isinstance(raw, dict) and isinstance(raw.get("spec"), dict):
        spec = dict(raw["spec"])
        if overrides:
            spec["parameters"] = {**(spec.get("parameters") or {}), **overrides}
        unresolved = []
        for i, item in enumerate(spec.pop("parametersFrom", None) or []):
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name in overrides:
                secrets.append(str(overrides[name]))
            else:
                unresolved.append(
                    f"spec.parametersFrom[{i}]: flowrun run cannot read Secrets; "
                    f"give the value with --param {name}=VALUE"
                )
        if unresolved:
            raise SpecError(unresolved)
        raw = {**raw, "spec": spec}
    return validation.parse_flowrun(raw), tuple(s for s in secrets if s)


IGNORED_RUNNER = (
    "note: spec.runner is not applied here: it sizes the runner Pod on a cluster, and flowrun "
    "run runs the flow in this process."
)


@contextmanager
def where_to_run(
    spec: models.FlowRunSpec, choice: str | None
) -> Iterator[tuple[str, str | None, str]]:
    """The executor kind, the Dask scheduler address (a LocalCluster for the run's length
    unless the manifest names an External one) and a few words saying what it is."""
    executor = spec.executor or models.Executor.model_validate({})
    kind = EXECUTORS[choice] if choice else executor.type.value
    if kind == "Local":
        yield kind, None, "LocalExecutor (in this process)"
        return
    if kind == "Synchronous":
        yield kind, None, "SynchronousExecutor (Dask synchronous scheduler)"
        return
    dask = executor.dask or models.DaskSpec.model_validate({})
    if dask.cluster is models.ClusterKind.External and dask.address:
        yield kind, dask.address, f"DaskExecutor at {dask.address}"
        return
    import distributed  # noqa: PLC0415 - only when a cluster is wanted

    local: Any = distributed.LocalCluster  # untyped
    with local(n_workers=dask.worker_count(), dashboard_address=":0") as cluster:
        label = f"DaskExecutor on a LocalCluster ({dask.worker_count()} worker(s))"
        if dask.adapt:
            cluster.adapt(minimum=dask.adapt.minimum, maximum=dask.adapt.maximum)
            label = (
                f"DaskExecutor on an adaptive LocalCluster "
                f"({dask.adapt.minimum}-{dask.adapt.maximum} workers)"
            )
        yield kind, cluster.scheduler_address, label


class LiveView:
    """Folds events into the status builder and shows them: a bar and notable state changes."""

    def __init__(
        self, builder: StatusBuilder, console: Console, *, quiet: bool, mask: Callable[[str], str]
    ) -> None:
        self.builder = builder
        self._mask = mask
        self.console = console
        self._lock = threading.Lock()
        self._closed = False
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
            transient=False,
        )
        self._bar = self._progress.add_task("tasks", total=builder.total, detail="")

    def __call__(self, event: events.TaskEvent) -> None:
        with self._lock:
            if not self._closed:  # events that arrive after the end are stale
                self._show(event)

    def _show(self, event: events.TaskEvent) -> None:
        self.builder.apply(event)
        where = event.task if event.map_index is None else f"{event.task}[{event.map_index}]"
        if event.state in NOTABLE:
            self._progress.console.print(
                f"[bold]{where}[/bold] {event.state}: {escape(self._mask(event.message or ''))}"
            )
        self._progress.update(
            self._bar,
            completed=self.builder.done,
            total=self.builder.total,
            detail=f"{where}: {event.state}",
        )

    def finish(self, final: Sequence[events.TaskEvent]) -> None:
        """Stop taking events; fold in the final states (given in taskStates, or a lost event)."""
        with self._lock:
            self._closed = True
            for event in final:
                if self.builder.state_of(event.task) != event.state:
                    self._show(event)

    @contextmanager
    def shown(self) -> Iterator[None]:
        with self._progress:
            yield


def _supervise(
    worker: threading.Thread, cancel: threading.Event, *, deadline: float | None, console: Console
) -> str | None:
    """Wait for the run; cancel it on Ctrl-C, SIGTERM or the deadline. Returns why it stopped."""
    why: list[str] = []

    def stop(reason: str) -> None:
        if not cancel.is_set():
            console.print(f"Cancelling ({reason}): running tasks end Cancelled ...")
            why.append(reason)
            cancel.set()

    previous = signal.signal(signal.SIGTERM, lambda *_: stop("Cancelled"))
    try:
        while worker.is_alive():
            try:
                worker.join(timeout=0.2)
            except KeyboardInterrupt:
                stop("Cancelled")
            if deadline is not None and time.monotonic() > deadline:
                stop("DeadlineExceeded")
    finally:
        signal.signal(signal.SIGTERM, previous)
    return why[0] if why else None


def execute(
    run: models.FlowRun,
    *,
    choice: str | None,
    quiet: bool,
    console: Console,
    secrets: Sequence[str] = (),
    template: Mapping[str, Any] | None = None,
) -> int:
    """Run `run` here; the exit code. `template`: the FlowTemplate its flow came from."""
    spec = run.spec
    resolved = flows.resolve(spec)  # every name checked, and the task list for the view
    masker = Masker(secrets)
    builder = StatusBuilder(resolved.tasks, redact=masker.text)
    view = LiveView(builder, console, quiet=quiet, mask=masker.text)
    name = run.metadata.name or resolved.flow.name
    generation = run.metadata.generation or 1
    if spec.cancel:  # as the operator does: Cancelled, with nothing planned, read or started
        ended = stopped_outcome(CANCEL_REQUESTED)
        return _show(render(None, phase=ended.phase, message=ended.message, reason=ended.reason,
                            now=time.time(), generation=generation), masker)  # fmt: skip
    cancel = threading.Event()
    with where_to_run(spec, choice) as (kind, address, label):
        console.print(f"Running FlowRun [bold]{name}[/bold] with {label}", highlight=False)
        if spec.runner is not None:
            console.print(IGNORED_RUNNER, highlight=False)
        # --param gave the secret values (now in spec.parameters): mask them as the operator does
        plan = replace(make_plan(spec, secret_values={}, executor=kind), masker=masker)
        runner = Runner(plan, address=address, cancel=cancel, on_event=view,
                        on_graph=lambda _: None, known_tasks={},
                        publish_prefix=f"flowrun-run/{name}/")  # fmt: skip
        started = time.time()
        stopped, ended = _run(runner, view, cancel, spec.active_deadline_seconds, console)
    finished = time.time()
    console.print(
        f"{ended.phase} in {finished - started:.1f} s: {builder.progress()} tasks done, "
        f"{builder.failed} failed",
        highlight=False,
    )
    status = render(
        builder,
        phase=ended.phase,
        message=ended.message,
        reason=ended.reason,
        now=finished,
        generation=generation,
        start_time=started,
        completion_time=finished,
        results=stopped.results if stopped else None,
        results_omitted=stopped.results_omitted if stopped else (),
    )
    return _show({**status, "template": template} if template else status, masker)


def _show(status: Mapping[str, Any], masker: Masker) -> int:
    """Print the status as the FlowRun's would read; the exit code: 0 only if it succeeded."""
    shown = {"status": masker.value(status)}
    sys.stdout.write(yaml.safe_dump(shown, sort_keys=False, width=100))
    return 0 if status["phase"] == "Succeeded" else 1


def _run(
    runner: Runner,
    view: LiveView,
    cancel: threading.Event,
    limit: int | None,
    console: Console,
) -> tuple[RunResult | None, Outcome]:
    """Run on a thread of its own, supervised; the result (None if the engine failed) and
    the run's outcome."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = runner.run()
        except Exception as err:  # the engine failed, not a task: report it as the run's end
            outcome["error"] = err

    deadline = None if limit is None else time.monotonic() + limit
    worker = threading.Thread(target=work, name="flowrun-run", daemon=True)
    with view.shown():
        worker.start()
        stopped = _supervise(worker, cancel, deadline=deadline, console=console)
        result: RunResult | None = outcome.get("result")
        view.finish(result.final_events if result else ())
    if result is None:
        err = outcome.get("error")
        ended = Outcome("Failed", "InternalError", f"{type(err).__name__}: {err}")
    else:
        ended = flow_outcome(result.state, result.message)
    # The same outcomes as the operator's for the same stops (Ctrl-C is the terminal's own).
    if stopped == "DeadlineExceeded":
        ended = stopped_outcome(DEADLINE_EXCEEDED, limit)
    elif cancel.is_set() and ended.phase != "Succeeded":
        ended = stopped_outcome(INTERRUPTED if stopped else CANCEL_REQUESTED)
    return result, ended


def main(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        run, secrets, template = load_manifest(args.file, _params(args.param), args.template)
        # Before the flow's code is imported, for the process's life (as the runner does),
        # descriptors too where they are not the terminal: a CI log, a file, a pipe.
        mask_process(Masker(secrets))
        return execute(run, choice=args.executor, quiet=args.quiet, console=console,
                       secrets=secrets, template=template)  # fmt: skip
    except SpecError as err:
        console.print(f"[bold red]error:[/bold red] cannot run {args.file}:", soft_wrap=True)
        for problem in err.problems:
            console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        return 2
