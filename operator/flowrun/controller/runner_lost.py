"""Has a FlowRun's runner gone for good without writing the run's end? And why, in words.

Read from the runner Job and its Pods (plain JSON from the API server): the Job failed (its
`backoffLimit` spent: OOMKilled, a crash, Pods lost), the Job is gone, the runner exited 0
without an end, or a Pod waits for something that will not come by itself (an image that
cannot be pulled, a Secret or key the kubelet cannot find). A Pod that is merely starting, or a
Pod the Job is replacing (resuming the run), is not lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flowrun.cluster import base
from flowrun.controller import kubeobjects
from flowrun.controller import runner_objects as objects
from flowrun.runs.outcome import FAILED, Outcome

# Waiting reasons that no retry of the kubelet's will clear (ErrImagePull becomes
# ImagePullBackOff after its first failure, so only the latter is final).
STUCK = frozenset(
    {
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
_SECRET_MISSING = re.compile(r'secret "([^"]+)" not found')
_KEY_MISSING = re.compile(r"couldn't find key (\S+) in Secret \S+/(\S+)")


async def diagnose(api: Any, owner: base.Owner) -> Outcome | None:
    """None while the runner may still end the run; else the Failed outcome to write."""
    name = objects.runner_name(owner)
    job = await kubeobjects.get(api, "Job", owner.namespace, name)
    if job is None:
        return Outcome(FAILED, "RunnerLost", f"The runner Job {name} was deleted mid-run.")
    pods = await kubeobjects.list_labelled(
        api, "Pod", owner.namespace, f"{objects.LABEL_RUNNER}={name}"
    )
    for pod in pods:
        stuck = _stuck(pod)
        if stuck is not None:
            return stuck
    conditions = {
        c.get("type"): c
        for c in (job.get("status") or {}).get("conditions") or []
        if c.get("status") == "True"
    }
    if "Failed" in conditions:
        why = "; ".join(filter(None, (_terminated(p) for p in pods)))
        job_says = conditions["Failed"].get("message") or conditions["Failed"].get("reason")
        return Outcome(
            FAILED,
            "RunnerFailed",
            f"The runner failed ({job_says}): {why or 'no Pod left to say why'}.",
        )
    if "Complete" in conditions:
        return Outcome(FAILED, "RunnerExited", "The runner exited without writing the run's end.")
    return None


def _stuck(pod: Mapping[str, Any]) -> Outcome | None:
    name = pod["metadata"]["name"]
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason, message = waiting.get("reason"), waiting.get("message") or ""
        if reason not in STUCK:
            continue
        if missing := _SECRET_MISSING.search(message):
            return Outcome(
                FAILED,
                "SecretNotFound",
                f"spec.parametersFrom: Secret {missing[1]!r} not found "
                f"(runner Pod {name}: {reason})",
            )
        if missing := _KEY_MISSING.search(message):
            return Outcome(
                FAILED,
                "SecretKeyNotFound",
                f"spec.parametersFrom: Secret {missing[2]!r} has no key "
                f"{missing[1]!r} (runner Pod {name}: {reason})",
            )
        image = status.get("image", "")
        return Outcome(
            FAILED,
            "RunnerNotStarted",
            f"The runner Pod {name} cannot start: {reason} ({image}): {message}",
        )
    return None


def _terminated(pod: Mapping[str, Any]) -> str | None:
    """`Pod x: OOMKilled (exit code 137)`, from its runner container's last end."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        ended = (status.get("state") or {}).get("terminated") or {}
        if ended:
            what = ended.get("reason") or "Error"
            return f"Pod {pod['metadata']['name']}: {what} (exit code {ended.get('exitCode')})"
    return None
