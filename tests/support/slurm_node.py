"""A real single-node SLURM cluster (Debian's slurm-wlm and munge), started and stopped by tests.

`SingleNodeSlurm` writes /etc/slurm/slurm.conf (the `srun` that the executor plugin runs inside
a job finds no configuration through SLURM_CONF alone), starts munged, slurmctld and slurmd with
their state, spool, pid and log files in a temporary directory, and on exit stops every daemon
it started by pid and restores whatever /etc/slurm and /dev held before.

The node advertises two GPUs backed by `mknod` character devices, so a job that asks for a GPU
is scheduled and carries `--gpus` although no GPU exists; the job itself then runs on the CPU.

Run it by hand with `python -m tests.support.slurm_node` to get a cluster until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
GRES_CONF = Path("/etc/slurm/gres.conf")
FAKE_GPUS = [Path("/dev/nvidia0"), Path("/dev/nvidia1")]
NVIDIA_MAJOR = 195  # the character-device major number of NVIDIA GPUs
DAEMONS = ("munged", "slurmctld", "slurmd")
PACKAGES = "slurm-wlm slurmd slurmctld slurm-client munge"


class SlurmUnavailable(RuntimeError):
    """This machine cannot run a single-node SLURM (not root, or the packages are missing)."""


def missing_requirements() -> str | None:
    """Why a single-node SLURM cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "starting slurmctld, slurmd and munged needs root"
    absent = [name for name in (*DAEMONS, "sbatch", "squeue", "sinfo") if not shutil.which(name)]
    if absent:
        return f"{', '.join(absent)} not found: apt-get install {PACKAGES}"
    if not Path("/etc/munge/munge.key").exists():
        return "/etc/munge/munge.key not found (the munge package creates it)"
    return None


def _machine() -> tuple[int, int]:
    """CPU count and memory in MB of this machine, as slurmd reports them."""
    done = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True)
    fields = dict(item.split("=", 1) for item in done.stdout.split() if "=" in item)
    return int(fields["CPUs"]), int(fields["RealMemory"])


def slurm_conf(state_dir: Path, node: str, cpus: int, memory_mb: int, gpus: int) -> str:
    """The slurm.conf of one node that is also the controller; no accounting database."""
    return "\n".join(
        [
            "ClusterName=curriculab-ci",
            f"SlurmctldHost={node}(127.0.0.1)",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "ReturnToService=2",
            "MinJobAge=600",  # finished jobs stay visible to squeue, which the executor polls
            f"StateSaveLocation={state_dir / 'state'}",
            f"SlurmdSpoolDir={state_dir / 'spool'}",
            f"SlurmctldPidFile={state_dir / 'slurmctld.pid'}",
            f"SlurmdPidFile={state_dir / 'slurmd.pid'}",
            f"SlurmctldLogFile={state_dir / 'slurmctld.log'}",
            f"SlurmdLogFile={state_dir / 'slurmd.log'}",
            "GresTypes=gpu",
            f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} "
            f"Gres=gpu:{gpus} State=UNKNOWN",
            f"PartitionName=ci Nodes={node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


class SingleNodeSlurm:
    """Context manager: a running single-node SLURM whose node has two fake GPUs."""

    def __init__(self) -> None:
        self.node = socket.gethostname().split(".")[0]
        self.state_dir = Path(tempfile.mkdtemp(prefix="curriculab-slurm-"))
        self._saved: dict[Path, bytes | None] = {}
        self._made_devices: list[Path] = []
        self._made_munge_dir = False
        self._pid_files = {
            "munged": Path("/run/munge/munged.pid"),
            "slurmctld": self.state_dir / "slurmctld.pid",
            "slurmd": self.state_dir / "slurmd.pid",
        }
        self.pids: dict[str, int] = {}

    def __enter__(self) -> SingleNodeSlurm:
        reason = missing_requirements()
        if reason:
            raise SlurmUnavailable(reason)
        try:
            self._write_config()
            self._start_munge()
            self._start("slurmctld", ["slurmctld"])
            self._start("slurmd", ["slurmd"])
            self._wait_until_idle()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- setup --------------------------------------------------------------------------

    def _replace(self, path: Path, text: str) -> None:
        """Write `path`, remembering what was there so that stop() can put it back."""
        if path not in self._saved:
            self._saved[path] = path.read_bytes() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def _write_config(self) -> None:
        (self.state_dir / "state").mkdir()
        (self.state_dir / "spool").mkdir()
        cpus, memory_mb = _machine()
        for index, device in enumerate(FAKE_GPUS):
            if not device.exists():
                os.mknod(device, 0o666 | 0o020000, os.makedev(NVIDIA_MAJOR, index))
                self._made_devices.append(device)
        last = len(FAKE_GPUS) - 1
        self._replace(GRES_CONF, f"NodeName={self.node} Name=gpu File=/dev/nvidia[0-{last}]\n")
        self._replace(
            SLURM_CONF, slurm_conf(self.state_dir, self.node, cpus, memory_mb, len(FAKE_GPUS))
        )

    def _start_munge(self) -> None:
        run_dir = Path("/run/munge")
        if not run_dir.exists():
            run_dir.mkdir(parents=True)
            self._made_munge_dir = True
        shutil.chown(run_dir, "munge", "munge")
        if self._alive_from_pid_file("munged"):
            return  # a munged that we did not start: use it, leave it running
        self._start("munged", ["runuser", "-u", "munge", "--", "munged"])

    def _start(self, name: str, command: list[str]) -> None:
        """Start a self-daemonising daemon and record its pid from its pid file."""
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SlurmUnavailable(f"{name} failed to start: {done.stderr.strip()[-500:]}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pid = self._alive_from_pid_file(name)
            if pid:
                self.pids[name] = pid
                return
            time.sleep(0.2)
        raise SlurmUnavailable(f"{name} wrote no pid file: {self.log_tail(name)}")

    def _alive_from_pid_file(self, name: str) -> int | None:
        try:
            pid = int(self._pid_files[name].read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if is_running(pid) else None

    def _wait_until_idle(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            done = subprocess.run(
                ["sinfo", "--noheader", "--nodes", self.node, "--format", "%t"],
                capture_output=True,
                text=True,
                check=False,
            )
            state = done.stdout.strip() or done.stderr.strip()
            if done.returncode == 0 and state == "idle":
                return
            time.sleep(0.5)
        raise SlurmUnavailable(
            f"node {self.node} not idle after {timeout_s:.0f} s (last state: {state!r}); "
            f"slurmctld: {self.log_tail('slurmctld')}; slurmd: {self.log_tail('slurmd')}"
        )

    # -- teardown -----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every daemon this object started (by pid), then restore files and devices."""
        for name in reversed(DAEMONS):
            pid = self.pids.pop(name, None)
            if pid is not None:
                _terminate(pid)
        for path, content in self._saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)
        self._saved.clear()
        for device in self._made_devices:
            device.unlink(missing_ok=True)
        self._made_devices.clear()
        if self._made_munge_dir:
            shutil.rmtree("/run/munge", ignore_errors=True)
            self._made_munge_dir = False

    def log_tail(self, name: str, chars: int = 1500) -> str:
        path = self.state_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def is_running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie that nobody has reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _terminate(pid: int, timeout_s: float = 15) -> None:
    """SIGTERM, then SIGKILL if the process is still there after `timeout_s`."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_running(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with SingleNodeSlurm() as cluster:
        print(f"SLURM running on node {cluster.node}; state in {cluster.state_dir}; Ctrl-C stops")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    sys.exit(0)
