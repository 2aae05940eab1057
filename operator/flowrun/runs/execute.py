"""The synchronous part of a run: the engine's FlowRunner on a thread of its own.

The operator's daemon (and, with the runner-Pod issue, a `flowrun` sub-command in a Pod) calls
`Runner.run` on a `threading.Thread` of its own (the FlowRunner blocks) and talks to it through
two things only: a `threading.Event` it sets to cancel, and the `on_event` callback the
engine calls with plain `TaskEvent`s. What comes back is plain data (`RunResult`).

The operator never unpickles what workers produce: task results stay on the cluster as futures;
return-task results are turned into JSON text *on a worker* (`_json_text`) and only that text
crosses to the operator; resumed results are looked up by name as futures, never fetched.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flowrun import engine, executors
from flowrun.api import flows, validation
from flowrun.api import status as status_mod
from flowrun.api.dask_spec import STARTUP_TIMEOUT_DEFAULT
from flowrun.engine import events as events_mod
from flowrun.engine import graph as graph_mod
from flowrun.engine import state as states
from flowrun.engine.events import TaskEvent
from flowrun.engine.executors import base as executors_base
from flowrun.runs import results as results_mod
from flowrun.runs.outcome import FlowRunError
from flowrun.runs.plan import RunPlan

logger = logging.getLogger(__name__)

MAX_RESULT_BYTES = results_mod.MAX_RESULT_BYTES
# One attempt to reach the scheduler (distributed retries within it); also the Client's own
# timeout for its later calls, which a longer connect budget must not stretch.
CONNECT_SECONDS = 30.0


@dataclass(frozen=True)
class RunResult:
    state: str
    message: str | None
    results: dict[str, Any]
    results_omitted: tuple[str, ...] = ()
    # Every task's final state, as events: the authority for the final status even when a
    # live event from a worker arrived too late (or never).
    final_events: tuple[TaskEvent, ...] = ()


def _needs_value(cls: type[states.State]) -> bool:
    """A successful task whose value downstream tasks read (a Skipped one has none)."""
    return issubclass(cls, states.Success) and not issubclass(cls, states.Skipped)


def _value(stored: Any) -> Any:
    """A stored task result is either the value or the task's whole final state."""
    return stored.result if isinstance(stored, states.State) else stored


def _json_text(stored: Any, limit: int = MAX_RESULT_BYTES) -> str | None:
    """Runs where the result lives: JSON text if small and JSON-able, else None."""
    return _dumps(_value(stored), limit)


def _json_list_text(children: list[Any], limit: int = MAX_RESULT_BYTES) -> str | None:
    """Runs on a worker: the results of a mapped task's children as one JSON list."""
    return _dumps([_value(c) for c in children], limit)


def _json_first_text(children: list[Any], limit: int = MAX_RESULT_BYTES) -> str | None:
    """Runs on a worker: one task's result as JSON (`dask_resume.on_children` of one)."""
    return _dumps(_value(children[0]), limit)


def _dumps(value: Any, limit: int) -> str | None:
    return results_mod.json_text(value, limit)


def _graph_dict(ref: str) -> str:
    """Runs on a worker: import a Flow by reference and return its graph as JSON text."""
    return json.dumps(graph_mod.from_flow(graph_mod.load_flow(ref)).to_dict())


def _final_events(task_states: Mapping[str, Any]) -> Iterator[TaskEvent]:
    """Every finished task's final state as an event, mapped children included: children
    resumed from a published batch report nothing live, and status must still count them."""
    for slug, st in task_states.items():
        if not isinstance(st, states.State) or not st.is_finished():
            continue
        if isinstance(st, states.Mapped):
            for index, child in enumerate(st.map_states):
                if child.is_finished():
                    yield events_mod.event_for(slug, index, child, 0)
        yield events_mod.event_for(slug, None, st, 0)


