"""deploy/k8s/agent-daemonset.yaml cannot run here (no cluster): the
ConfigMap's config passes sluice-agent --check and the DaemonSet mounts,
ports, probes and limits agree with it."""

import os

import pytest

from conftest import AGENT, SOURCE, check, host_port

yaml = pytest.importorskip("yaml")

DEPLOY = os.path.join(SOURCE, "deploy")


@pytest.fixture(scope="module")
def k8s():
    with open(os.path.join(DEPLOY, "k8s", "agent-daemonset.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return {d["kind"]: d for d in docs}


def test_k8s_daemonset(k8s, tmp_path):
    assert {"ServiceAccount", "ConfigMap", "DaemonSet"} <= set(k8s)
    ds = k8s["DaemonSet"]
    pod = ds["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == k8s["ServiceAccount"]["metadata"][
        "name"]
    ns = {d["metadata"].get("namespace") for d in k8s.values()
          if d["kind"] != "Namespace"}
    assert len(ns) == 1
    (c,) = pod["containers"]
    args = c.get("command", []) + c.get("args", [])
    assert args[0] == "sluice-agent"
    cfg_path = args[args.index("-c") + 1]

    vols = {v["name"]: v for v in pod["volumes"]}
    mnt = {m["mountPath"]: m for m in c["volumeMounts"]}
    cfg_mount = mnt[os.path.dirname(cfg_path)]
    cm = vols[cfg_mount["name"]]["configMap"]
    assert cm["name"] == k8s["ConfigMap"]["metadata"]["name"]
    text = k8s["ConfigMap"]["data"][os.path.basename(cfg_path)]

    # --check on the ConfigMap's config, with the container's env (values
    # from the downward API get a stand-in).
    env = {}
    for e in c.get("env", []):
        env[e["name"]] = e.get("value", "node-1")
    p = tmp_path / "agent.yml"
    p.write_text(text)
    check(AGENT, str(p), env, tmp_path)

    cfg = yaml.safe_load(text)
    # Registry on the node: data_dir is a hostPath mount, writable.
    state = mnt[cfg["data_dir"]]
    assert not state.get("readOnly")
    assert "hostPath" in vols[state["name"]]
    # Container logs, CRI format, under a read-only hostPath mount.
    (inp,) = cfg["inputs"]
    assert inp["parser"] == "cri"
    assert inp["paths"] == ["/var/log/containers/*.log"]
    logs = mnt["/var/log"]
    assert logs["readOnly"] and vols[logs["name"]]["hostPath"]["path"] == \
        "/var/log"
    # Probes and port agree with http.listen, which must not be loopback.
    host, port = host_port(cfg["http"]["listen"])
    assert host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert ports[c[probe]["httpGet"]["port"]] == port
    # Bounded, locked down, drained before the kill.
    assert c["resources"]["limits"]["memory"]
    assert c["resources"]["limits"]["cpu"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"].get("add", [])) <= {"DAC_READ_SEARCH"}
    assert pod["terminationGracePeriodSeconds"] > int(
        cfg["shutdown_timeout"].rstrip("s"))
