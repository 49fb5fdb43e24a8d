"""SSH servers side by side, driven by the real OpenSSH client on 127.0.0.1, in one run.

Run ``python3 benchmarks/bench_server.py`` (about 3 minutes; ``--quick`` about 40
seconds). Servers, each its own process: ptycore's anyio adapter on asyncio and on
trio, ptycore's Twisted adapter, a minimal AsyncSSH server, a minimal Twisted Conch
server, and OpenSSH's ``sshd`` (when installed). Every Python server runs the four
commands of ``bench_commands.py`` in process; ``sshd`` runs them through its shell.

Figures, each printed as a table with ptycore-anyio-asyncio's ratio to every server:

1. bulk: MiB/s up (``cat > /dev/null``) and down (``head -c N /dev/zero``) per
   cipher, with the server's CPU seconds per GiB (``/proc/PID/stat``; the ``ssh``
   client saturates a core, so the server's CPU is the figure that compares);
2. latency: connect, authenticate, exec ``true``, close: median, p90, and the runs
   of 40 ms or more (the delayed-ACK stall);
3. rate: connections per second with 4 clients looping ``ssh host true``;
4. memory: resident memory added per idle PTY session.

Then each goal of issue 6 with met or missed. ``--only`` picks figures and/or
servers (``--only latency --only ptycore-anyio-asyncio``); ``--json PATH`` writes
every figure. See benchmarks/README.md for what each figure covers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from subprocess import PIPE
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_commands import DISCARD, IDLE, READY, TRUE, zeros  # noqa: E402

SERVERS = (
    "ptycore-anyio-asyncio",
    "ptycore-anyio-trio",
    "ptycore-twisted",
    "asyncssh",
    "conch",
    "sshd",
)
FIGURES = ("bulk", "latency", "rate", "memory")
BASE = "ptycore-anyio-asyncio"
"""The server every ratio is computed for."""
CIPHERS = ("aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr")
"""The two ciphers of issue 6, then aes128-ctr: Twisted Conch (and so ptycore's
Twisted adapter, which uses Conch's transport) offers neither AEAD cipher."""
MACS = "hmac-sha2-256-etm@openssh.com,hmac-sha2-256"
"""For aes128-ctr: encrypt-then-MAC where the server has it, plain HMAC for Conch."""
KEX = "curve25519-sha256"
"""Every server does the same key exchange (sshd would pick sntrup761x25519)."""
STALL_MS = 40.0
"""A run this long waited for a delayed ACK (Linux's minimum delayed-ACK timer)."""
WAVE = 8
"""Idle sessions opened at once: under sshd's MaxStartups start of 10."""
TICKS = os.sysconf("SC_CLK_TCK")
SSH = "/usr/bin/ssh"
READY_TIMEOUT = 30.0
START_TIMEOUT = 30.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    size: int
    repeat: int
    runs: int
    duration: float
    clients: int
    sessions: int
    ciphers: tuple[str, ...]
    kex: str | None
    figures: tuple[str, ...]
    servers: tuple[str, ...]
    ssh: str = SSH


@dataclass(frozen=True, kw_only=True, slots=True)
class Keys:
    client: Path
    host: Path
    authorized: Path


# ----------------------------------------------------------------------- processes


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat from the state on (the name may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(_stat_fields(int(entry))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    queue = [pid]
    while queue:
        kids = children.get(queue.pop(), [])
        found += kids
        queue += kids
    return found


def _kill(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """End a process started in its own session, its group and what it left behind.

    sshd's connection processes call setsid(), so they are found by parentage and
    killed by pid.
    """
    left = descendants(process.pid)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    for pid in left:
        _kill(pid, signal.SIGKILL)


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    tree: bool
    """sshd: CPU and memory are those of its whole process tree."""

    def settle(self) -> None:
        """Wait (up to 5 s) until sshd has reaped every connection process, so their
        CPU time is in the listener's cutime and cstime."""
        deadline = time.monotonic() + 5
        while self.tree and descendants(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds of the server (sshd: with reaped children)."""
        if self.tree:
            self.settle()
        fields = _stat_fields(self.process.pid)
        ticks = int(fields[11]) + int(fields[12])
        if self.tree:
            ticks += int(fields[13]) + int(fields[14])
        return ticks / TICKS

    def memory_kib(self) -> int:
        """VmRSS of the server; for sshd, the PSS of all its sshd processes (forked
        processes share most pages, which RSS would count once per process)."""
        if not self.tree:
            return _status_kib(self.process.pid, "VmRSS:")
        total = 0
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() != "sshd":
                    continue
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


class StartError(Exception):
    """A server did not come up; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_sshd() -> str | None:
    found = shutil.which("sshd") or "/usr/sbin/sshd"
    return found if os.access(found, os.X_OK) else None


def server_command(name: str, keys: Keys, directory: Path) -> tuple[list[str], str, bool]:
    """(argv, regex of the line that gives the port, whether the process tree counts)."""
    creds = ["--host-key", str(keys.host), "--authorized-keys", str(keys.authorized)]
    serve = [sys.executable, "-m", "ptycore_cli", "serve", "--port", "0", *creds]
    listening = r"listening on 127\.0\.0\.1:(\d+)"
    peer = [str(keys.host), str(keys.authorized)]
    if name == "ptycore-anyio-asyncio":
        # asyncio's own loop even where uvloop is installed: the peers run on it too.
        loop = ["--backend", "asyncio", "--loop", "asyncio"]
        argv = [*serve, "--adapter", "anyio", *loop, "--app", "bench_app_anyio:app"]
    elif name == "ptycore-anyio-trio":
        argv = [*serve, "--adapter", "anyio", "--backend", "trio", "--app", "bench_app_anyio:app"]
    elif name == "ptycore-twisted":
        argv = [*serve, "--adapter", "twisted", "--app", "bench_app_twisted:App"]
    elif name == "asyncssh":
        argv = [sys.executable, str(HERE / "bench_peer_asyncssh.py"), *peer]
    elif name == "conch":
        argv = [sys.executable, str(HERE / "bench_peer_conch.py"), *peer]
    else:
        sshd = find_sshd()
        if sshd is None:
            raise StartError("sshd is not installed (apt-get install -y openssh-server)")
        # sshd insists on its privilege separation directory (Debian's unit creates it).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        config = directory / "sshd_config"
        config.write_text(
            f"Port {free_port()}\nListenAddress 127.0.0.1\nHostKey {keys.host}\n"
            f"AuthorizedKeysFile {keys.authorized}\nStrictModes no\nUsePAM no\n"
            "PidFile none\nPrintMotd no\nPrintLastLog no\nPermitRootLogin prohibit-password\n"
            # bash run by sshd with a socket as stdin and SHLVL below 2 reads ~/.bashrc
            # (bash's shell.c, run_startup_files, isnetconn): the user's shell setup,
            # not sshd's work (100 ms of pyenv here). SHLVL=1 makes it skip that.
            "SetEnv SHLVL=1\n"
        )
        return (
            [sshd, "-D", "-e", "-f", str(config)],
            r"Server listening on 127\.0\.0\.1 port (\d+)",
            True,
        )
    return argv, listening, False


@contextmanager
def running(name: str, keys: Keys, directory: Path, serial: int) -> Iterator[Server]:
    argv, pattern, tree = server_command(name, keys, directory)
    log = directory / f"{name}-{serial}.log"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        XDG_STATE_HOME=str(directory / "state"),
    )
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, cwd=directory,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            text = log.read_text(errors="replace")
            match = re.search(pattern, text)
            if match is not None:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise StartError(f"{name} did not start; its log ends:\n{text[-2000:]}")
            time.sleep(0.05)
        yield Server(name=name, process=process, port=int(match.group(1)), log=log, tree=tree)
    finally:
        stop_process(process)


# ----------------------------------------------------------------------------- ssh


def ssh_argv(
    server: Server, keys: Keys, settings: Settings, *options: str, log_level: str = "ERROR"
) -> list[str]:
    """``ssh`` to the server; ``log_level`` INFO lets through "no matching cipher"."""
    kex = ["-o", f"KexAlgorithms={settings.kex}"] if settings.kex else []
    return [
        settings.ssh, "-F", "/dev/null", "-p", str(server.port), "-i", str(keys.client),
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
        "-o", f"LogLevel={log_level}", "-o", "ConnectTimeout=10",
        "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3",
        *kex, *options, "127.0.0.1",
    ]  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class Run:
    status: int
    seconds: float
    error: str
    client_cpu: float
    """The ``ssh`` process's own user and system CPU seconds (from the children's
    rusage, so exact only while no other child is reaped meanwhile, as in the
    latency figure's one-at-a-time runs)."""


def run_ssh(argv: list[str], *, stdin: Path | None = None, timeout: float = 30.0) -> Run:
    """Run one ``ssh`` to completion and time it.

    No ``timeout=`` on the wait: with one, Popen polls with sleeps of up to 50 ms,
    which would land in the figure. A timer thread kills a stuck client instead.
    """
    with open(stdin or os.devnull, "rb") as source:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        try:
            _, error = process.communicate()
        finally:
            watchdog.cancel()
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Run(
        status=process.returncode,
        seconds=seconds,
        error=error.decode(errors="replace"),
        client_cpu=after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
    )


def count_output(argv: list[str], timeout: float) -> tuple[int, int, str]:
    """(exit status, bytes on standard output, standard error) of one ``ssh``."""
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        out, error = process.communicate()
    finally:
        watchdog.cancel()
    return process.returncode, len(out), error.decode(errors="replace")


# ------------------------------------------------------------------------- figures

Row = dict[str, Any]


def unsupported(error: str) -> bool:
    return "no matching cipher" in error or "no matching MAC" in error


def cipher_options(cipher: str) -> list[str]:
    return ["-c", cipher, "-m", MACS] if cipher == "aes128-ctr" else ["-c", cipher]


def warm_up(
    servers: Sequence[Server], keys: Keys, settings: Settings, small: Path, check: int
) -> dict[str, Row]:
    """One small checked transfer each way per server and cipher: every byte arrives,
    and the server offers the cipher. Returns the failures, by server and cipher."""
    rows: dict[str, Row] = {server.name: {} for server in servers}
    for cipher in settings.ciphers:
        for server in servers:
            options = cipher_options(cipher)
            verbose = ssh_argv(server, keys, settings, *options, log_level="INFO")
            status, got, error = count_output([*verbose, zeros(check)], timeout=60)
            base = ssh_argv(server, keys, settings, *options)
            if status != 0 and unsupported(error):
                rows[server.name][cipher] = "not offered"
            elif status != 0 or got != check:
                rows[server.name][cipher] = f"failed: status {status}, {got} B; {error.strip()}"
            else:
                warm = run_ssh([*base, DISCARD], stdin=small, timeout=60)
                if warm.status != 0:
                    rows[server.name][cipher] = f"upload failed: {warm.error.strip()}"
    return rows


def bulk(
    servers: Sequence[Server], keys: Keys, settings: Settings, directory: Path
) -> dict[str, Row]:
    """Median MiB/s and CPU s/GiB per cipher and direction, servers interleaved so
    that a change in the machine's load hits them all alike."""
    size = settings.size
    source = directory / "zeros"
    with open(source, "wb") as file:
        file.truncate(size)
    check = min(size, 4 << 20)
    small = directory / "zeros-check"
    with open(small, "wb") as file:
        file.truncate(check)
    rows = warm_up(servers, keys, settings, small, check)
    samples: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    timeout = 60 + size / (5 << 20)
    for _ in range(settings.repeat):
        for cipher in settings.ciphers:
            for server in servers:
                if cipher in rows[server.name]:  # not offered, or failed
                    continue
                base = ssh_argv(server, keys, settings, *cipher_options(cipher))
                for direction, command, stdin in (
                    ("up", DISCARD, source),
                    ("down", zeros(size), None),
                ):
                    before = server.cpu_seconds()
                    run = run_ssh([*base, command], stdin=stdin, timeout=timeout)
                    used = server.cpu_seconds() - before
                    if run.status != 0:
                        rows[server.name][cipher] = f"{direction} failed: {run.error.strip()}"
                        break
                    samples.setdefault((server.name, cipher, direction), []).append(
                        (size / run.seconds / (1 << 20), used * (1 << 30) / size)
                    )
    figures: dict[str, dict[str, Row]] = {}
    for (name, cipher, direction), values in samples.items():
        figures.setdefault(name, {}).setdefault(cipher, {})[direction] = {
            "mib_s": statistics.median(speed for speed, _ in values),
            "cpu_s_per_gib": statistics.median(cpu for _, cpu in values),
        }
    for name, by_cipher in figures.items():
        for cipher, row in by_cipher.items():
            rows[name].setdefault(cipher, row)  # a failure recorded later wins
    return rows


def latency(servers: Sequence[Server], keys: Keys, settings: Settings) -> dict[str, Row]:
    """``ssh host true`` from start to exit, servers interleaved run by run."""
    times: dict[str, list[float]] = {server.name: [] for server in servers}
    client_cpu: dict[str, list[float]] = {server.name: [] for server in servers}
    errors: dict[str, str] = {}
    argvs = {server.name: [*ssh_argv(server, keys, settings), TRUE] for server in servers}
    for server in servers:  # warm-up, not counted
        run_ssh(argvs[server.name])
    for _ in range(settings.runs):
        for server in servers:
            if server.name in errors:
                continue
            run = run_ssh(argvs[server.name])
            if run.status != 0:
                errors[server.name] = f"failed: status {run.status}; {run.error.strip()}"
            times[server.name].append(run.seconds * 1000)
            client_cpu[server.name].append(run.client_cpu * 1000)
    rows: dict[str, Row] = {}
    for name, values in times.items():
        if name in errors:
            rows[name] = {"error": errors[name]}
            continue
        rows[name] = {
            "runs": len(values),
            "median_ms": statistics.median(values),
            "p90_ms": _p90(values),
            "max_ms": max(values),
            "stalls": sum(1 for value in values if value >= STALL_MS),
            "client_cpu_ms": statistics.median(client_cpu[name]),
        }
    return rows


def _p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def rate(server: Server, keys: Keys, settings: Settings) -> Row:
    """Connections per second with ``settings.clients`` clients looping
    ``ssh host true`` for ``settings.duration`` seconds."""
    argv = [*ssh_argv(server, keys, settings), TRUE]
    deadline = time.perf_counter() + settings.duration

    def client(_: int) -> tuple[int, int]:
        done = failed = 0
        while time.perf_counter() < deadline:
            if run_ssh(argv).status == 0:
                done += 1
            else:
                failed += 1
        return done, failed

    cpu = server.cpu_seconds()
    start = time.perf_counter()
    with ThreadPoolExecutor(settings.clients) as pool:
        results = list(pool.map(client, range(settings.clients)))
    elapsed = time.perf_counter() - start
    cpu = server.cpu_seconds() - cpu
    done = sum(ok for ok, _ in results)
    return {
        "connections": done,
        "failed": sum(bad for _, bad in results),
        "seconds": elapsed,
        "per_second": done / elapsed,
        "server_cpu_ms_per_connection": cpu * 1000 / done if done else math.nan,
    }


def open_sessions(
    server: Server, keys: Keys, settings: Settings, count: int
) -> list[subprocess.Popen[bytes]]:
    """``count`` clients with a PTY (``ssh -tt``), each past its ``ready`` line."""
    argv = [*ssh_argv(server, keys, settings, "-tt"), IDLE]
    clients: list[subprocess.Popen[bytes]] = []
    try:
        while len(clients) < count:
            wave = [
                subprocess.Popen(argv, stdin=PIPE, stdout=PIPE, stderr=subprocess.DEVNULL)
                for _ in range(min(WAVE, count - len(clients)))
            ]
            clients += wave
            _wait_ready(wave)
    except BaseException:
        close_sessions(clients)
        raise
    return clients


def _wait_ready(wave: list[subprocess.Popen[bytes]]) -> None:
    seen = {id(client): b"" for client in wave}
    with selectors.DefaultSelector() as selector:
        for client in wave:
            if client.stdout is None:
                raise RuntimeError("no pipe")
            selector.register(client.stdout, selectors.EVENT_READ, client)
        deadline = time.monotonic() + READY_TIMEOUT
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("sessions not ready in time")
            for key, _ in selector.select(left):
                client = key.data
                chunk = os.read(key.fd, 4096)
                if not chunk:
                    raise RuntimeError(f"session ended before ready (status {client.poll()})")
                seen[id(client)] += chunk
                if READY.strip() in seen[id(client)]:
                    selector.unregister(key.fileobj)


def close_sessions(clients: list[subprocess.Popen[bytes]]) -> None:
    for client in clients:
        _kill(client.pid, signal.SIGTERM)
    for client in clients:
        try:
            client.wait(timeout=10)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait(timeout=10)
        for pipe in (client.stdin, client.stdout):
            if pipe is not None:
                pipe.close()


def memory(server: Server, keys: Keys, settings: Settings) -> Row:
    """KiB added per idle PTY session on a fresh server, after a warm-up wave."""
    close_sessions(open_sessions(server, keys, settings, min(WAVE, settings.sessions)))
    time.sleep(0.5)
    server.settle()
    before = server.memory_kib()
    clients = open_sessions(server, keys, settings, settings.sessions)
    try:
        time.sleep(1.0)  # allocations made right after the ready line
        after = server.memory_kib()
    finally:
        close_sessions(clients)
    return {
        "sessions": settings.sessions,
        "before_kib": before,
        "after_kib": after,
        "kib_per_session": (after - before) / settings.sessions,
    }


# -------------------------------------------------------------------------- report


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def ratio(mine: float | None, theirs: float | None) -> str:
    if mine is None or theirs is None or theirs == 0 or math.isnan(mine) or math.isnan(theirs):
        return "-"
    return f"{mine / theirs:.2f}"


def _get(results: dict[str, Any], *path: str) -> Any:
    found: Any = results
    for key in path:
        if not isinstance(found, dict) or key not in found:
            return None
        found = found[key]
    return found


def report(results: dict[str, Any], settings: Settings) -> str:
    data = results["servers"]
    servers = [name for name in settings.servers if name in data]
    out: list[str] = []
    for figure, render in (
        ("bulk", report_bulk),
        ("latency", report_latency),
        ("rate", report_rate),
        ("memory", report_memory),
    ):
        if figure in settings.figures:
            out += [render(data, servers, settings), ""]
    goals = check_goals(data, settings)
    if goals:
        out.append("Goals of issue 6 for ptycore-anyio (asyncio, and trio within 25%):")
        out += [f"- [{'met' if met else 'MISSED'}] {text}" for met, text in goals]
    return "\n".join(out)


def _error_row(cell: Any, name: str, width: int) -> list[str] | None:
    """The row of a server whose figure failed, or None if it has one."""
    if isinstance(cell, dict) and "error" not in cell:
        return None
    text = str(cell.get("error") if isinstance(cell, dict) else cell or "-")[:60]
    return [name, text] + [""] * (width - 2)


def report_bulk(data: dict[str, Any], servers: list[str], settings: Settings) -> str:
    title = (
        f"Figure 1: bulk, {settings.size / (1 << 20):g} MiB per transfer, median of "
        f"{settings.repeat}. MiB/s: higher is better; server CPU s/GiB: lower is better. "
        f"ratio = {BASE} / server."
    )
    headers = ["cipher", "server", "up MiB/s", "up CPU s/GiB", "down MiB/s", "down CPU s/GiB",
               "ratio up", "ratio up CPU", "ratio down", "ratio down CPU"]  # fmt: skip
    keys = [(d, k) for d in ("up", "down") for k in ("mib_s", "cpu_s_per_gib")]
    rows = []
    for cipher in settings.ciphers:
        for name in servers:
            cell = _get(data, name, "bulk", cipher)
            failed = _error_row(cell, name, len(headers) - 1)
            if failed is not None:
                rows.append([cipher, *failed])
                continue
            values = [_get(cell, d, k) for d, k in keys]
            mine = [_get(data, BASE, "bulk", cipher, d, k) for d, k in keys]
            ratios = (
                ["-"] * 4
                if name == BASE
                else [ratio(m, v) for m, v in zip(mine, values, strict=True)]
            )
            rows.append([cipher, name, number(values[0]), number(values[1], 2),
                         number(values[2]), number(values[3], 2), *ratios])  # fmt: skip
    return title + "\n" + table(headers, rows)


def _server_rows(
    data: dict[str, Any],
    servers: list[str],
    headers: list[str],
    *,
    figure: str,
    compared: str,
    cells: Callable[[dict[str, Any]], list[str]],
) -> list[list[str]]:
    """A row per server: its name, ``cells`` of its figure, and the ratio of the
    ``compared`` value of BASE to its own (or why the server has no figure)."""
    mine = _get(data, BASE, figure, compared)
    rows = []
    for name in servers:
        cell = _get(data, name, figure)
        failed = _error_row(cell, name, len(headers))
        if failed is not None:
            rows.append(failed)
            continue
        theirs = "-" if name == BASE else ratio(mine, cell[compared])
        rows.append([name, *cells(cell), theirs])
    return rows


def report_latency(data: dict[str, Any], servers: list[str], settings: Settings) -> str:
    title = (
        f"Figure 2: ssh host true (connect, authenticate, exec, close), {settings.runs} runs "
        f"each, servers interleaved. ms: lower is better. ratio = {BASE} / server."
    )
    headers = [
        "server",
        "median ms",
        "p90 ms",
        "max ms",
        "runs >= 40 ms",
        "ssh CPU ms",
        "ratio median",
    ]
    rows = _server_rows(
        data,
        servers,
        headers,
        figure="latency",
        compared="median_ms",
        cells=lambda cell: [
            number(cell["median_ms"]),
            number(cell["p90_ms"]),
            number(cell["max_ms"]),
            f"{cell['stalls']}/{cell['runs']}",
            number(cell["client_cpu_ms"]),
        ],
    )
    note = (
        "ssh CPU ms: the median user+system CPU of the ssh client itself per run, "
        "a floor that no server goes under."
    )
    return title + "\n" + table(headers, rows) + "\n" + note


def report_rate(data: dict[str, Any], servers: list[str], settings: Settings) -> str:
    title = (
        f"Figure 3: connections per second, {settings.clients} clients looping "
        f"ssh host true for {settings.duration:g} s. conn/s: higher is better; server CPU "
        f"ms per connection: lower is better. ratio = {BASE} / server (conn/s)."
    )
    headers = ["server", "conn/s", "connections", "failed", "server CPU ms/conn", "ratio"]
    rows = _server_rows(
        data,
        servers,
        headers,
        figure="rate",
        compared="per_second",
        cells=lambda cell: [
            number(cell["per_second"]),
            str(cell["connections"]),
            str(cell["failed"]),
            number(cell["server_cpu_ms_per_connection"]),
        ],
    )
    return title + "\n" + table(headers, rows)


def report_memory(data: dict[str, Any], servers: list[str], settings: Settings) -> str:
    title = (
        f"Figure 4: memory per idle PTY session ({settings.sessions} ssh -tt sessions on a "
        f"fresh server). KiB: lower is better. ratio = {BASE} / server. sshd: PSS of its "
        "sshd processes; the others: the server's RSS."
    )
    headers = ["server", "KiB/session", "before MiB", "after MiB", "ratio"]
    rows = _server_rows(
        data,
        servers,
        headers,
        figure="memory",
        compared="kib_per_session",
        cells=lambda cell: [
            number(cell["kib_per_session"]),
            number(cell["before_kib"] / 1024),
            number(cell["after_kib"] / 1024),
        ],
    )
    return title + "\n" + table(headers, rows)


def check_goals(data: dict[str, Any], settings: Settings) -> list[tuple[bool, str]]:
    goals: list[tuple[bool, str]] = []

    def value(name: str, *path: str) -> float | None:
        found = _get(data, name, *path)
        return float(found) if isinstance(found, int | float) else None

    if "bulk" in settings.figures:
        for cipher in ("aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"):
            for direction in ("up", "down"):
                mine = value(BASE, "bulk", cipher, direction, "mib_s")
                theirs = value("asyncssh", "bulk", cipher, direction, "mib_s")
                cpu = value(BASE, "bulk", cipher, direction, "cpu_s_per_gib")
                their_cpu = value("asyncssh", "bulk", cipher, direction, "cpu_s_per_gib")
                if mine is None or theirs is None or cpu is None or their_cpu is None:
                    continue
                goals.append((
                    mine >= theirs and cpu <= 0.8 * their_cpu,
                    f"bulk {cipher.split('@')[0]} {direction}: {mine:.0f} MiB/s vs AsyncSSH "
                    f"{theirs:.0f} ({mine / theirs:.2f}x, goal >= 1), CPU {cpu:.2f} vs "
                    f"{their_cpu:.2f} s/GiB ({cpu / their_cpu:.0%}, goal <= 80%)",
                ))  # fmt: skip
    median = value(BASE, "latency", "median_ms")
    stalls = value(BASE, "latency", "stalls")
    if median is not None and stalls is not None:
        goals.append((
            median <= 10 and stalls == 0,
            f"ssh host true: median {median:.1f} ms (goal <= 10), runs >= 40 ms: "
            f"{stalls:.0f} (goal 0)",
        ))  # fmt: skip
    mine_rate, their_rate = (
        value(BASE, "rate", "per_second"),
        value("asyncssh", "rate", "per_second"),
    )
    if mine_rate is not None and their_rate is not None:
        goals.append((
            mine_rate >= 4 * their_rate,
            f"connections/s with {settings.clients} clients: {mine_rate:.1f} vs AsyncSSH "
            f"{their_rate:.1f} ({mine_rate / their_rate:.2f}x, goal >= 4x)",
        ))  # fmt: skip
    mine_mem, conch_mem = (
        value(BASE, "memory", "kib_per_session"),
        value("conch", "memory", "kib_per_session"),
    )
    if mine_mem is not None and conch_mem is not None:
        goals.append((
            mine_mem < conch_mem,
            f"memory per idle PTY session: {mine_mem:.1f} KiB vs Conch {conch_mem:.1f} "
            "(goal: below Conch's)",
        ))  # fmt: skip
    goals += trio_goals(data)
    return goals


def trio_goals(data: dict[str, Any]) -> list[tuple[bool, str]]:
    """trio within 25% of asyncio on every figure, in the direction that is worse."""
    pairs: list[tuple[str, tuple[str, ...], bool]] = [
        (f"bulk {c.split('@')[0]} {d} {k}", ("bulk", c, d, k), k == "mib_s")
        for c in CIPHERS
        for d in ("up", "down")
        for k in ("mib_s", "cpu_s_per_gib")
    ]
    pairs += [
        ("latency median", ("latency", "median_ms"), False),
        ("connections/s", ("rate", "per_second"), True),
        ("memory per session", ("memory", "kib_per_session"), False),
    ]
    worst: tuple[float, str] | None = None
    checked = 0
    for label, path, higher_better in pairs:
        asyncio_value = _get(data, BASE, *path)
        trio_value = _get(data, "ptycore-anyio-trio", *path)
        if not isinstance(asyncio_value, int | float) or not isinstance(trio_value, int | float):
            continue
        if asyncio_value <= 0 or trio_value <= 0:
            continue
        checked += 1
        off = asyncio_value / trio_value if higher_better else trio_value / asyncio_value
        if worst is None or off > worst[0]:
            worst = (off, label)
    if worst is None:
        return []
    return [(
        worst[0] <= 1.25,
        f"trio vs asyncio on {checked} figures: worst is {worst[1]}, trio "
        f"{(worst[0] - 1):+.0%} worse (goal within 25%)",
    )]  # fmt: skip


# ---------------------------------------------------------------------------- main


def make_keys(directory: Path) -> Keys:
    for name in ("client", "host"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"bench-{name}",
             "-f", str(directory / name)],
            check=True, timeout=30,
        )  # fmt: skip
    authorized = directory / "authorized_keys"
    shutil.copy(directory / "client.pub", authorized)
    return Keys(client=directory / "client", host=directory / "host", authorized=authorized)


def machine(ssh: str) -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    openssh = subprocess.run([ssh, "-V"], capture_output=True, text=True, timeout=10, check=False)
    versions = {
        name: version(name) for name in ("ptycore", "anyio", "trio", "twisted", "asyncssh")
    }
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "openssh": openssh.stderr.strip(),
        **versions,
    }


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]i?B?)?", text.strip(), re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: a byte count such as 64M")
    unit = (match.group(2) or "")[:1].upper()
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[unit]


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small figures, under a minute")
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME",
        help=f"a figure ({', '.join(FIGURES)}) or server ({', '.join(SERVERS)}); repeatable, "
        "or comma-separated",
    )  # fmt: skip
    parser.add_argument(
        "--bytes", type=parse_size, help="bytes per bulk transfer (256M; quick 16M)"
    )
    parser.add_argument("--repeat", type=int, help="bulk transfers per cipher and direction (3)")
    parser.add_argument("--runs", type=int, help="latency runs per server (30; quick 10)")
    parser.add_argument("--duration", type=float, help="seconds of the rate figure (5; quick 1.5)")
    parser.add_argument("--clients", type=int, default=4, help="parallel clients for rate (4)")
    parser.add_argument("--sessions", type=int, help="idle PTY sessions (100; quick 16)")
    parser.add_argument(
        "--cipher", action="append", metavar="NAME",
        help=f"bulk cipher, repeatable (default: {', '.join(CIPHERS)})",
    )  # fmt: skip
    parser.add_argument(
        "--kex", default=KEX,
        help=f"key exchange every client asks for ({KEX}); 'default' for ssh's own list",
    )  # fmt: skip
    parser.add_argument(
        "--ssh", default=SSH, metavar="PATH",
        help=f"the OpenSSH client to drive ({SSH}); OpenSSH 10 picks ML-KEM with --kex default",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    options = parser.parse_args(argv)
    names = [part for item in options.only for part in item.split(",") if part]
    for name in names:
        if name not in FIGURES and name not in SERVERS:
            parser.error(f"--only {name}: not a figure ({FIGURES}) or server ({SERVERS})")
    quick = options.quick
    settings = Settings(
        size=options.bytes or ((16 if quick else 256) << 20),
        repeat=options.repeat or (1 if quick else 3),
        runs=options.runs or (10 if quick else 30),
        duration=options.duration or (1.5 if quick else 5.0),
        clients=options.clients,
        sessions=options.sessions or (16 if quick else 100),
        ciphers=tuple(options.cipher or CIPHERS),
        kex=None if options.kex == "default" else options.kex,
        figures=tuple(n for n in FIGURES if n in names) or FIGURES,
        servers=tuple(n for n in SERVERS if n in names) or SERVERS,
        ssh=options.ssh,
    )
    return settings, options


def measure(
    settings: Settings,
    keys: Keys,
    directory: Path,
    results: dict[str, Any],
    log: Callable[[str], None],
) -> None:
    data: dict[str, dict[str, Any]] = results["servers"]
    skipped: dict[str, str] = results["skipped"]
    if {"bulk", "latency", "rate"} & set(settings.figures):
        with ExitStack() as stack:
            servers: list[Server] = []
            for name in settings.servers:
                try:
                    servers.append(stack.enter_context(running(name, keys, directory, 0)))
                except StartError as error:
                    skipped[name] = str(error)
                    log(f"{name}: skipped: {str(error).splitlines()[0]}")
            measure_running(servers, settings, keys=keys, directory=directory, data=data, log=log)
    if "memory" in settings.figures:
        for name in settings.servers:
            if name in skipped:
                continue
            log(f"memory: {name} ...")
            try:
                with running(name, keys, directory, 1) as server:
                    data.setdefault(name, {})["memory"] = memory(server, keys, settings)
            except StartError as error:
                skipped[name] = str(error)
            except RuntimeError as error:
                data.setdefault(name, {})["memory"] = {"error": str(error)}


def measure_running(
    servers: list[Server],
    settings: Settings,
    *,
    keys: Keys,
    directory: Path,
    data: dict[str, dict[str, Any]],
    log: Callable[[str], None],
) -> None:
    """Figures 1 to 3, on servers that all run at once (idle but for the one measured)."""
    for server in servers:
        data[server.name] = {}
    if not servers:
        return
    if "bulk" in settings.figures:
        log("bulk ...")
        for name, row in bulk(servers, keys, settings, directory).items():
            data[name]["bulk"] = row
    if "latency" in settings.figures:
        log("latency ...")
        for name, row in latency(servers, keys, settings).items():
            data[name]["latency"] = row
    if "rate" in settings.figures:
        for server in servers:
            log(f"rate: {server.name} ...")
            data[server.name]["rate"] = rate(server, keys, settings)


def main(argv: Sequence[str] | None = None) -> int:
    settings, options = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    results: dict[str, Any] = {
        "machine": machine(settings.ssh),
        "settings": asdict(settings),
        "servers": {},
        "skipped": {},
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-server-") as temporary:
        directory = Path(temporary)
        keys = make_keys(directory)
        measure(settings, keys, directory, results, log)
    info = results["machine"]
    print(
        f"{info['date']}; {info['cpus']} CPUs ({info['cpu']}); Python {info['python']}; "
        f"{info['openssh']}; ptycore {info['ptycore']}, anyio {info['anyio']}, trio "
        f"{info['trio']}, Twisted {info['twisted']}, AsyncSSH {info['asyncssh']}; kex "
        f"{settings.kex or 'ssh default'}, ed25519 keys; {time.monotonic() - started:.0f} s"
    )
    for name, reason in results["skipped"].items():
        print(f"{name}: skipped: {reason.splitlines()[0]}")
    print()
    print(report(results, settings))
    if options.json is not None:
        options.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
