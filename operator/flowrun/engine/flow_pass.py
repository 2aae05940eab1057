"""One pass of a FlowRunner over a flow: submit what can run, then collect state records.

Tasks are submitted in topological order without waiting for them. Only a mapped task
waits, and only for its own parent decision (how many children), so unrelated branches
keep going and a map of a map is pipelined child by child.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flowrun.engine import calls
from flowrun.engine import state as states
from flowrun.engine.edges import EdgeRef
from flowrun.engine.executors.base import Session
from flowrun.engine.flow_base import FlowBase
from flowrun.engine.run_inputs import RunInputs
from flowrun.engine.task import Constant, Task

WAIT_STEP = 0.05  # seconds between looks at the cancel event while waiting for records


@dataclasses.dataclass
class _Mapped:
    parent: states.Mapped
    handles: list[Any]
    known: dict[int, states.State]


class FlowPass:
    def __init__(
        self,
        flow: FlowBase,
        session: Session,
        inputs: RunInputs,
        context: Mapping[str, Any],
    ) -> None:
        self.flow = flow
        self.session = session
        self.given = inputs.task_states
        self.context = context
        self.task_contexts = inputs.task_contexts
        self.start = set(inputs.start_tasks)
        self.run_set = _downstream_closure(flow, self.start) if self.start else None
        self.cancel = inputs.cancel
        self.cache_store = inputs.cache_store
        self.kept: dict[str, states.State] = {}
        self.submitted: dict[str, Any] = {}
        self.handles: dict[str, Any] = {}
        self.mapped: dict[str, _Mapped] = {}
        self.parents: dict[str, Any] = {}
        self.blocking: list[Any] = []
        self.edges = {
            t.slug: tuple(_edge_ref(e) for e in flow.edges_to(t)) for t in flow.sorted_tasks()
        }

    # -- submitting -----------------------------------------------------------------------
    def submit_all(self) -> None:
        pending = list(self.flow.sorted_tasks())
        while pending and not self._check_cancel():
            self.blocking = []
            still = [t for t in pending if not self._try(t)]
            if len(still) == len(pending) and not self.blocking:
                raise RuntimeError(f"No task could be submitted: {[t.slug for t in still][:5]}")
            pending = still
            self.session.flush()
            if pending and self.blocking:
                self.session.wait_some(self.blocking, WAIT_STEP)
                self.session.drain_events()

    def _check_cancel(self) -> bool:
        return self.cancel.check(self.session)

    def _keep(self, slug: str, st: states.State) -> bool:
        self.kept[slug] = st
        self.handles[slug] = self.session.as_upstream(st)
        if isinstance(st, states.Mapped) and st.map_states:
            known = dict(enumerate(st.map_states))
            handles = [self.session.as_upstream(c) for c in st.map_states]
            self.mapped[slug] = _Mapped(st, handles, known)
        return True

    def _try(self, task: Task) -> bool:
        if self._check_cancel():
            return False
        slug = task.slug or ""
        given = self.given.get(slug)
        if self.run_set is not None and slug not in self.run_set:
            return self._keep(slug, given or states.Pending("Task not run."))
        if (
            given is not None
            and given.is_finished()
            and not isinstance(given, states.Cached | states.Mapped)
        ):
            return self._keep(slug, given)
        if type(task) is Constant and given is None:
            return self._keep(slug, states.Success(result=task.value))
        edges = self.edges[slug]
        if any(e.upstream not in self.handles for e in edges):
            return False
        if any(e.mapped for e in edges):
            return self._try_mapped(task, slug, edges, given)
        upstream, reduced, _ = self._inputs(edges, None)
        handle = self.session.submit_call(self._call(task, slug, edges), given, upstream, reduced)
        self.submitted[slug] = self.handles[slug] = handle
        return True

    def _call(
        self, task: Task, slug: str, edges: tuple[EdgeRef, ...], **extra: Any
    ) -> calls.TaskCall:
        context = self.context
        if slug in self.task_contexts:
            context = {**context, **self.task_contexts[slug]}
        return calls.TaskCall(
            task=task,
            edges=edges,
            constants=self.flow.constants.get(task, {}),
            context=context,
            is_start_task=slug in self.start,
            cache_candidates=self.cache_store.candidates(task) if task.cache_for else (),
            **extra,
        )

    def _inputs(
        self, edges: Sequence[EdgeRef], index: int | None
    ) -> tuple[list[Any], list[Any], tuple[bool, ...]]:
        upstream: list[Any] = []
        reduced: list[Any] = []
        slice_here: list[bool] = []
        for edge in edges:
            mapped = self.mapped.get(edge.upstream)
            if mapped is not None and (not edge.mapped or edge.flattened):
                upstream.append(None)
                reduced.append(mapped.handles)
                slice_here.append(edge.mapped and index is not None)
            elif mapped is not None and index is not None:
                upstream.append(mapped.handles[index])
                reduced.append(None)
                slice_here.append(False)
            else:
                handle = self.handles[edge.upstream]
                reduced.append(None)
                if edge.mapped and index is not None and isinstance(handle, states.State):
                    # Slice here: a child ships its own element, not the whole list.
                    if handle.is_successful():
                        handle = calls._child_view(handle, edge, index)
                    slice_here.append(False)
                else:
                    slice_here.append(edge.mapped and index is not None)
                upstream.append(handle)
        return upstream, reduced, tuple(slice_here)

    def _try_mapped(
        self, task: Task, slug: str, edges: tuple[EdgeRef, ...], given: states.State | None
    ) -> bool:
        if slug not in self.parents:
            if isinstance(given, states.Mapped):
                self.parents[slug] = given
            else:
                upstream, reduced, _ = self._inputs(edges, None)
                call = self._call(task, slug, edges, is_mapped_parent=True)
                self.parents[slug] = self.session.submit_call(call, given, upstream, reduced)
        parent_handle = self.parents[slug]
        parent = (
            parent_handle
            if isinstance(parent_handle, states.Mapped)
            else self.session.record(parent_handle)
        )
        if parent is None:
            self.blocking.append(parent_handle)
            return False
        if not isinstance(parent, states.Mapped):
            self.submitted[slug] = self.handles[slug] = parent_handle
            return True
        previous = given.map_states if isinstance(given, states.Mapped) else ()
        known: dict[int, states.State] = {}
        handles: list[Any] = [None] * parent.n_map_states
        todo: list[int] = []
        for i in range(parent.n_map_states):
            before = previous[i] if i < len(previous) else None
            if (
                before is not None
                and before.is_finished()
                and not isinstance(before, states.Cached)
            ):
                known[i] = before
                handles[i] = self.session.as_upstream(before)
            else:
                todo.append(i)
        base = self._call(task, slug, edges)
        child_calls, child_states, child_inputs = [], [], []
        for i in todo:
            upstream, reduced, slice_here = self._inputs(edges, i)
            child_calls.append(dataclasses.replace(base, map_index=i, slice_here=slice_here))
            child_states.append(previous[i] if i < len(previous) else None)
            child_inputs.append((upstream, reduced))
        for i, handle in zip(
            todo, self.session.submit_children(child_calls, child_states, child_inputs), strict=True
        ):
            handles[i] = handle
        self.mapped[slug] = _Mapped(parent, handles, known)
        self.handles[slug] = parent_handle
        return True

    # -- collecting -----------------------------------------------------------------------
    def _await(self, handles: Iterable[Any]) -> None:
        # Records arrive roughly in submission order: wait on each in turn, which keeps
        # this linear in the number of tasks.
        for handle in handles:
            while self.session.record(handle) is None:
                self._check_cancel()
                self.session.wait_some((handle,), WAIT_STEP)
                self.session.drain_events()

    def collect(self) -> dict[str, states.State]:
        """Wait for every submitted task and return the record of every task."""
        self.session.flush()
        self._await(self.submitted.values())
        for mapped in self.mapped.values():
            self._await(h for i, h in enumerate(mapped.handles) if i not in mapped.known)
        self.session.drain_events()
        records: dict[str, states.State] = {}
        for task in self.flow.sorted_tasks():
            slug = task.slug or ""
            records[slug] = self._record_of(slug)
        self.cache_store.remember(self.flow, records, self.session)
        return records

    def _record_of(self, slug: str) -> states.State:
        mapped = self.mapped.get(slug)
        if mapped is not None:
            children = tuple(
                mapped.known[i] if i in mapped.known else self.session.record(h) or states.Pending()
                for i, h in enumerate(mapped.handles)
            )
            return mapped.parent.replace(
                map_states=children, n_map_states=len(children), result=[c.result for c in children]
            )
        if slug in self.kept:
            return self.kept[slug]
        if slug in self.submitted:
            return self.session.record(self.submitted[slug]) or states.Pending()
        given = self.given.get(slug)
        if given is not None and given.is_finished():
            return given
        if self.cancel.is_set():
            return states.Cancelled("Flow run was cancelled before this task started.")
        return given or states.Pending("Task not run.")


def _edge_ref(edge: Any) -> EdgeRef:
    return EdgeRef(edge.upstream.slug, key=edge.key, mapped=edge.mapped, flattened=edge.flattened)


def _downstream_closure(flow: FlowBase, slugs: set[str]) -> set[str]:
    missing = slugs - {t.slug for t in flow.sorted_tasks()}
    if missing:
        raise ValueError(f"start_tasks are not in the flow: {sorted(missing)}")
    seen = set(slugs)
    stack = [flow.task_by_slug(s) for s in slugs]
    while stack:
        for edge in flow.edges_from(stack.pop()):
            if edge.downstream.slug not in seen:
                seen.add(edge.downstream.slug or "")
                stack.append(edge.downstream)
    return seen
