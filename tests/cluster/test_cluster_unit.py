"""Cluster providers without Kubernetes: names, manifests, Local and External providers."""

from __future__ import annotations

import asyncio
import re

import distributed
import pytest

from flowrun import cluster
from flowrun.cluster import base, kubernetes, labels

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


class TestLabelValue:
    VALID = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")

    @pytest.mark.parametrize(
        "name",
        [
            "etl",
            "a" * 62 + "-b",  # the 63rd character is '-': a plain cut ends in '-'
            "a" * 62 + ".b",
            "x" * 63,
            "x" * 64,
            "y" * 253,
            "a-" * 120 + "z",
            "-" * 10,
        ],
    )
    def test_always_valid(self, name: str) -> None:
        assert self.VALID.fullmatch(labels.label_value(name))

    def test_short_names_are_kept(self) -> None:
        assert labels.label_value("etl.daily-2") == "etl.daily-2"

    def test_long_names_sharing_a_prefix_stay_apart(self) -> None:
        first, second = "p" * 70 + "-first", "p" * 70 + "-second"
        assert labels.label_value(first) != labels.label_value(second)


class TestBuildClusterSpec:
    def spec(self, **kw: object) -> dict[str, object]:
        options = base.ClusterOptions(**{"image": "acme/etl:1", **kw})  # type: ignore[arg-type]
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
        assert meta["labels"][labels.LABEL_FLOWRUN_UID] == OWNER.uid  # type: ignore[index]

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
            assert container["env"][0] == {"name": "X", "value": "1"}
            assert container["resources"] == {"requests": {"cpu": "1"}}
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}

    def test_the_scheduler_fails_a_task_whose_worker_died_at_once(self) -> None:
        """allowed-failures 0: the run sees the loss (retry or fail, naming the worker) instead
        of Dask rerunning the task unseen; a run's own env setting wins."""
        allowed = kubernetes.ALLOWED_FAILURES
        spec = self.spec()["spec"]
        (scheduler,) = spec["scheduler"]["spec"]["containers"]  # type: ignore[index]
        (worker,) = spec["worker"]["spec"]["containers"]  # type: ignore[index]
        assert {"name": allowed, "value": "0"} in scheduler["env"]
        assert allowed not in {e["name"] for e in worker["env"]}
        own = self.spec(env=({"name": allowed, "value": "3"},))["spec"]
        (scheduler,) = own["scheduler"]["spec"]["containers"]  # type: ignore[index]
        assert [e for e in scheduler["env"] if e["name"] == allowed] == [
            {"name": allowed, "value": "3"}
        ]

    def test_default_image_is_used_when_spec_has_none(self) -> None:
        spec = cluster.build_cluster_spec(
            "n", owner=OWNER, options=base.ClusterOptions(), default_image="acme/base:1"
        )
        containers = spec["spec"]["worker"]["spec"]["containers"]
        assert containers[0]["image"] == "acme/base:1"

    def test_no_image_anywhere_is_refused_with_what_to_set(self) -> None:
        with pytest.raises(cluster.ClusterStartupError) as info:
            cluster.build_cluster_spec("n", owner=OWNER, options=base.ClusterOptions())
        assert info.value.reason == "ImageRequired"
        assert "spec.executor.dask.image" in info.value.message
        assert "--default-image" in info.value.message

    def test_images_are_not_pulled_when_present(self) -> None:
        spec = self.spec()["spec"]
        for part in (spec["worker"], spec["scheduler"]):  # type: ignore[index]
            assert part["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"

    def test_commands_are_those_of_the_dask_cli(self) -> None:
        spec = self.spec()["spec"]
        scheduler = spec["scheduler"]["spec"]["containers"][0]  # type: ignore[index]
        worker = spec["worker"]["spec"]["containers"][0]  # type: ignore[index]
        assert scheduler["command"][:2] == ["dask", "scheduler"]
        assert worker["command"][:2] == ["dask", "worker"]
        # No args for an image's entrypoint to prefix (empty: KubeCluster reads the key).
        assert scheduler["args"] == []
        assert "args" not in worker

    def test_scheduler_probe_gives_up_on_a_slow_answer(self) -> None:
        probe = self.spec()["spec"]["scheduler"]["spec"]["containers"][0]["readinessProbe"]  # type: ignore[index]
        assert probe["timeoutSeconds"] <= 10

    def test_scheduler_service_selects_its_pods(self) -> None:
        service = self.spec()["spec"]["scheduler"]["service"]  # type: ignore[index]
        assert service["selector"]["dask.org/cluster-name"] == "fr-x-1"
        assert {p["name"] for p in service["ports"]} == {"tcp-comm", "http-dashboard"}


class TestProviderChoice:
    @pytest.mark.parametrize(
        ("kind", "keeps"),
        [("Local", False), ("Kubernetes", True), ("External", True)],
    )
    def test_kinds(self, kind: str, keeps: bool) -> None:
        provider = cluster.provider_for(kind)
        assert provider.kind == kind
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

    def test_local_workers_share_the_process_without_a_memory_limit(self) -> None:
        """Threaded workers each compared the whole process' memory with 1/n of the machine
        and paused (forever, with many workers)."""

        async def scenario() -> None:
            local = cluster.provider_for("Local")
            handle = await local.start("fr-t-3", base.ClusterOptions(workers=4), OWNER)
            try:
                async with distributed.Client(handle.address, asynchronous=True) as client:
                    workers = (await client.scheduler.identity())["workers"].values()
                    assert len(workers) == 4
                    assert {w["memory_limit"] for w in workers} == {0}
                    assert {w["status"] for w in workers} == {"running"}
            finally:
                await local.close()

        asyncio.run(scenario())

    def test_local_start_is_bounded_by_the_startup_timeout(self) -> None:
        async def scenario() -> None:
            local = cluster.provider_for("Local")
            options = base.ClusterOptions(workers=8, startup_timeout=0.001)
            with pytest.raises(cluster.ClusterStartupError) as info:
                await local.start("fr-t-4", options, OWNER)
            assert info.value.reason == "ClusterStartupTimeout"
            assert "within 0.001s" in info.value.message

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
