"""Files replaced whole: written beside their place, synced, renamed over it, the folder
synced, all through a descriptor of the folder (disk.open_folder)."""

import contextlib
import os
import uuid


def replace_file(folder, filename, data):
    """Put data (bytes) in the folder (fd) as filename, atomically and durably: a reader
    sees the old file or the new one whole, and a crash after the return keeps the new."""
    tmp = f".tmp-{uuid.uuid4().hex}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=folder)
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filename, src_dir_fd=folder, dst_dir_fd=folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=folder)
    os.fsync(folder)
