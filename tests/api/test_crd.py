"""The generated CRD: committed copy in sync, structural, with the promised knobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flowrun.api import crd
from flowrun.cli import main as flowrun_main
from flowrun.engine import graph_model

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds" / "flowrun.yaml"


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return []
    found = [(path, node)]
    for key, child in node.get("properties", {}).items():
        found += _walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        found += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd.build()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crd_matches_the_models() -> None:
    assert COMMITTED.read_text() == crd.to_yaml(), (
        "crds/flowrun.yaml is out of date with flowrun.api.models; regenerate it with:\n"
        "    .venv/bin/flowrun crd > crds/flowrun.yaml"
    )


def test_flowrun_crd_command_prints_the_crd_and_its_policy(capsys: Any) -> None:
    assert flowrun_main(["crd"]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    assert printed == crd.documents()
    kinds = [(d["kind"], d["metadata"]["name"]) for d in printed]
    assert kinds == [
        ("CustomResourceDefinition", "flowruns.flowrun.dev"),
        ("ValidatingAdmissionPolicy", "flowrun-spec-immutable.flowrun.dev"),
        ("ValidatingAdmissionPolicyBinding", "flowrun-spec-immutable.flowrun.dev"),
        ("ValidatingAdmissionPolicy", "flowrun-big-inline-flow.flowrun.dev"),
        ("ValidatingAdmissionPolicyBinding", "flowrun-big-inline-flow.flowrun.dev"),
        ("CustomResourceDefinition", "flowtemplates.flowrun.dev"),
    ]


def test_flowtemplate_flow_is_the_flowrun_flow_schema() -> None:
    """One model, one schema: the template's spec.flow is the FlowRun's (rules included)."""
    template = crd.build_template()["spec"]
    assert template["names"]["shortNames"] == ["ft"]
    assert template["scope"] == "Namespaced"
    (version,) = template["versions"]
    assert "subresources" not in version  # no status: every write is an edit of the flow
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    run_flow = _schema()["properties"]["spec"]["properties"]["flow"]
    assert {**spec["properties"]["flow"], "description": ""} == {**run_flow, "description": ""}
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert rules[0] == "!has(self.flow.templateRef)"
    assert rules[1].startswith("!oldSelf.hasValue() || ")  # unique names on edits too


def test_names_scope_and_subresources() -> None:
    spec = crd.build()["spec"]
    assert spec["group"] == "flowrun.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == ["fr"]
    assert spec["names"]["plural"] == "flowruns"
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Phase", "Progress", "Failed", "Age"]


def test_schema_is_structural() -> None:
    """Every node typed (or free-form), no refs or combinators the API server would refuse."""
    for path, node in _walk(_schema()):
        assert not {"$ref", "allOf", "oneOf", "title", "uniqueItems"} & node.keys(), path
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            continue
        assert "anyOf" not in node, path
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}
        if node.get("type") == "object" and "properties" in node:
            assert "additionalProperties" not in node, path


def test_free_form_only_where_values_are_json() -> None:
    free = {p for p, n in _walk(_schema()) if n.get("x-kubernetes-preserve-unknown-fields")}
    assert free == {
        ".spec.flow.parameters[].default",
        ".spec.flow.tasks[].args[]",
        ".spec.flow.tasks[].kwargs",
        ".spec.parameters",
        ".spec.taskStates{}.result",
        ".status.results",
        ".status.tasks",  # written by the operator only, lean for the API server (below)
    }


def test_the_task_map_is_one_atomic_value_for_the_api_server_and_typed_for_people() -> None:
    """Typed, the API server validated and pruned each entry of a big run's task map on every
    status write, and tracked each key in managedFields: 88x a 1-task run's write, 15x lean."""
    lean = _schema()["properties"]["status"]["properties"]["tasks"]
    assert lean["x-kubernetes-map-type"] == "atomic"
    assert "additionalProperties" not in lean
    documented = crd.build(documented=True)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    entry = documented["properties"]["status"]["properties"]["tasks"]["additionalProperties"]
    assert {"state", "message", "runCount", "children", "failedChildren"} <= entry[
        "properties"
    ].keys()


def test_spec_is_immutable_except_cancel_by_a_policy_not_on_status() -> None:
    # No rule of the schema compares with `oldSelf` outside the creation-only one: such a rule
    # would run on every status write (benchmarks/status_writes.py).
    transition = [
        (path, r["rule"])
        for path, node in _walk(_schema())
        for r in node.get("x-kubernetes-validations", [])
        if "oldSelf" in r["rule"] and not r.get("optionalOldSelf")
    ]
    assert transition == []
    _, policy, binding, big, warn, _ = crd.documents()
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["flowruns"]  # not flowruns/status
    assert rule["operations"] == ["UPDATE"]
    guarded = [v["message"].split()[0] for v in policy["spec"]["validations"]]
    spec_fields = _schema()["properties"]["spec"]["properties"]
    assert guarded == [f"spec.{name}" for name in spec_fields if name != "cancel"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    # The big-inline-flow advice: creation only, never a status write; it warns, never denies.
    (rule,) = big["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["resources"], rule["operations"]) == (["flowruns"], ["CREATE"])
    assert warn["spec"] == {"policyName": big["metadata"]["name"], "validationActions": ["Warn"]}


def test_exactly_one_flow_source_is_a_cel_rule() -> None:
    flow = _schema()["properties"]["spec"]["properties"]["flow"]
    rules = [r["rule"] for r in flow["x-kubernetes-validations"]]
    assert (
        "(has(self.ref) ? 1 : 0) + (has(self.tasks) ? 1 : 0) + (has(self.templateRef) ? 1 : 0) == 1"
        in rules
    )


def test_enums_defaults_and_minimums_are_in_the_schema() -> None:
    executor = _schema()["properties"]["spec"]["properties"]["executor"]
    assert executor["properties"]["type"]["enum"] == ["Local", "Synchronous", "Dask"]
    assert executor["properties"]["type"]["default"] == "Dask"
    dask = executor["properties"]["dask"]
    assert dask["properties"]["cluster"]["default"] == "Kubernetes"
    assert dask["properties"]["workers"]["minimum"] == 1
    assert any("External" in r["rule"] for r in dask["x-kubernetes-validations"])
    tasks = _schema()["properties"]["spec"]["properties"]["flow"]["properties"]["tasks"]
    # Atomic: a list keyed by name costs the API server 3-4x on every status write.
    assert tasks["x-kubernetes-list-type"] == "atomic"
    assert tasks["items"]["required"] == ["name", "fn"]
    assert tasks["items"]["properties"]["timeoutSeconds"]["exclusiveMinimum"] is True


def test_the_fn_pattern_is_the_engines_one() -> None:
    """The API server (RE2) and the engine (Python `re`) check a task's `fn` with one pattern:
    what apply accepts, the engine parses, and a non-ASCII name is refused by both."""
    patterns = {node["pattern"] for path, node in _walk(_schema()) if path.endswith(".fn")}
    assert patterns == {graph_model.FN_REGEX}
    assert graph_model.FN_PATTERN.match("pkg.mod:func")
    assert not graph_model.FN_PATTERN.match("pkg.módulo:func")
