"""Why a Dask cluster's Pods are not ready, in the kubelet's and scheduler's words.

Pure: the caller (`kubernetes.diagnose`) reads the DaskCluster and its Pods from the API server;
this turns what it read into the run's message (`ClusterStartupTimeout`).
"""

from __future__ import annotations

from typing import Any

NOT_FOUND = "the DaskCluster resource does not exist."
NEVER_ACTIONED = (
    "the DaskCluster was never actioned (is the dask-kubernetes operator installed and "
    "running?), so no scheduler or worker pod could start."
)
NO_WORKER = "no worker pod exists (the DaskCluster's worker group made none)"
SAID = 3  # problems in the message at most: the first say why, and it is cut at 1,000 characters


def not_ready(phase: str, pods: list[tuple[str, dict[str, Any]]], *, workers: bool = True) -> str:
    """A DaskCluster in `phase` whose Pods (name, status) are not all ready: why, at most SAID
    problems, each once; first, when none of them is a worker (`workers`), that.

    >>> waiting = {"containerStatuses": [{"name": "worker", "state": {"waiting": {
    ...     "reason": "ImagePullBackOff"}}}]}
    >>> not_ready("Created", [("w-1", waiting), ("w-2", waiting)])
    'pod w-1: container worker ImagePullBackOff; pod w-2: container worker ImagePullBackOff'
    >>> not_ready("Created", [])
    'the DaskCluster is Created but no scheduler or worker pod exists yet.'
    >>> not_ready("Running", [("s-1", {"phase": "Running"})], workers=False)
    "no worker pod exists (the DaskCluster's worker group made none); pod s-1 is Running"
    """
    if not pods:
        return f"the DaskCluster is {phase} but no scheduler or worker pod exists yet."
    problems: list[str] = [] if workers else [NO_WORKER]
    for name, status in pods:
        for problem in pod_problems(name, status):
            if problem not in problems:
                problems.append(problem)
    return "; ".join(problems[:SAID]) or f"the DaskCluster is {phase} and its pods are not ready."


def pod_problems(name: str, status: dict[str, Any]) -> list[str]:
    """Why one Pod is not ready, in the kubelet's words: its containers' waiting reasons
    (ErrImagePull, CrashLoopBackOff...) and last terminations (OOMKilled, exit codes) first,
    then the Pod's own false conditions (Unschedulable...).

    >>> pod_problems("w", {"containerStatuses": [{"name": "worker", "state": {"waiting": {
    ...     "reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"reason": "OOMKilled",
    ...     "exitCode": 137}}}]})
    ['pod w: container worker CrashLoopBackOff (last exit: OOMKilled, code 137)']
    """
    problems = []
    for container in status.get("containerStatuses", []):
        waiting = container.get("state", {}).get("waiting") or {}
        last = container.get("lastState", {}).get("terminated") or {}
        if not waiting.get("reason") and not last:
            continue
        text = f"pod {name}: container {container['name']} {waiting.get('reason', 'restarted')}"
        if waiting.get("message"):
            text += f": {waiting['message'][:200]}"
        if last:
            text += f" (last exit: {last.get('reason', 'Error')}, code {last.get('exitCode')})"
        problems.append(text)
    if problems:
        return problems
    for cond in status.get("conditions", []):
        if cond.get("status") == "False" and cond.get("message"):
            problems.append(f"pod {name}: {cond['message']}")
    return problems or [f"pod {name} is {status.get('phase', 'Pending')}"]
