"""Atomic writes: a file through a temporary file in the same folder, then os.replace; a folder through a
temporary sibling folder swapped into place (replace_folder), one writer at a time (output_lock).

A run killed mid-write leaves either the old file (folder) or the new one, never a half-written one.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from .errors import UsageError


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    created = make_parents(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{sibling_stem(path)}.", suffix=".tmp" + path.suffix[:16])
    os.close(fd)
    try:
        yield tmp
        usual_permissions(tmp, 0o666)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        remove_empty(created)
        raise


def usual_permissions(path, mode: int) -> None:
    """chmod `path` to `mode` less the process umask: what a plain open() or mkdir() would have given it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_save_figure(fig, path, **kwargs) -> None:
    """Save a matplotlib figure atomically (format from the path's suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **{"dpi": 110, **kwargs})


def atomic_save_image(image, path) -> None:
    """Save a PIL image atomically (format from the path's suffix)."""
    fmt = {"jpg": "JPEG", "jpeg": "JPEG"}.get(Path(path).suffix.lower().lstrip("."), "PNG")
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt)


def atomic_save_safetensors(tensors: dict, path, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)


# --- whole outputs: a folder replaced at once, a lock per target, refusals before any work -------------------
#
# A folder output is built in a temporary sibling .NAME.tmp-XXXX and swapped into place, so that a kill at any
# moment leaves the old complete folder or the new complete one. Two writers of one target are kept apart by
# .NAME.lock (flock: the kernel drops it when its process dies, so a killed run never blocks the next).

TMP_TAG, OLD_TAG, LOCK_TAG = ".tmp-", ".old-", ".lock"
_MAX_STEM = 200  # bytes of NAME kept in a sibling's name: the suffixes must still fit the 255-byte limit


def sibling_stem(path: Path) -> str:
    """".NAME" for the hidden siblings of `path`; a name near the 255-byte limit is shortened (plus a hash)."""
    import hashlib

    name = path.name
    if len(name.encode()) <= _MAX_STEM:
        return f".{name}"
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    return f".{name.encode()[:_MAX_STEM - 13].decode(errors='ignore')}-{digest}"


def marked_by(*patterns: str) -> Callable[[Path], bool]:
    """An `is_ours` test for replace_folder: the folder holds a file matching one of the glob patterns."""
    return lambda folder: any(next(folder.glob(p), None) is not None for p in patterns)


def check_output_folder(path, overwrite: bool, is_ours: Callable[[Path], bool] | None, what: str = "output folder") -> None:
    """Refuse a target that is a file, or a non-empty folder without `overwrite`, or (with `overwrite`) a
    non-empty folder that `is_ours` does not recognise: a user's own files are never replaced."""
    path = Path(path)
    if not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    if not path.is_dir() or (is_ours is not None and not is_ours(path)):
        raise UsageError(f"{path} exists and is not a {what}; refusing to replace it (choose another --out)")
    if not overwrite:
        raise UsageError(f"{what} {path} exists; pass --overwrite to replace it, or choose another --out")


def check_output_file(path, overwrite: bool) -> None:
    """Refuse an existing file without `overwrite`, and a folder (or anything not a file) always."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name for --out")
    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it, or choose another --out")


@contextmanager
def output_lock(path):
    """Hold .NAME.lock beside `path` for the block; a second holder fails at once with one line."""
    import fcntl

    path = Path(path)
    created = make_parents(path.parent)
    lock = path.parent / f"{sibling_stem(path)}{LOCK_TAG}"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(f"another proxt2i process is writing {path}; wait for it to finish or choose another --out") from None
        if _same_file(fd, lock):
            break
        os.close(fd)  # the previous holder unlinked the file after we opened it: lock the one that is there now
    try:
        yield
    finally:
        try:
            os.unlink(lock)  # unlinked while still held, so a waiter that opened it sees the inode change and retries
        except FileNotFoundError:
            pass
        os.close(fd)
        remove_empty(created)  # a refused or failed run leaves no new empty folders behind


def make_parents(folder: Path) -> list[Path]:
    """Create `folder` and its missing ancestors; returns the folders created, deepest first."""
    created, p = [], folder
    while not os.path.lexists(p) and p != p.parent:
        created.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def remove_empty(folders: list[Path]) -> None:
    """Remove these folders (deepest first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (the output is there) or gone
            return


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def clean_temporaries(path) -> None:
    """Remove what a killed writer of `path` left beside it (call with the lock held). A swap killed between
    its two renames leaves no `path` and the old folder as .NAME.old-*: that old, complete folder comes back."""
    import shutil

    path = Path(path)
    stem = sibling_stem(path)
    for old in sorted(path.parent.glob(f"{glob.escape(stem)}{OLD_TAG}*")):
        if not os.path.lexists(path):
            os.replace(old, path)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in path.parent.glob(f"{glob.escape(stem)}{TMP_TAG}*"):
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


@contextmanager
def replace_folder(path, *, overwrite: bool = False, is_ours: Callable[[Path], bool] | None = None,
                   what: str = "output folder"):
    """Yield a new empty temporary folder beside `path`; when the block ends normally it replaces `path` at
    once (any files of the old folder are gone: no stale outputs), on error or kill `path` is untouched.
    Refuses as check_output_folder does, and while another process writes `path` (output_lock)."""
    import shutil

    path = Path(path)  # Path("g/") is Path("g"): the folder g itself, not a sibling of it
    check_output_folder(path, overwrite, is_ours, what)
    with output_lock(path):
        clean_temporaries(path)
        check_output_folder(path, overwrite, is_ours, what)  # again: a writer may have finished meanwhile
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f"{sibling_stem(path)}{TMP_TAG}"))
        try:
            yield tmp
            usual_permissions(tmp, 0o777)  # mkdtemp makes 0700
            swap_into_place(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # the old folder after a swap, or the unfinished new one


def swap_into_place(new: Path, path: Path) -> None:
    """Put folder `new` at `path`. An existing `path` is exchanged in one step where the system can
    (renameat2 RENAME_EXCHANGE; the old folder is then at `new`), else moved to .NAME.old-* first
    (clean_temporaries brings it back after a kill between the two renames)."""
    if not os.path.lexists(path):
        os.rename(new, path)
        return
    if path.is_dir() and _exchange(new, path):
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f"{sibling_stem(path)}{OLD_TAG}"))
    os.replace(path, old)  # a folder replaces the empty placeholder folder
    os.rename(new, path)
    os.rename(old, new)  # the caller removes `new`


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux renameat2; False where the call is unavailable."""
    import ctypes
    import errno

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))
