"""Cluster providers without Kubernetes: names, manifests, Local and External providers."""

from __future__ import annotations

import asyncio
import re

import pytest

from flowrun import cluster
from flowrun.cluster import base, kubernetes

OWNER = base.Owner("flowrun.dev/v1alpha1", "FlowRun", "etl.daily", "team-a", "0a1b2c3d-4e5f-6789")


class TestClusterName:
    def test_is_deterministic_and_valid(self) -> None:
        name = cluster.cluster_name(OWNER)
        assert name == cluster.cluster_name(OWNER)
        assert name == "fr-etl-daily-0a1b2c3d"

    def test_long_names_fit_dask_kubernetes_limit(self) -> None:
        owner = base.Owner("v", "FlowRun", "x" * 250, "ns", "ffffffff-0000")
        name = cluster.cluster_name(owner)
        assert len(name) <= base.MAX_CLUSTER_NAME_LEN
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)

    def test_different_uid_gives_different_name(self) -> None:
        other = base.Owner(OWNER.api_version, OWNER.kind, OWNER.name, OWNER.namespace, "99999999")
        assert cluster.cluster_name(other) != cluster.cluster_name(OWNER)


class TestBuildClusterSpec:
    def spec(self, **kw: object) -> dict[str, object]:
        options = base.ClusterOptions(**kw)  # type: ignore[arg-type]
        return cluster.build_cluster_spec("fr-x-1", owner=OWNER, options=options)

    def test_owned_by_the_flowrun(self) -> None:
        refs = self.spec()["metadata"]["ownerReferences"]  # type: ignore[index]
        assert refs == [
            {
                "apiVersion": "flowrun.dev/v1alpha1",
                "kind": "FlowRun",
                "name": "etl.daily",
                "uid": OWNER.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]

    def test_named_and_labelled_for_finding_again(self) -> None:
        meta = self.spec()["metadata"]
        assert meta["name"] == "fr-x-1"  # type: ignore[index]
        assert meta["namespace"] == "team-a"  # type: ignore[index]
        assert meta["labels"][kubernetes.LABEL_FLOWRUN_UID] == OWNER.uid  # type: ignore[index]

    def test_options_reach_scheduler_and_workers(self) -> None:
        spec = self.spec(
            image="acme/etl:1.4",
            workers=3,
            resources={"requests": {"cpu": "1"}},
            env=({"name": "X", "value": "1"},),
        )["spec"]
        worker = spec["worker"]  # type: ignore[index]
        assert worker["replicas"] == 3
        for part in (worker, spec["scheduler"]):  # type: ignore[index]
            (container,) = part["spec"]["containers"]
            assert container["image"] == "acme/etl:1.4"
            assert container["env"] == [{"name": "X", "value": "1"}]
            assert container["resources"] == {"requests": {"cpu": "1"}}
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}

    def test_default_image_is_used_when_spec_has_none(self) -> None:
        spec = cluster.build_cluster_spec(
            "n", owner=OWNER, options=base.ClusterOptions(), default_image="acme/base:1"
        )
        containers = spec["spec"]["worker"]["spec"]["containers"]
        assert containers[0]["image"] == "acme/base:1"

    def test_scheduler_service_selects_its_pods(self) -> None:
        service = self.spec()["spec"]["scheduler"]["service"]  # type: ignore[index]
        assert service["selector"]["dask.org/cluster-name"] == "fr-x-1"
        assert {p["name"] for p in service["ports"]} == {"tcp-comm", "http-dashboard"}


class TestProviderChoice:
    @pytest.mark.parametrize(
        ("kind", "in_process", "keeps"),
        [("Local", True, False), ("Kubernetes", False, True), ("External", False, True)],
    )
    def test_kinds(self, kind: str, in_process: bool, keeps: bool) -> None:
        provider = cluster.provider_for(kind)
        assert provider.kind == kind
        assert provider.in_process is in_process
        assert provider.keeps_results is keeps

    def test_unknown_kind(self) -> None:
        with pytest.raises(ValueError, match="unknown Dask cluster kind"):
            cluster.provider_for("Yarn")


class TestLocalAndExternal:
    def test_local_cluster_starts_and_closes(self) -> None:
        async def scenario() -> None:
            local = cluster.provider_for("Local")
            handle = await local.start("fr-t-1", base.ClusterOptions(workers=1), OWNER)
            assert handle.address.startswith(("tcp://", "inproc://"))
            external = cluster.provider_for("External")
            seen = await external.start(
                "fr-t-1", base.ClusterOptions(address=handle.address, startup_timeout=10), OWNER
            )
            assert seen.address == handle.address
            await external.close()
            await local.close()

        asyncio.run(scenario())

    def test_external_unreachable_is_a_startup_error(self) -> None:
        async def scenario() -> None:
            external = cluster.provider_for("External")
            options = base.ClusterOptions(address="tcp://127.0.0.1:9", startup_timeout=2)
            with pytest.raises(cluster.ClusterStartupError) as info:
                await external.start("fr-t-2", options, OWNER)
            assert info.value.reason == "ClusterUnreachable"
            assert "127.0.0.1:9" in info.value.message

        asyncio.run(scenario())

    def test_external_without_address(self) -> None:
        async def scenario() -> None:
            with pytest.raises(cluster.ClusterStartupError, match="address is required"):
                await cluster.provider_for("External").start("n", base.ClusterOptions(), OWNER)

        asyncio.run(scenario())
