"""Which process runs a job: worker ids "host:pid:start", and whether that process lives.

The host part is the hostname, followed by "/" and the PID namespace's inode when the
process is in one of its own (a container, `unshare --pid`): PIDs repeat from one namespace
to the next, so two containers that share a hostname (host networking) must not judge each
other's workers by PID."""

import os
import socket
from pathlib import Path


def _proc_stat(pid):
    """Return the fields of /proc/<pid>/stat from field 3 (state) on, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # field 2, the command name, may hold spaces


def process_start(pid):
    """Return the start time of process pid (clock ticks since boot), or "0" where unknown."""
    fields = _proc_stat(pid)
    return fields[19] if fields else "0"  # field 22 of proc(5)


INITIAL_PID_NAMESPACE = 0xEFFFFFFC  # the kernel's own (PROC_PID_INIT_INO)


def host_id():
    """Return the host part of this process's worker ids."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    if namespace == INITIAL_PID_NAMESPACE:
        return socket.gethostname()
    return f"{socket.gethostname()}/{namespace}"


def worker_id():
    """Return this process's worker id, "host:pid:start"."""
    pid = os.getpid()
    return f"{host_id()}:{pid}:{process_start(pid)}"


def worker_is_alive(worker):
    """Return False when worker names a process of this host that is gone (or a reused pid)."""
    parts = (worker or "").rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host_id() or not parts[1].isdigit():
        return True  # another host or a foreign id: only the heartbeat can tell
    pid, start = int(parts[1]), parts[2]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    fields = _proc_stat(pid)
    if fields is None:
        return start == "0"  # no /proc on this system, else the process just ended
    return fields[0] not in ("Z", "X") and start in ("0", fields[19])
