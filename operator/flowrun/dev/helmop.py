"""The product's own path on the dev node: `helm install` of the chart, as a user would run it.

The flowrun operator and the dask-kubernetes operator (the vendored subchart) run as Pods from the
locally built images, under the chart's ServiceAccounts, RBAC and securityContexts, in a namespace
where Pod Security admission enforces "restricted". Only the image names differ from the chart's
defaults. FlowRun namespaces made by `restricted_namespace` enforce "restricted" too.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from flowrun.dev.image import project_root
from flowrun.dev.waiting import wait_for

RELEASE = "flowrun"
NAMESPACE = "flowrun-system"
RESTRICTED = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
}
DASK_CLUSTER_LABEL = "dask.org/cluster-name"

# What kopf logs when an API call or a handling cycle fails (it retries, then throttles).
KOPF_TROUBLE = ("Request attempt", "Throttling", "unexpected error", "Traceback")


def split_image(name: str) -> tuple[str, str]:
    repository, _, tag = name.rpartition(":")
    return repository, tag


def install_values(image: str, dask_operator_image: str) -> list[str]:
    """The `--set` flags: the two local image names, and the subchart switched on."""
    repo, tag = split_image(image)
    dask_repo, dask_tag = split_image(dask_operator_image)
    return [
        "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
        "--set", "daskOperator.enabled=true",
        "--set", f"dask-kubernetes-operator.image.name={dask_repo}",
        "--set", f"dask-kubernetes-operator.image.tag={dask_tag}",
    ]  # fmt: skip


def create_restricted_namespace(kubectl: Any, name: str) -> None:
    """A namespace that enforces Pod Security "restricted", with its default ServiceAccount."""
    labels = [f"{k}={v}" for k, v in RESTRICTED.items()]
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, *labels)
    # Pods get ServiceAccount tokens: a Pod made before the default account exists is refused.
    wait_for(
        lambda: kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
        timeout=60,
        what=f"the default ServiceAccount of {name}",
    )


@dataclass(frozen=True)
class HelmOperator:
    """The Helm release on the session's node: its namespace, images and timings."""

    kubectl: Any
    helm: Any
    namespace: str
    image: str
    dask_operator_image: str
    install_seconds: float

    def pods(self, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        args = ["get", "pods", "-n", namespace] + (["-l", selector] if selector else [])
        items: list[dict[str, Any]] = self.kubectl.json(*args)["items"]
        return items

    def operator_logs(self, tail: int = 200) -> str:
        selector = "app.kubernetes.io/name=flowrun-operator"
        out = self.kubectl(
            "logs", "-n", self.namespace, "-l", selector, f"--tail={tail}", check=False
        )
        return str(out.stdout + out.stderr)

    def dask_operator_logs(self, tail: int = 200) -> str:
        selector = "app.kubernetes.io/name=dask-kubernetes-operator"
        out = self.kubectl(
            "logs", "-n", self.namespace, "-l", selector, f"--tail={tail}", check=False
        )
        return str(out.stdout + out.stderr)

    def dask_operator_lines(self, *about: str, limit: int = 80) -> str:
        """The dask operator's whole log (the current and a restarted container's), only the
        lines that name one of `about` or tell of kopf's trouble: what a tail misses."""
        lines: list[str] = []
        for previous in ("--previous", ""):
            selector = "app.kubernetes.io/name=dask-kubernetes-operator"
            out = self.kubectl(
                "logs", "-n", self.namespace, "-l", selector, "--tail=-1",
                *([previous] if previous else []), check=False,
            )  # fmt: skip
            lines += [
                line for line in str(out.stdout).splitlines()
                if any(word in line for word in (*about, *KOPF_TROUBLE))
                and not ("Timer '" in line and "succeeded" in line)  # every 5 s per cluster
            ]  # fmt: skip
        return "\n".join(lines[-limit:])

    def diagnosis(self, namespace: str, *about: str) -> str:
        """What a failed test shows: objects and Events of `namespace`, both operators' logs,
        and the dask operator's lines about the objects named in `about`."""
        parts = []
        for args in (
            (
                "get",
                "flowruns,daskclusters,daskworkergroups,daskautoscalers,pods,services",
                "-n",
                namespace,
                "-o",
                "wide",
            ),
            ("get", "events", "-n", namespace, "--sort-by=.lastTimestamp"),
            ("get", "pods", "-n", self.namespace, "-o", "wide"),
        ):
            out = self.kubectl(*args, check=False)
            parts.append(f"$ kubectl {' '.join(args)}\n{out.stdout}{out.stderr}")
        parts.append(f"flowrun operator:\n{self.operator_logs()}")
        parts.append(f"dask-kubernetes operator:\n{self.dask_operator_logs()}")
        if about:
            lines = self.dask_operator_lines(*about)
            parts.append(f"dask-kubernetes operator, lines about {', '.join(about)}:\n{lines}")
        return "\n".join(parts)

    def leftovers(self, namespace: str) -> dict[str, list[str]]:
        """The DaskClusters, DaskAutoscalers, Pods and Services of Dask clusters still in
        `namespace`."""
        found: dict[str, list[str]] = {}
        for kind, selector in (
            ("daskclusters", ""),
            ("daskautoscalers", ""),
            ("pods", DASK_CLUSTER_LABEL),
            ("services", DASK_CLUSTER_LABEL),
        ):
            args = ["get", kind, "-n", namespace, "-o", "json"]
            items = json.loads(self.kubectl(*args, *(["-l", selector] if selector else [])).stdout)
            names = [i["metadata"]["name"] for i in items["items"]]
            if names:
                found[kind] = names
        return found

    def wait_clean(self, namespace: str, timeout: float = 120) -> None:
        wait_for(
            lambda: not self.leftovers(namespace),
            timeout=timeout,
            what=f"no DaskCluster, Dask Pod or Service left in {namespace}",
        )


def install(kubectl: Any, helm: Any, image: str, dask_operator_image: str) -> HelmOperator:
    """`helm install --wait` the chart into `NAMESPACE` (restricted); both operators Ready."""
    if kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0:
        create_restricted_namespace(kubectl, NAMESPACE)
    _adopt_crd(kubectl)
    started = time.monotonic()
    helm(
        "install", RELEASE, str(project_root() / "helm" / "flowrun-operator"), "-n", NAMESPACE,
        *install_values(image, dask_operator_image),
        "--wait", "--timeout", "5m",
        timeout=330,
    )  # fmt: skip
    installed = HelmOperator(
        kubectl, helm, NAMESPACE, image, dask_operator_image, time.monotonic() - started
    )
    for name in ("flowrun-operator", "dask-kubernetes-operator"):
        kubectl(
            "wait", "pod", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={name}",
            "--for=condition=Ready", "--timeout=180s", timeout=200,
        )  # fmt: skip
    return installed


def uninstall(installed: HelmOperator) -> None:
    """Every FlowRun ended and deleted while the operator still runs (its finalizers), then
    `helm uninstall --wait`: the node is left to other tests' operators (the CRD is kept)."""
    kubectl = installed.kubectl
    kubectl(
        "delete", "flowruns", "--all", "-A", "--wait", "--timeout=180s", check=False, timeout=200
    )
    installed.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "3m", timeout=200)


def _adopt_crd(kubectl: Any) -> None:
    """A FlowRun CRD applied by other tests (kubectl apply) is handed to the release, as one
    adopts existing objects into Helm: its ownership label and annotations."""
    crd = "customresourcedefinition/flowruns.flowrun.dev"
    if kubectl("get", crd, check=False).returncode != 0:
        return
    kubectl("label", crd, "app.kubernetes.io/managed-by=Helm", "--overwrite")
    kubectl(
        "annotate", crd, f"meta.helm.sh/release-name={RELEASE}",
        f"meta.helm.sh/release-namespace={NAMESPACE}", "--overwrite",
    )  # fmt: skip
