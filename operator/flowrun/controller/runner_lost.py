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
from flowrun.runs import render
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
# The tail of a crashed runner's log that goes into the run's message (the status message is
# cut at 1,000 characters; this leaves room for the Pods' reasons before it).
TAIL_LINES = 8
TAIL_CHARS = 600
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
        job_says = conditions["Failed"].get("message") or conditions["Failed"].get("reason")
        return failed(job_says, pods)
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
