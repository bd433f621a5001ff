"""Finding the labelled files of a corpus: label folders (symbolic links followed once, loops
reported), CSV manifests (paths kept inside the corpus unless allowed), and the MIDI files of the
folders and globs given to `score`, and whether a file may be read at all (devices, FIFOs and
oversized files are refused by their metadata). Nothing here parses MIDI.
"""

from __future__ import annotations

import csv
import errno
import os
from dataclasses import dataclass
from pathlib import Path

from ganmusic.errors import GanmusicError

MIDI_SUFFIXES = (".mid", ".midi", ".kar")

MAX_FILE_BYTES = 16 * 1024 * 1024  # MIDI files are kilobytes; anything this big is not one


def file_problem(path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Why `path` cannot be read as a MIDI file without opening it ("" when it can): missing,
    not a regular file (a device, a FIFO, a folder: reading those hangs or never ends) or too big."""
    import stat

    try:
        st = os.stat(path)
    except ValueError:  # an embedded NUL byte
        return "not a valid file name"
    except OSError as exc:
        return f"cannot read file ({exc.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > max_bytes:
        return f"file too large ({st.st_size / 2**20:.1f} MiB > {max_bytes / 2**20:.0f} MiB)"
    return ""


def read_file_bytes(path, max_bytes: int = MAX_FILE_BYTES) -> tuple[bytes | None, str]:
    """The bytes of a regular file no bigger than `max_bytes`, or `(None, reason)`."""
    problem = file_problem(path, max_bytes)
    if problem:
        return None, problem
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        return None, f"cannot read file ({exc.strerror})"
    if len(data) > max_bytes:  # it grew since the check
        return None, f"file too large (> {max_bytes / 2**20:.0f} MiB)"
    return data, ""


class CorpusError(GanmusicError):
    """A corpus that cannot be used at all (missing folder, wrong layout), with a one-line reason."""


@dataclass(frozen=True)
class Entry:
    path: Path
    label: str
    group: str  # "" when unknown: the file is its own group
    problem: str = ""  # why the entry cannot be used (it is skipped with this reason)

def is_midi(path: Path) -> bool:
    return path.suffix.lower() in MIDI_SUFFIXES

def midi_files(folder: str | Path) -> list[Path]:
    """The MIDI files under a folder, recursively, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_midi(p))

def expand_paths(items: list[str | Path]) -> list[str]:
    """Files, folders (their MIDI files, recursively) and globs, in the order given; a missing
    file stays in the list, so that it becomes an error row rather than vanishing."""
    import glob

    out = []
    for item in map(str, items):
        path = Path(item)
        if path.is_dir():
            out += [str(p) for p in midi_files(path)]
        elif not path.exists() and any(ch in item for ch in "*?["):
            out += sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            out.append(item)
    return out

