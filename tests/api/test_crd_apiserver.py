"""The CRD against a real kube-apiserver: it decides schema, CEL rules and subresources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowrun.api.admission import BIG_INLINE_TASKS
from flowrun.api.status import StatusBuilder
from flowrun.dev.waiting import wait_for
from flowrun.engine.events import TaskEvent
from flowrun.runs.render import render

pytestmark = pytest.mark.controlplane


def manifest(name: str, namespace: str, **spec: Any) -> str:
    base: dict[str, Any] = {
        "flow": {
            "tasks": [
                {"name": "a", "fn": "flowrun.examples.etl:extract", "args": [1, None, {"x": 1}]},
                {"name": "b", "fn": "flowrun.examples.etl:load", "kwargs": {"rows": {"task": "a"}}},
            ],
            "parameters": [{"name": "limit", "default": 10}],
        },
        "parameters": {"limit": 3},
    }
    body = {
        "apiVersion": "flowrun.dev/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**base, **spec},
    }
    return yaml.safe_dump(body)


def apply(kubectl: Any, text: str) -> Any:
    return kubectl("apply", "-f", "-", input=text, check=False)


def test_crd_is_structural_and_established(installed: None, kubectl: Any) -> None:
    got = kubectl.json("get", "crd", "flowruns.flowrun.dev")
    types = {c["type"]: c["status"] for c in got["status"]["conditions"]}
    assert types["Established"] == "True"
    assert "NonStructuralSchema" not in types


def test_a_valid_flowrun_is_stored_with_defaults(
    installed: None, kubectl: Any, namespace: str
) -> None:
    result = apply(kubectl, manifest("ok", namespace, executor={"dask": {"cluster": "Local"}}))
    assert result.returncode == 0, result.stderr
    got = kubectl.json("get", "fr", "ok", "-n", namespace)
    assert got["spec"]["executor"]["type"] == "Dask"
    assert got["spec"]["executor"]["dask"]["startupTimeoutSeconds"] == 300
    assert got["spec"]["flow"]["tasks"][0]["args"] == [1, None, {"x": 1}]


def test_bad_shapes_are_refused_naming_the_field(
    installed: None, kubectl: Any, namespace: str
) -> None:
    text = manifest(
        "bad",
        namespace,
        executor={"type": "Foo", "dask": {"workers": 0, "mapBatchSize": 0}},
        activeDeadlineSeconds=0,
        startTasks=["a", "a"],
    )
    result = apply(kubectl, text)
    assert result.returncode != 0
    for field in (
        "spec.executor.type",
        "spec.executor.dask.workers",
        "spec.executor.dask.mapBatchSize",
        "spec.activeDeadlineSeconds",
        "spec.startTasks[1]",
    ):
        assert field in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("flow", "message"),
    [
        ({"ref": "pkg.mod:flow", "tasks": [{"name": "a", "fn": "m:a"}]}, "exactly one of"),
        ({"name": "nothing"}, "exactly one of"),
        ({"ref": "pkg.mod:flow", "parameters": [{"name": "x"}]}, "only for inline flows"),
        (
            {"tasks": [{"name": "a", "fn": "m:a"}, {"name": "a", "fn": "m:b"}]},
            "task names must be unique",
        ),
    ],
)
def test_cel_and_list_rules(
    installed: None, kubectl: Any, namespace: str, flow: dict[str, Any], message: str
) -> None:
    result = apply(kubectl, manifest("cel", namespace, flow=flow, parameters={}))
    assert result.returncode != 0
    assert message in result.stderr
    assert "spec.flow" in result.stderr


def test_bad_quantities_are_refused_naming_the_field(
    installed: None, kubectl: Any, namespace: str
) -> None:
    """Runner and worker resources are Kubernetes quantities, checked before the run is taken:
    a Pod asking for them would be refused only later, by the Job controller."""
    runner = {"resources": {"requests": {"cpu": "-1", "memory": 512}, "limits": {"memory": "1GB"}}}
    workers = {"dask": {"resources": {"requests": {"memory": -5}}}}
    result = apply(kubectl, manifest("qty", namespace, runner=runner, executor=workers))
    assert result.returncode != 0
    for field in (
        "spec.runner.resources.requests.cpu",
        "spec.runner.resources.limits.memory",
        "spec.executor.dask.resources.requests.memory",
    ):
        assert field in result.stderr, result.stderr
    assert "spec.runner.resources.requests.memory" not in result.stderr  # 512 bytes is one
    fine = {"resources": {"requests": {"cpu": "1.5", "memory": 512}, "limits": {"memory": "1.5G"}}}
    result = apply(kubectl, manifest("qty", namespace, runner=fine))
    assert result.returncode == 0, result.stderr
    stored = kubectl.json("get", "fr", "qty", "-n", namespace)["spec"]["runner"]
    assert stored == fine


def test_a_request_above_its_limit_is_refused_naming_the_resources(
    installed: None, kubectl: Any, namespace: str
) -> None:
    runner = {"resources": {"requests": {"cpu": "2", "memory": 512}, "limits": {"cpu": "1500m"}}}
    result = apply(kubectl, manifest("over", namespace, runner=runner))
    assert result.returncode != 0
    assert "spec.runner.resources" in result.stderr, result.stderr
    assert "a request must be at most its limit" in result.stderr, result.stderr
    equal = {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": 1}}}
    assert apply(kubectl, manifest("over", namespace, runner=equal)).returncode == 0


def test_external_cluster_needs_an_address(installed: None, kubectl: Any, namespace: str) -> None:
    result = apply(kubectl, manifest("ext", namespace, executor={"dask": {"cluster": "External"}}))
    assert result.returncode != 0
    assert "spec.executor.dask" in result.stderr
    assert "address is required" in result.stderr


def test_absurd_local_cluster_sizes_are_refused(
    installed: None, kubectl: Any, namespace: str
) -> None:
    """Local workers are threads inside the operator: 1000 of them sat Pending forever."""
    huge = {"dask": {"cluster": "Local", "workers": 1000}}
    result = apply(kubectl, manifest("huge", namespace, executor=huge))
    assert result.returncode != 0
    assert "spec.executor.dask" in result.stderr
    assert "at most 32 for dask.cluster Local" in result.stderr
    fine = {"dask": {"cluster": "Local", "workers": 32}}
    assert apply(kubectl, manifest("fine", namespace, executor=fine)).returncode == 0
    many = {"dask": {"cluster": "Kubernetes", "workers": 1000}}
    assert apply(kubectl, manifest("many", namespace, executor=many)).returncode == 0


def test_spec_is_immutable_but_cancel_can_be_set(
    installed: None, kubectl: Any, namespace: str
) -> None:
    assert apply(kubectl, manifest("imm", namespace)).returncode == 0

    def patch(spec: dict[str, Any]) -> Any:
        body = json.dumps({"spec": spec})
        args = ("patch", "fr", "imm", "-n", namespace, "--type=merge", "-p", body)
        return kubectl(*args, check=False)

    # The admission policy is refused until the API server has loaded it (it does so
    # asynchronously after `kubectl apply`): ask until the first edit is refused.
    def refused(spec: dict[str, Any], field: str) -> bool:
        result = patch(spec)
        assert result.returncode != 0 or field != "spec.parameters", "an edit was let through"
        return result.returncode != 0 and f"{field} is immutable" in result.stderr

    first = {"parameters": {"limit": 3}, "flow": {"name": "other"}}
    wait_for(lambda: refused(first, "spec.flow"), timeout=60, what="the policy in force")
    assert refused({"parameters": {"limit": 4}}, "spec.parameters")
    assert refused({"startTasks": ["b"]}, "spec.startTasks")  # added
    more = {"resources": {"limits": {"memory": "8Gi"}}}
    assert refused({"runner": more}, "spec.runner")  # a run's runner cannot grow mid-run
    assert refused({"parameters": None}, "spec.parameters")  # removed
    assert patch({"cancel": True}).returncode == 0
    stored = kubectl.json("get", "fr", "imm", "-n", namespace)
    assert stored["spec"]["cancel"] is True
    assert stored["spec"]["parameters"] == {"limit": 3}
    assert "startTasks" not in stored["spec"]


def test_status_and_metadata_writes_pass_beside_the_policy(
    installed: None, kubectl: Any, namespace: str
) -> None:
    # The policy matches spec changes of the main resource only (its evaluation would fail
    # closed: failurePolicy Fail). That status writes do not pay for it at all is measured by
    # benchmarks/status_writes.py (the API server's own metrics): the counters the API server
    # keeps for policies only count denials.
    assert apply(kubectl, manifest("meta", namespace)).returncode == 0
    what = ("fr", "meta", "-n", namespace)
    edit = json.dumps({"spec": {"parameters": {"limit": 5}}})
    wait_for(
        lambda: kubectl("patch", *what, "--type=merge", "-p", edit, check=False).returncode != 0,
        timeout=60,
        what="the policy in force",
    )
    for i in range(2):
        body = json.dumps({"status": {"phase": "Running", "message": f"write {i}"}})
        kubectl("patch", *what, "--subresource=status", "--type=merge", "-p", body)
        kubectl("label", "--overwrite", *what, f"x=y{i}")
        kubectl("annotate", "--overwrite", *what, f"note=n{i}")
    kubectl("patch", *what, "--type=merge", "-p", json.dumps({"spec": {"cancel": True}}))
    stored = kubectl.json("get", *what)
    assert stored["status"]["message"] == "write 1"
    assert stored["metadata"]["labels"] == {"x": "y1"}
    assert stored["metadata"]["generation"] == 2
    assert stored["spec"]["cancel"] is True
    assert stored["spec"]["parameters"] == {"limit": 3}


def big_inline(name: str, namespace: str, n_tasks: int) -> str:
    tasks = [{"name": f"t{i}", "fn": "flowrun.examples.etl:hello"} for i in range(n_tasks)]
    return manifest(name, namespace, flow={"tasks": tasks})


def test_a_big_inline_flow_is_created_with_a_warning_naming_flowtemplates(
    installed: None, kubectl: Any, namespace: str
) -> None:
    def warned(result: Any) -> bool:
        assert result.returncode == 0, result.stderr
        return f"spec.flow.tasks: {BIG_INLINE_TASKS} inline tasks" in result.stderr

    # A warning policy is loaded asynchronously too: a server-side dry run (admission runs,
    # nothing is stored) asks until it is in force.
    big = big_inline("big", namespace, BIG_INLINE_TASKS)
    dry = ("create", "--dry-run=server", "-f", "-")
    wait_for(
        lambda: warned(kubectl(*dry, input=big, check=False)),
        timeout=60,
        what="the big-inline-flow warning in force",
    )
    created = kubectl("create", "-f", "-", input=big, check=False)
    assert warned(created)
    assert "spec.flow.templateRef.name" in created.stderr
    assert len(kubectl.json("get", "fr", "big", "-n", namespace)["spec"]["flow"]["tasks"]) == (
        BIG_INLINE_TASKS
    )
    # Below the threshold, a status write, a metadata write: no warning.
    small = kubectl("create", "-f", "-", input=big_inline("small", namespace, BIG_INLINE_TASKS - 1))
    assert "Warning" not in small.stderr
    what = ("fr", "big", "-n", namespace)
    body = json.dumps({"status": {"phase": "Running"}})
    status = kubectl("patch", *what, "--subresource=status", "--type=merge", "-p", body)
    assert "Warning" not in status.stderr
    assert "Warning" not in kubectl("annotate", *what, "note=n").stderr


def test_status_is_a_subresource_with_printer_columns(
    installed: None, kubectl: Any, namespace: str
) -> None:
    assert apply(kubectl, manifest("st", namespace)).returncode == 0
    status = {"phase": "Running", "progress": "1/2", "failed": 0}
    ignored = json.dumps({"status": {"phase": "Failed"}})
    kubectl("patch", "fr", "st", "-n", namespace, "--type=merge", "-p", ignored)
    assert "status" not in kubectl.json("get", "fr", "st", "-n", namespace)
    body = json.dumps({"status": status})
    kubectl(
        "patch", "fr", "st", "-n", namespace, "--subresource=status", "--type=merge", "-p=" + body
    )
    table = kubectl("get", "fr", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "FAILED", "AGE"]
    assert table[1].split()[:4] == ["st", "Running", "1/2", "0"]


def test_a_rendered_status_is_accepted(installed: None, kubectl: Any, namespace: str) -> None:
    assert apply(kubectl, manifest("full", namespace)).returncode == 0
    builder = StatusBuilder(["a", "b"])
    builder.apply(TaskEvent("a", None, "Success", None, 1, 1.0e9, True))
    builder.apply(TaskEvent("b", None, "Mapped", None, 1, 1.0e9, True, n_map_states=2))
    builder.apply(TaskEvent("b", 1, "Failed", "boom", 1, 1.0e9, True))
    status = render(
        builder,
        phase="Failed",
        now=1.0e9,
        generation=1,
        results={"a": [1, 2]},
        cluster={"name": "fr-full", "scheduler": "tcp://x:8786"},
    )
    body = json.dumps({"status": status})
    kubectl(
        "patch", "fr", "full", "-n", namespace, "--subresource=status", "--type=merge", "-p", body
    )
    stored = kubectl.json("get", "fr", "full", "-n", namespace)["status"]
    assert stored == status  # nothing pruned: the builder's shape is the CRD's shape


def test_kubectl_explain_describes_fields(installed: None, kubectl: Any) -> None:
    text = kubectl("explain", "flowrun.spec.flow").stdout
    assert "The flow: `ref`, inline `tasks` or `templateRef`." in text
    assert "package.module:attribute" in text
    assert "referenceTasks" in text


def test_every_example_is_accepted(installed: None, kubectl: Any, namespace: str) -> None:
    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        result = kubectl("apply", "-n", namespace, "-f", str(path), check=False)
        assert result.returncode == 0, f"{path.name}: {result.stderr}"
        # kubectl reads YAML 1.1 (`n` is false there): the stored spec must be what we meant.
        for written in yaml.safe_load_all(path.read_text()):  # a FlowRun, and its templates
            kind = "fr" if written["kind"] == "FlowRun" else "ft"
            stored = kubectl.json("get", kind, written["metadata"]["name"], "-n", namespace)
            for key, value in written["spec"].items():
                assert stored["spec"][key] == value or key == "executor", f"{path.name}: {key}"
