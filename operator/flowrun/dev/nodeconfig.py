"""The node's configuration files: containerd, CNI, kubelet, kube-proxy, CoreDNS, resolv.conf.

Addresses are fixed because they exist only inside the node's own network namespace (two nodes
each have their own); nothing here is routable from, or to, the host.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

NODE_NAME = "flowrun-node"
NODE_IP = "10.250.0.2"
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.0.0.0/24"
CLUSTER_DOMAIN = "cluster.local"
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"
CNI_BIN = "/usr/lib/cni"
# The kernel flags the kubelet sets (setupKernelTunables, keys); bind-mounted files absorb them.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
)  # fmt: skip


@dataclass(frozen=True)
class NodePaths:
    """Where one node keeps its files; kept short because unix sockets live here."""

    root: Path

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd" / "config.toml"

    @property
    def containerd_sock(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def sysctl_dir(self) -> Path:
        return self.root / "sysctl"

    def file(self, name: str) -> Path:
        return self.root / name


def containerd_toml(p: NodePaths) -> str:
    c = p.root / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    # restrict_oom_score_adj: this VM lacks CAP_SYS_RESOURCE, so runc cannot set a negative score.
    return f"""version = 2
root = "{c}/root"
state = "{c}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{p.containerd_sock}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{c}/opt"
[{cri}]
  sandbox_image = "{SANDBOX_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "{c}/state/runc"
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{p.cni_conf_dir}"
    max_conf_num = 1
"""


def cni_conflist(p: NodePaths, *, network: str) -> str:
    """The network is named after the node: libcni's host-wide cache files carry that name."""
    # No masquerade: there is no uplink. hairpinMode lets a Pod reach itself through its Service.
    bridge = {
        "type": "bridge",
        "bridge": "cni0",
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "dataDir": str(p.root / "cni" / "ipam"),
            "ranges": [[{"subnet": POD_CIDR}]],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    conf = {"cniVersion": "1.0.0", "name": network, "plugins": [bridge, portmap]}
    return json.dumps(conf, indent=2) + "\n"


def kubelet_yaml(p: NodePaths, *, ca_cert: Path, cgroup_root: str) -> str:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        # containerd 1.6 has no RuntimeConfig call; the kubelet then uses this driver.
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": True,
        "cgroupRoot": cgroup_root,
        "containerRuntimeEndpoint": f"unix://{p.containerd_sock}",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        # Reachable only inside the node's namespace, and x509 proves who calls.
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [NODE_IP],
        # Never the host's resolv.conf: its nameserver is off this machine.
        "resolvConf": str(p.file("resolv.conf")),
        "podLogsDir": str(p.root / "pod-logs"),
        "staticPodPath": "",
        "failSwapOn": False,
        # Lowering OOM scores needs CAP_SYS_RESOURCE, which this kind of VM does not grant.
        "oomScoreAdj": 0,
        # Locally imported images cannot be pulled again: never collect them, never evict.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "nodefs.available": "0%",
            "nodefs.inodesFree": "0%",
            "imagefs.available": "0%",
        },
        "serializeImagePulls": False,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "syncFrequency": "5s",
        "fileCheckFrequency": "5s",
        "nodeStatusUpdateFrequency": "5s",
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_yaml(kubeconfig: Path) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "oomScoreAdj": 0,
        # nf_conntrack_max is global and read-only inside a network namespace: leave it alone.
        "conntrack": {"maxPerCore": 0},
        "iptables": {"minSyncPeriod": "1s", "localhostNodePorts": False},
    }
    return yaml.safe_dump(config, sort_keys=False)


def corefile(kubeconfig: Path) -> str:
    # The catch-all zone answers NXDOMAIN: forwarding would reach the host's off-machine resolver.
    return f"""cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {NODE_IP}
    errors
    ready 127.0.0.1:8181
    health 127.0.0.1:8080
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
    loadbalance
}}
.:53 {{
    bind {NODE_IP}
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""


def resolv_conf() -> str:
    return f"nameserver {NODE_IP}\nsearch svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\noptions ndots:5\n"
