"""A real single-node SLURM cluster on localhost, for the tests: munged, slurmctld and slurmd.

Started from Debian's `slurm-wlm` and `munge` packages with a minimal configuration written to
a temporary folder (no systemd, no cgroups: proctrack/linuxproc and task/none; no slurmdbd,
so accounting_storage/none and job states come from squeue / scontrol, kept for an hour after a
job ends by MinJobAge). Every daemon runs as the current user with its files in that folder, and
the client commands find the cluster through SLURM_CONF (see `env()`).

    cluster = LocalSlurmCluster(tmp_dir); cluster.start(); ...; cluster.stop()
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "scontrol", "scancel")


class ClusterUnavailable(RuntimeError):
    """The SLURM or munge programs are missing, or the cluster did not come up (the reason says which)."""


def missing_programs() -> list[str]:
    """The SLURM / munge programs this machine lacks (empty: a cluster can be started)."""
    found = {p: shutil.which(p) or (Path("/usr/sbin") / p).exists() for p in DAEMONS + CLIENTS}
    return [p for p, ok in found.items() if not ok]


def _program(name: str) -> str:
    path = shutil.which(name) or str(Path("/usr/sbin") / name)
    if not Path(path).exists():
        raise ClusterUnavailable(f"{name} is not installed (Debian packages slurm-wlm and munge)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurmCluster:
    def __init__(self, root: str | Path, *, cpus: int | None = None, memory_mb: int = 4000):
        self.root = Path(root)
        self.cpus = cpus or os.cpu_count() or 1
        self.memory_mb = memory_mb
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.hostname = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket.2"
        self._procs: dict[str, subprocess.Popen] = {}

    # -- configuration -----------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """What a client command (sbatch, squeue, ...) needs to reach this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        for d in ("munge", "ctld", "d", "log"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            key.chmod(0o400)
        port = _free_port()
        d_port = _free_port()
        auth = f"socket={self.munge_socket}"
        self.conf.write_text("\n".join([
            "ClusterName=cardiotest",
            f"SlurmctldHost={self.hostname}(127.0.0.1)",
            f"SlurmctldPort={port}",
            f"SlurmdPort={d_port}",
            f"SlurmUser={self.user}",
            f"SlurmdUser={self.user}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo={auth}",
            f"StateSaveLocation={self.root / 'ctld'}",
            f"SlurmdSpoolDir={self.root / 'd'}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            # no systemd and no cgroup delegation in a container: track processes by parent pid
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "ReturnToService=2",
            "MpiDefault=none",
            "MinJobAge=3600",          # finished jobs stay visible to scontrol for an hour (no sacct here)
            "KillWait=5",
            "InactiveLimit=0",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            "SchedulerParameters=sched_interval=1",
            f"NodeName={self.hostname} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
            f"PartitionName=debug Nodes={self.hostname} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))

    # -- lifecycle ---------------------------------------------------------------------
    def _start(self, name: str, cmd: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        env = {**os.environ, **self.env()}
        self._procs[name] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             env=env, start_new_session=True)
        log.close()

    def _log_tail(self, name: str, n: int = 15) -> str:
        lines = []
        for f in (self.root / "log").glob(f"{name}*"):
            lines += f.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(lines)

    def start(self, timeout: float = 60.0) -> "LocalSlurmCluster":
        self._write_config()
        m = self.root / "munge"
        self._start("munged", [_program("munged"), "--foreground", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={m / 'munge.key'}", f"--pid-file={m / 'munged.pid'}",
                               f"--log-file={m / 'munged.log'}", f"--seed-file={m / 'munged.seed'}"])
        self._wait(lambda: self.munge_socket.exists(), timeout, "munged")
        self._start("slurmctld", [_program("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: self._run("scontrol", "ping").returncode == 0
                   and "UP" in self._run("scontrol", "ping").stdout, timeout, "slurmctld")
        self._start("slurmd", [_program("slurmd"), "-D", "-f", str(self.conf), "-N", self.hostname])
        self._wait(self._node_idle, timeout, "slurmd")
        return self

    def _node_idle(self) -> bool:
        out = self._run("sinfo", "-h", "-N", "-o", "%T").stdout.strip()
        if out.startswith(("down", "drain")):
            self._run("scontrol", "update", f"NodeName={self.hostname}", "State=RESUME")
        return out.startswith(("idle", "mixed", "allocated"))

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30, env={**os.environ, **self.env()})

    def _wait(self, ready, timeout: float, name: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self._procs.get(name)
            if proc is not None and proc.poll() is not None:
                self.stop()
                raise ClusterUnavailable(f"{name} exited with code {proc.returncode}:\n{self._log_tail(name)}")
            try:
                if ready():
                    return
            except (OSError, subprocess.SubprocessError):
                pass
            time.sleep(0.3)
        self.stop()
        raise ClusterUnavailable(f"{name} not ready after {timeout:.0f} s:\n{self._log_tail(name)}")

    def stop(self) -> None:
        for name in reversed(DAEMONS):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except ProcessLookupError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
