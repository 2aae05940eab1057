"""Has a FlowRun's runner gone for good without writing the run's end? And why, in words.

Read from the runner Job and its Pods (plain JSON from the API server): a Pod OOMKilled (at
once: not retried), the Job failed (its `backoffLimit` spent: a crash, Pods lost), the Job is
gone, the runner exited 0 without an end, or a Pod waits for something that will not come by
itself (an image that cannot be pulled, a Secret or key the kubelet cannot find), or no Pod can
be created at all (the API server refuses it: a ResourceQuota, a LimitRange; the Job controller
says why only in a `FailedCreate` Event on the Job, and keeps trying), or no node takes the Pod
(the scheduler says why in its PodScheduled condition) for the run's startup timeout. A Pod
that is merely starting, or a Pod the Job is replacing (resuming the run), is not lost.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from flowrun.api.dask_spec import STARTUP_TIMEOUT_DEFAULT
from flowrun.api.status import parse_rfc3339
from flowrun.cluster import base
from flowrun.controller import kubeobjects
from flowrun.controller import runner_objects as objects
from flowrun.controller.kube import http_status
from flowrun.runs import render
from flowrun.runs.outcome import FAILED, Outcome

logger = logging.getLogger(__name__)

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
# The tail of a crashed runner's log that goes into the run's message (the status message is
# cut at 1,000 characters; this leaves room for the Pods' reasons before it).
TAIL_LINES = 8
TAIL_CHARS = 600
# How long the API server may refuse the runner's Pod before the run ends Failed, by default
# (--runner-create-grace). Not the run's startupTimeoutSeconds (a Dask cluster's, 300 s by
# default): a refusal names its cause at once, and most causes (a quota or LimitRange the Pod
# does not satisfy) never clear by themselves; a minute lets an exhausted quota free up when
# another Pod ends just then, and lets the Job controller retry (its backoff: 1, 2, 4 ... s).
CREATE_GRACE = 60.0
# Refusals about resources: quota admission ("exceeded quota", "failed quota: q: must specify")
# and LimitRanger ("maximum cpu usage per Container is 1, but limit is 2").
_RESOURCES = re.compile(r"quota|usage per (Container|Pod)|ratio per Container")
# How long no node may take the runner's Pod, by default, before the run ends Failed: the run's
# spec.executor.dask.startupTimeoutSeconds (default 300 s), unlike a refusal (CREATE_GRACE). The
# scheduler's verdict can clear by itself: a cluster autoscaler adds a node in minutes, another
# Pod ends and frees room; a user who gives a run N seconds to start expects the runner's start
# to count. Measured from the condition's lastTransitionTime, so an operator restart keeps it.
STARTUP_DEFAULT = float(STARTUP_TIMEOUT_DEFAULT)
# Where a runner's resources are set: for one run, and for every run (the operator's default).
WHERE_RESOURCES = (
    "spec.runner.resources for this run; Helm value runner.resources, operator flag "
    "--runner-resources for every run"
)
# The kubelet's reason for a container its memory limit killed. Not retried: the Job's next Pod
# has the same limit and would be killed again (a minute of backoff for nothing). A SIGKILL that
# is no OOM kill (exit code 137 too, reason Error: a node lost, a kill -9) is retried and resumes.
# A Job podFailurePolicy cannot tell them apart (it matches exit codes, not this reason).
OOM_KILLED = "OOMKilled"
OOM_NOT_RETRIED = "OOMKilled, not retried: the same memory limit would kill it again"
_SECRET_MISSING = re.compile(r'secret "([^"]+)" not found')
_KEY_MISSING = re.compile(r"couldn't find key (\S+) in Secret \S+/(\S+)")


class RunnerWatch:
    """One FlowRun's runner, looked at again and again until it is found lost."""

    def __init__(
        self,
        api: Any,
        owner: base.Owner,
        *,
        grace: float = CREATE_GRACE,
        startup: float = STARTUP_DEFAULT,
    ) -> None:
        self.api, self.owner, self.grace, self.startup = api, owner, grace, startup
        self.name = objects.runner_name(owner)
        self.refused_since: float | None = None  # monotonic: when a refusal was first seen
        self.may_read_events = True
        self.waiting: str | None = None  # why the runner's Pod is not running, while it waits
        # A node took it and its container has not started: the runner has written nothing yet.
        self.starting = False

    async def lost(self) -> Outcome | None:
        """None while the runner may still end the run; else the Failed outcome to write."""
        job = await kubeobjects.get(self.api, "Job", self.owner.namespace, self.name)
        if job is None:
            return Outcome(FAILED, "RunnerLost", f"The runner Job {self.name} was deleted mid-run.")
        pods = await kubeobjects.list_labelled(
            self.api, "Pod", self.owner.namespace, f"{objects.LABEL_RUNNER}={self.name}"
        )
        found = judge(job, pods)
        if found is not None and oom_killed(pods):
            await self._stop_job()
        if found is None:
            found = self._unscheduled(pods)
        if found is not None or any(_alive(pod) for pod in pods) or _ended(job):
            self.refused_since = None
            return found
        refusal = await self._refusal(job)
        if refusal is None:
            self.refused_since = None
            return None
        now = time.monotonic()
        self.refused_since = self.refused_since or now
        if now - self.refused_since < self.grace:
            return None
        return Outcome(FAILED, "RunnerNotCreated", not_created(self.name, refusal, self.grace))

    async def _stop_job(self) -> None:
        """Delete the runner's Job now, so that no other Pod starts (the Job controller waits
        10 s before its next one; the run's cleanup comes later). Should the operator die before
        the run's end is written, the next one creates the Job again, and its Pod ends the same."""
        try:
            deleted = await kubeobjects.delete(self.api, "Job", self.owner.namespace, self.name)
        except Exception as exc:  # must not mask the run's end: its cleanup deletes the Job too
            logger.warning("deleting the OOMKilled runner's Job %s failed: %s", self.name, exc)
            return
        if deleted:
            logger.info("runner %s was OOMKilled: its Job is deleted, no Pod retries", self.name)

    def _unscheduled(self, pods: list[Mapping[str, Any]]) -> Outcome | None:
        """Failed once no node has taken the runner's Pod for `startup` seconds; until then,
        `waiting` says why in the scheduler's words."""
        found = unschedulable(pods)
        if found is None:
            self.waiting = None
            self.starting = any(
                _alive(pod) and (pod.get("status") or {}).get("phase") == "Pending" for pod in pods
            )
            return None
        pod, condition = found
        said = str(condition.get("message") or condition.get("reason"))
        since = parse_rfc3339(condition.get("lastTransitionTime")) or time.time()
        if time.time() - since < self.startup:
            self.waiting = not_scheduled(pod["metadata"]["name"], said, self.startup, ended=False)
            return None
        message = not_scheduled(pod["metadata"]["name"], said, self.startup, ended=True)
        return Outcome(FAILED, "RunnerNotScheduled", message)

    async def _refusal(self, job: Mapping[str, Any]) -> str | None:
        """The Job controller's last word on why it could not create the runner's Pod."""
        if not self.may_read_events:
            return None
        fields = f"involvedObject.uid={job['metadata']['uid']},reason=FailedCreate"
        try:
            events = await kubeobjects.list_where(
                self.api, "Event", self.owner.namespace, {"fieldSelector": fields}
            )
        except kubeobjects.API_ERRORS as exc:
            if http_status(exc) != 403:
                raise
            # Not fatal (custom RBAC without `list` on events): such a run waits as before.
            logger.warning("cannot tell why runner %s has no Pod: %s", self.name, exc)
            self.may_read_events = False
            return None
        if not events:
            return None
        last = max(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        message: str = last.get("message") or "FailedCreate"
        return message


def not_created(name: str, refusal: str, grace: float) -> str:
    """The refusal in the API server's words, and what to do about it."""
    said = (
        f"The runner Pod of Job {name} could not be created for {grace:g}s: {refusal.rstrip('.')}."
    )
    if not _RESOURCES.search(refusal):  # e.g. Pod Security admission, a webhook
        return f"{said} Change what refuses it, then create the FlowRun again."
    return (
        f"{said} A ResourceQuota or LimitRange of the namespace refuses it: give the runner "
        f"resources that fit ({WHERE_RESOURCES}) or change the quota, then create the FlowRun "
        "again."
    )


def unschedulable(
    pods: list[Mapping[str, Any]],
) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """A live Pod that the scheduler finds no node for, and its PodScheduled condition."""
    for pod in pods:
        status = pod.get("status") or {}
        if not _alive(pod) or status.get("phase") != "Pending":
            continue
        for condition in status.get("conditions") or []:
            said = (condition.get("type"), condition.get("status"), condition.get("reason"))
            if said == ("PodScheduled", "False", "Unschedulable"):
                return pod, condition
    return None


def not_scheduled(pod: str, said: str, startup: float, *, ended: bool) -> str:
    """The scheduler's words, what to do, and (while waiting) how long the run waits."""
    field = "spec.executor.dask.startupTimeoutSeconds"
    if ended:
        text = f"The runner Pod {pod} was not scheduled within {startup:g}s ({field}): "
    else:
        text = f"The runner Pod {pod} cannot be scheduled yet: "
    text += f"{said.rstrip('.')}."
    if "Insufficient" in said:
        text += (
            " No node has room for its requests: give the runner requests that fit a node "
            f"({WHERE_RESOURCES}) or add a node"
        )
    else:  # taints, cordoned nodes, no node at all
        text += " Make a node take it (taints, cordoned nodes) or add a node"
    if ended:
        return text + ", then create the FlowRun again."
    return text + f". The run fails if it is not scheduled within {startup:g}s ({field})."


def judge(job: Mapping[str, Any], pods: list[Mapping[str, Any]]) -> Outcome | None:
    """Lost for good from the Job's and its Pods' state alone, or None."""
    for pod in pods:
        stuck = _stuck(pod)
        if stuck is not None:
            return stuck
    if oom_killed(pods):
        return failed(OOM_NOT_RETRIED, pods)
    conditions = _conditions(job)
    if "Failed" in conditions:
        said = conditions["Failed"]
        return failed(str(said.get("message") or said.get("reason")), pods)
    if "Complete" in conditions:
        return Outcome(FAILED, "RunnerExited", "The runner exited without writing the run's end.")
    return None


def oom_killed(pods: list[Mapping[str, Any]]) -> bool:
    """Has the kubelet killed a runner Pod's container for going over its memory limit?"""
    return any((_terminated(pod) or {}).get("reason") == OOM_KILLED for pod in pods)


def _conditions(job: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        c.get("type"): c
        for c in (job.get("status") or {}).get("conditions") or []
        if c.get("status") == "True"
    }


def _ended(job: Mapping[str, Any]) -> bool:
    """Finished or finishing (the Job controller sets FailureTarget, then Failed)."""
    return bool(_conditions(job))


def _alive(pod: Mapping[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


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


def failed(job_says: str, pods: list[Mapping[str, Any]]) -> Outcome:
    """The Job gave up: each Pod's end (`Pod x: Error (exit code 1)`), then the tail of the
    last one's log, as much of it as the run's message has room for."""
    ended = [(pod, t) for pod in _by_age(pods) if (t := _terminated(pod))]
    says = "; ".join(
        f"Pod {pod['metadata']['name']}: {t.get('reason') or 'Error'} (exit code "
        f"{t.get('exitCode')})"
        for pod, t in ended
    )
    text = f"The runner failed ({job_says}): {says or 'no Pod left to say why'}."
    if any(t.get("reason") == OOM_KILLED for _, t in ended):
        text += (
            " The runner went over its memory limit: give it more memory "
            f"(limits.memory in {WHERE_RESOURCES}), then create the FlowRun again."
        )
    if ended:
        last, terminated = ended[-1]
        intro = f" The last lines of its log (Pod {last['metadata']['name']}):\n"
        room = min(TAIL_CHARS, render.RUN_MESSAGE_CHARS - len(text) - len(intro))
        tail = log_tail(terminated.get("message") or "", chars=room) if room > 40 else ""
        text += intro + tail if tail else ""
    return Outcome(FAILED, "RunnerFailed", text)


def _by_age(pods: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp") or ""))


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The runner container's end, as the kubelet reports it."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        ended: Mapping[str, Any] = (status.get("state") or {}).get("terminated") or {}
        if ended:
            return ended
    return None


def log_tail(message: str, *, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last `lines` non-blank lines of a terminated container's message, at most `chars`
    characters (cut at the front: the last line, e.g. a traceback's exception, matters most).

    With `FallbackToLogsOnError` the kubelet puts the tail of the log there (at most 80 lines,
    2 KiB) when the container failed without writing its termination-log file.

    >>> log_tail("Traceback (most recent call last):\\n  File x\\n\\nValueError: boom\\n", lines=2)
    '  File x\\nValueError: boom'
    >>> log_tail("a" * 50 + "\\nlast", chars=12)
    '...aaaa\\nlast'
    """
    kept = [line.rstrip() for line in message.splitlines() if line.strip()][-lines:]
    text = "\n".join(kept)
    return text if len(text) <= chars else "..." + text[len(text) - chars + 3 :]
