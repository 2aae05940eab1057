"""`make demo` on a real node: the product's own path.

A one-node Kubernetes on this machine (`flowrun dev up --node`), the project's image built and
loaded, the Helm chart installed as it is (only the image names set), then every manifest in
examples/ applied as a FlowRun on the Kubernetes provider: each gets a Dask scheduler and worker
Pods and a runner Pod, and leaves nothing behind. Needs root (namespaces, cgroups).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from flowrun.dev import build, helmop, image
from flowrun.dev.node import Node
from flowrun.dev.tool import Tool
from flowrun.dev.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "demo"
TERMINAL = {"Succeeded", "Failed", "Cancelled"}


def on_kubernetes(path: Path, worker_image: str) -> dict[str, Any]:
    """An example as shipped (`cluster: Local`), moved to the Kubernetes provider: a List of
    its documents (a FlowRun, and the FlowTemplates it may name)."""
    docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for manifest in docs:
        if manifest["kind"] == "FlowRun":
            dask = manifest["spec"]["executor"]["dask"]
            dask.update(cluster="Kubernetes", image=worker_image)
    return {"apiVersion": "v1", "kind": "List", "items": docs}


def phases(kubectl: Tool) -> dict[str, str | None]:
    items = kubectl.json("get", "flowruns", "-n", NAMESPACE)["items"]
    return {i["metadata"]["name"]: (i.get("status") or {}).get("phase") for i in items}


def show(kubectl: Tool, *args: str) -> None:
    print(kubectl(*args, check=False).stdout)


def run_examples(kubectl: Tool, installed: helmop.HelmOperator) -> bool:
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    print(f"\n== Applying {len(examples)} examples on the Kubernetes provider")
    print(f"   (cluster: Kubernetes, image: {installed.image})")
    for path in examples:
        kubectl(
            "apply",
            "-n",
            NAMESPACE,
            "-f",
            "-",
            input=json.dumps(on_kubernetes(path, installed.image)),
        )
    started = time.monotonic()

    def all_done() -> dict[str, str | None] | None:
        seen = phases(kubectl)
        return seen if len(seen) == len(examples) and set(seen.values()) <= TERMINAL else None

    final = wait_for(all_done, timeout=600, interval=1, what="the FlowRuns to finish")
    print(f"all {len(final)} FlowRuns finished in {time.monotonic() - started:.1f} s\n")
    show(kubectl, "get", "flowruns", "-n", NAMESPACE)
    print("== kubectl get flowrun etl -o yaml (status)")
    status = kubectl("get", "flowrun", "etl", "-n", NAMESPACE, "-o", "yaml").stdout
    print(status[status.index("status:") :] if "status:" in status else status)
    print("== the Pods that came and went (Events of kind Pod)")
    show(
        kubectl, "get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.kind=Pod",
        "--sort-by=.lastTimestamp",
    )  # fmt: skip
    return all(phase == "Succeeded" for phase in final.values())


def demo(node: Node, built: image.BuiltImage) -> int:
    kubectl = Tool(node.bin_dir / "kubectl", node.kubeconfig)
    helm = Tool(node.bin_dir / "helm", node.kubeconfig)
    print("\n== helm install helm/flowrun-operator (daskOperator.enabled=true)")
    print("   into a namespace that enforces Pod Security restricted")
    installed = helmop.install(kubectl, helm, built.name, built.dask_operator)
    print(f"both operators Ready as Pods in {installed.install_seconds:.1f} s")
    show(kubectl, "get", "pods", "-n", helmop.NAMESPACE)
    helmop.create_restricted_namespace(kubectl, NAMESPACE)
    ok = run_examples(kubectl, installed)
    print("== Cleaning up: every run's DaskCluster, Pods and Services must be gone")
    installed.wait_clean(NAMESPACE)
    print(
        "nothing of a run is left:",
        installed.leftovers(NAMESPACE) or "no DaskCluster, Pod or Service",
    )
    helmop.uninstall(installed)
    return 0 if ok else 1


def main() -> int:
    bins = build.ensure_built()
    print("== Building the image (cached when the project has not changed)")
    built = image.ensure_image()
    with tempfile.TemporaryDirectory(prefix="flowrun-demo-node-") as tmp:
        node = Node(Path(tmp) / "node", bin_dir=bins, images=(built.archive,), tie_to_parent=True)
        started = time.monotonic()
        print("== Starting a one-node Kubernetes (kubelet, containerd, kube-proxy, CoreDNS)")
        node.start()
        print(f"node Ready in {time.monotonic() - started:.1f} s")
        try:
            return demo(node, built)
        except (TimeoutError, AssertionError) as err:
            raise SystemExit(f"demo: {err}") from None
        finally:
            node.stop()
            print("node stopped; the host is as it was")