class Runner:
    """One run of one flow; `run()` blocks until the flow is finished or cancelled."""

    def __init__(
        self,
        plan: RunPlan,
        *,
        address: str | None,
        cancel: threading.Event,
        on_event: Callable[[TaskEvent], None],
        on_graph: Callable[[list[str]], None],
        known_tasks: Mapping[str, Mapping[str, Any]],
        publish_prefix: str,
    ) -> None:
        self.plan = plan
        self.address = address
        self.cancel = cancel
        self.on_event = on_event
        self.on_graph = on_graph
        self.known_tasks = known_tasks
        self.publish_prefix = publish_prefix
        self._client: Any = None

    def run(self) -> RunResult:
        if self.plan.executor == "Dask":
            import distributed  # noqa: PLC0415 - `flowrun run` imports it only when needed

            from flowrun.runs.worker_masking import masked_workers  # noqa: PLC0415 - as above

            shared = self.plan.cluster_kind == "External"
            with (
                self._connect(distributed.Client) as client,
                masked_workers(client, self.plan.masker, shared=shared),
            ):
                self._client = client
                try:
                    return self._run()
                except executors_base.SchedulerLost as exc:
                    raise FlowRunError("SchedulerLost", str(exc)) from exc
        return self._run()

    def _connect(self, client_cls: Any) -> Any:
        """A Client of the run's scheduler. A scheduler Pod that is Ready may not be reachable
        through its Service yet (its endpoints and proxy rules follow the Pod, later on a busy
        node: one of 20 runs started at once on a loaded CI node was not, for 30 s), so attempts
        go on for the run's startupTimeoutSeconds, unless the run is cancelled meanwhile."""
        dask = self._dask_spec()
        budget = dask.startup_timeout_seconds if dask is not None else STARTUP_TIMEOUT_DEFAULT
        deadline = time.monotonic() + budget
        while True:
            try:
                return client_cls(self.address, set_as_default=False, timeout=CONNECT_SECONDS)
            except OSError as exc:  # distributed's "Timed out trying to connect ..." too
                left = deadline - time.monotonic()
                if left <= 0 or self.cancel.is_set():
                    raise
                logger.warning(
                    "Dask scheduler at %s not reachable yet (%s): trying again for up to %.0fs "
                    "(spec.executor.dask.startupTimeoutSeconds)",
                    self.address,
                    exc,
                    left,
                )
                self.cancel.wait(1.0)

    def _dask_spec(self) -> Any:
        executor = self.plan.spec.executor
        return executor.dask if executor is not None else None

    def _executor(self) -> Any:
        if self.plan.executor == "Local":
            return executors.LocalExecutor()
        if self.plan.executor == "Synchronous":
            return executors.SynchronousExecutor()
        from flowrun.engine.executors.dask import DaskExecutor  # noqa: PLC0415 - see `run`

        # Our own Client, so futures we looked up (resumed results) belong to the client the
        # engine submits with; the Client is closed by its owner (`run`), not by the executor.
        dask = self._dask_spec()
        return DaskExecutor(
            client=self._client,
            publish_prefix=self.publish_prefix,
            map_batch_size=None if dask is None else dask.map_batch_size,
        )

    def _graph(self) -> Any:
        ref = self.plan.flow.get("ref")
        if ref is None:
            return flows.inline_graph(self.plan.flow)
        try:
            if self._client is None:
                return graph_mod.from_flow(graph_mod.load_flow(ref))
            # Imported where the tasks run; a worker's import error comes back as its own type.
            text = self._client.submit(_graph_dict, ref, pure=False).result()
        except flows.LOAD_ERRORS as exc:
            raise flows.unresolvable(ref, exc) from None
        return graph_mod.from_dict(json.loads(text))

    def _resumed(self, slugs: list[str]) -> dict[str, states.State]:
        """Finished tasks from before a restart: the cluster holds their result, or (for states
        that need no value downstream) status says so."""
        out = self._published(slugs)
        for slug in slugs:
            record = self.known_tasks.get(slug) or {}
            state_name = record.get("state")
            # Without its published value a successful task must run again: its value is needed.
            if (
                slug not in out
                and state_name in status_mod.RESUMABLE_STATES
                and not _needs_value(states.BY_NAME[state_name])
            ):
                out[slug] = states.BY_NAME[state_name](message=record.get("message"))
        return out

    def _published(self, slugs: list[str]) -> dict[str, states.State]:
        """Results published by name on a surviving cluster, with the state a worker reads
        from each (a cancelled or failed future, e.g. from an operator that was stopping, does
        not count as a finished task). A mapped task comes back with its finished children."""
        if self._client is None:
            return {}
        from flowrun.engine.executors import dask_resume  # noqa: PLC0415 - see `run`

        found = dask_resume.published_states(self._client, self.publish_prefix, slugs)
        return {
            slug: st.replace(message=(self.known_tasks.get(slug) or {}).get("message"))
            for slug, st in found.items()
        }

    def _run(self) -> RunResult:
        graph = self._graph()
        slugs = [t.name for t in graph.tasks]
        spec = self.plan.spec
        if "ref" in self.plan.flow:  # names could only be checked once the flow was imported
            spec = flows.slugs_for_names(spec, slugs)
            declared = [validation.DeclaredParameter(p.name, p.required) for p in graph.parameters]
            validation.check_spec(spec, tasks=slugs, parameters=declared)
            if spec.flow.reference_tasks:
                graph = dataclasses.replace(graph, reference_tasks=tuple(spec.flow.reference_tasks))
        self.on_graph(slugs)
        task_states = {**self._resumed(slugs), **flows.given_states(spec)}
        return_tasks = list(spec.return_tasks or [])
        final = engine.run_until_finished(
            graph,
            parameters=self.plan.parameters,
            task_states=task_states,
            start_tasks=list(spec.start_tasks or []) or None,
            # With Dask, nothing is fetched into the operator (that would unpickle user
            # objects); return-task results are turned into JSON on a worker instead.
            return_tasks=[] if self._client is not None else return_tasks,
            executor=self._executor(),
            on_task_state=self.on_event,
            cancel=self.cancel,
        )
        results, omitted = self._results(final, return_tasks)
        finals = tuple(_final_events(final.result or {}))
        return RunResult(
            state=type(final).__name__,
            message=None if final.message is None else str(final.message),
            results=results,
            results_omitted=tuple(omitted),
            final_events=finals,
        )

    def _results(self, final: Any, names: list[str]) -> tuple[dict[str, Any], list[str]]:
        results: dict[str, Any] = {}
        omitted: list[str] = []
        task_states: Mapping[str, Any] = final.result or {}
        for name in names:
            st = task_states.get(name)
            if st is None or not st.is_successful():
                continue
            text = self._result_text(name, st)
            if text is None:
                omitted.append(name)
            else:
                results[name] = json.loads(text)
        return results, omitted

    def _result_text(self, name: str, st: states.State) -> str | None:
        if self._client is None:
            return _json_text(st.result)
        from flowrun.engine.executors import dask_resume  # noqa: PLC0415 - see `run`

        # Each result is on a worker (a future of its own, or a place in a batch): turned
        # into JSON there, so only the text reaches the operator.
        if isinstance(st, states.Mapped):
            done = dask_resume.on_children(self._client, st.map_states, _json_list_text)
        else:
            done = dask_resume.on_children(self._client, [st], _json_first_text)
        text: str | None = done.result()
        return text
