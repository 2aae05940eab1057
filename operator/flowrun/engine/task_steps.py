"""The checks of a task run before its code runs: Prefect's TaskRunner pipeline steps.

Each step takes the current state and returns the next one, or raises ENDRUN to finish
with a state; `TaskRunner` (task_runner) chains them and owns the state changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrun.engine import checkpoints, flattening, signals
from flowrun.engine import context as contexts
from flowrun.engine import state as states
from flowrun.engine.logs import runner_logger
from flowrun.engine.task import Task

# Prefect logs flatten's pass-through on its FlowRunner's logger.
FLOW_LOG = runner_logger("flowrun.FlowRunner")


UNFLATTENED = (
    "`flatten` was used on upstream task that did not return an iterable. "
    "The value will be passed downstream unmodified."
)


def _upstream_list(upstream_states: Mapping[Any, states.State]) -> list[states.State]:
    return flattening.mapped_edge_states(upstream_states)


class TaskSteps:
    """The steps; `TaskRunner` provides the state changes they make."""

    task: Task
    context: dict[str, Any]
    cache_candidates: tuple[states.State, ...]

    def _change(self, old: states.State, new: states.State) -> states.State:
        raise NotImplementedError

    def _end(self, old: states.State, new: states.State) -> signals.ENDRUN:
        return signals.ENDRUN(self._change(old, new))

    def check_task_is_ready(self, state: states.State) -> states.State:
        if isinstance(state, states.Cached | states.Mapped) or state.is_pending():
            return state
        raise signals.ENDRUN(state)

    def check_task_reached_start_time(self, state: states.State) -> states.State:
        if isinstance(state, states.Scheduled) and not isinstance(state, states.Resume):
            start = state.start_time
            if start is None or start > states.now():
                raise signals.ENDRUN(state)
        return state

    def check_upstream_finished(
        self, state: states.State, upstream: Mapping[Any, states.State]
    ) -> states.State:
        if not all(s.is_finished() for s in _upstream_list(upstream)):
            raise signals.ENDRUN(state)
        return state

    def check_upstream_skipped(
        self, state: states.State, upstream: Mapping[Any, states.State]
    ) -> states.State:
        if self.task.skip_on_upstream_skip and any(
            s.is_skipped() for s in _upstream_list(upstream)
        ):
            raise self._end(
                state,
                states.Skipped(
                    "Upstream task was skipped; if this was not the intended behavior, "
                    "consider changing `skip_on_upstream_skip=False` for this task."
                ),
            )
        return state

    def check_task_ready_to_map(
        self, state: states.State, upstream: Mapping[Any, states.State]
    ) -> None:
        """Decide the parent of a mapped task: always ends the run, with Mapped(n) or why not."""
        if isinstance(state, states.Mapped):
            raise signals.ENDRUN(state)
        lengths: list[int] = []
        for edge, up in upstream.items():
            if not edge.mapped:
                continue
            if isinstance(up, states.Mapped):
                count = up.n_map_states
                if edge.flattened:
                    count = len(flattening.flatten_children(up.map_states))
                    if flattening.passes_unflattened(up.map_states):
                        FLOW_LOG.warning(UNFLATTENED)
                lengths.append(count)
                continue
            if not up.is_successful():
                continue
            value = up.result
            if edge.flattened:
                value = flattening.flatten_result(value)
            if not hasattr(value, "__getitem__") or not hasattr(value, "__len__"):
                raise self._end(
                    state, states.Failed("At least one upstream state has an unmappable result.")
                )
            lengths.append(len(value))
        if not lengths:
            raise self._end(state, states.Failed("No upstream states can be mapped over."))
        raise self._end(
            state, states.Mapped("Ready to proceed with mapping.", n_map_states=min(lengths))
        )

    def get_task_inputs(self, upstream: Mapping[Any, states.State]) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        for edge, up in upstream.items():
            if edge.key is not None:
                value = up.result
                if edge.flattened and not edge.mapped:  # a mapped edge took its element
                    value = _flattened_value(up)
                inputs[edge.key] = value
        return inputs

    def set_task_run_name(self, task_inputs: Mapping[str, Any]) -> None:
        """Prefect's step: `task_run_name` from inputs given as Results (their `.value`)."""
        self._name_run({k: getattr(v, "value", v) for k, v in task_inputs.items()})

    def _name_run(self, inputs: Mapping[str, Any]) -> None:
        """`task_run_name` in the context: the task's template formatted with the flow's
        parameters, the context (`{date:%A}`, `{flow_name}`) and its inputs, or what its
        callable returns for them, as in Prefect."""
        template = self.task.task_run_name
        if not template:
            return
        values = {**(self.context.get("parameters") or {}), **self.context, **inputs}
        values = {k: v for k, v in values.items() if isinstance(k, str)}
        name = template(**values) if callable(template) else template.format(**values)
        self.context["task_run_name"] = name
        contexts.context.update(task_run_name=name)

    def check_target(self, state: states.State, inputs: Mapping[str, Any]) -> states.State:
        found = checkpoints.found_at_target(self.task, self.context, inputs)
        return state if found is None else self._change(state, found)

    def check_task_is_cached(self, state: states.State, inputs: Mapping[str, Any]) -> states.State:
        task = self.task
        params = self.context.get("parameters") or {}
        if isinstance(state, states.Cached):
            if task.cache_validator(state, inputs, params):
                return state
            state = self._change(state, states.Pending("Cache was invalid; ready to run."))
        if task.cache_for is not None:
            for candidate in self.cache_candidates:
                if isinstance(candidate, states.Cached) and task.cache_validator(
                    candidate, inputs, params
                ):
                    return self._change(state, candidate)
        return state

    def check_task_trigger(
        self, state: states.State, upstream: Mapping[Any, states.State]
    ) -> states.State:
        try:
            if not self.task.trigger(upstream):
                raise signals.TRIGGERFAIL("Trigger failed.")
        except signals.StateSignal as sig:
            raise self._end(state, sig.state) from None
        except BaseException as exc:
            failed = states.TriggerFailed(
                f"Unexpected error while checking task trigger: {exc!r}", result=exc
            )
            raise self._end(state, failed) from exc
        return state


def _flattened_value(up: states.State) -> Any:
    if isinstance(up, states.Mapped):
        return [child.result for child in flattening.flatten_children(up.map_states)]
    return flattening.flatten_result(up.result)