def find_entries(source: str | Path, allow_outside: bool = False) -> tuple[Path, list[Entry]]:
    """The labelled files of a corpus as `(root, entries)`; raises `CorpusError` on bad layouts.
    Entries that cannot be used carry a `problem` (they are reported, not silently dropped)."""
    source = Path(source)
    if not source.exists():
        raise CorpusError(f"{source}: no such file or folder")
    if source.is_file():
        if source.suffix.lower() != ".csv":
            raise CorpusError(f"{source}: a corpus is a folder of label subfolders or a .csv manifest")
        return source.parent, read_manifest(source, allow_outside)
    if (source / "manifest.csv").is_file():
        return source, read_manifest(source / "manifest.csv", allow_outside)
    entries = []
    root_real = source.resolve()
    try:
        subs = sorted(p for p in source.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise CorpusError(f"{source}: cannot list the folder ({exc.strerror})") from None
    for sub in subs:
        if not sub.is_dir():
            if sub.is_symlink() and not sub.exists():
                entries.append(Entry(sub, "", "", link_problem(sub)))
            continue
        target = sub.resolve()
        if target == root_real or root_real.is_relative_to(target):
            entries.append(Entry(sub, "", "", "a link to the corpus folder (or above it), not a label folder"))
            continue
        entries += walk_label_folder(sub, root_real)
    if not any(not e.problem for e in entries):
        raise CorpusError(
            f"{source}: expected one subfolder of MIDI files per label (e.g. jazz/, not_jazz/) "
            "or a manifest.csv with path,label[,group]"
            + (f" ({entries[0].path.name}: {entries[0].problem})" if entries else ""))
    return source, entries

def link_problem(path: Path) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        return "broken symbolic link" if path.is_symlink() else f"cannot read ({exc.strerror})"
    return ""

def walk_label_folder(folder: Path, root_real: Path) -> list[Entry]:
    """MIDI files under one label folder, following symbolic links once: a link back to a
    folder already on the way down (a loop) or to the corpus root is reported, not followed."""
    label = folder.name
    entries: list[Entry] = []

    def visit(directory: Path, seen: tuple[Path, ...]):
        try:
            children = sorted(directory.iterdir())
        except OSError as exc:
            entries.append(Entry(directory, label, "", f"cannot list folder ({exc.strerror})"))
            return
        for child in children:
            if child.is_symlink() and not child.exists():
                problem = link_problem(child)
                if problem:
                    entries.append(Entry(child, label, "", problem))
                continue
            if child.is_dir():
                target = child.resolve()
                if target in seen or target == root_real:
                    entries.append(Entry(child, label, "", f"symbolic link loop (leads back to {target.name or target})"))
                else:
                    visit(child, seen + (target,))
            elif is_midi(child):
                entries.append(Entry(child, label, "", "" if child.is_file() else "not a regular file"))

    visit(folder, (root_real, folder.resolve()))
    return entries

def read_manifest(manifest: Path, allow_outside: bool = False) -> list[Entry]:
    """Rows of `path,label[,group]`. A row without a usable path or label, or whose path leaves
    the manifest's folder (unless `allow_outside`), becomes an entry with a problem."""
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM is not part of "path"
            reader = csv.DictReader(f)
            rows = [(reader.line_num, r) for r in reader]
            fields = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        msg = getattr(exc, "strerror", None) or str(exc)
        raise CorpusError(f"{manifest}: cannot read manifest ({msg})") from None
    fields = [str(c).strip() for c in fields]
    if not rows or not {"path", "label"} <= set(fields):
        raise CorpusError(f"{manifest}: a manifest needs the columns path,label[,group]")
    group_col = "group" if "group" in fields else "performer" if "performer" in fields else None
    root = manifest.parent
    root_abs = Path(os.path.abspath(root))
    entries = []
    for line, raw in rows:
        r = {str(k).strip(): v for k, v in raw.items() if k is not None}
        path, label = r.get("path"), r.get("label")
        if not (path or "").strip() and not (label or "").strip():
            continue  # a blank row
        where = f"manifest line {line}"
        group = ((r.get(group_col) or "").strip() if group_col else "")
        shown = Path((path or "").replace("\0", "\\0"))
        if not (path or "").strip():
            entries.append(Entry(root / f"<{where}>", "", "", f"{where}: no path"))
        elif "\0" in path:
            entries.append(Entry(root / shown, "", "", f"{where}: the path contains a NUL byte"))
        elif label is None or not label.strip():
            entries.append(Entry(root / shown, "", "", f"{where}: no label"))
        elif not allow_outside and not is_inside(root_abs, path):
            entries.append(Entry(root / shown, "", "", f"{where}: the path leaves the corpus folder "
                                                       "(pass --allow-outside to read it)"))
        else:
            entries.append(Entry(root / path, label.strip(), group))
    return entries

def is_inside(root_abs: Path, path: str) -> bool:
    """Whether a manifest path, taken relative to the root, stays inside it (by its text: a link
    inside the corpus may point anywhere, as the user chose)."""
    if os.path.isabs(path):
        return False
    joined = os.path.normpath(os.path.join(root_abs, path))
    return joined == str(root_abs) or joined.startswith(str(root_abs).rstrip(os.sep) + os.sep)
