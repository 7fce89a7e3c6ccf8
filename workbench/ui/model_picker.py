"""``ModelPicker``: choose the model to work on: a zoo model, uploaded files, or a path.

Three sources in one row (the browser half is ``widgets/src/model_picker/``):

* **Zoo**: the zoo models installed here (``workbench.zoo``).
* **Upload**: files from the browser (a file input, or dropped). The browser refuses files over
  ``max_upload_bytes`` before sending a byte, then sends them in chunks over the widget's comm (Jupyter's
  websocket messages are bounded), a few chunks in flight, each acknowledged by the kernel. Several files
  make one model (OpenVINO ``.xml`` + ``.bin``, ncnn ``.param`` + ``.bin``, ONNX with its external data);
  a ``.zip`` carries a folder (``.mlpackage``, a Hugging Face model folder) and is unpacked safely.
* **Path**: a local file or folder (a Hugging Face model folder). Hidden, and refused here, in a published
  app.

Nothing the browser sends is trusted. The kernel checks the declared sizes against its own limit and
against the bytes that arrive, the order and size of the chunks, the number of files and their names
(reduced to safe base names), and refuses a second upload while one runs. Chunks are written to disk as
they arrive (no second copy in memory), under a hidden temporary name renamed when the file is complete,
into a new private folder ``<artifacts>/uploads/<unique>/``; nothing is ever overwritten, and a refused,
failed or cancelled upload leaves nothing behind. In a published app a picker keeps one upload (the previous
one is removed when a new one loads) and removes it when the visitor's kernel ends, so visitors cannot fill
the disk. A published app loads only formats that are pure data:
the format is detected from the content and asked (``Format.code_risk``) before anything is loaded, so a
TorchScript or ``torch.save`` file, an ExportedProgram, a pickled Hugging Face checkpoint or a folder that
ships its own code is refused whatever its name.

Security decisions read Python attributes, never a synced trait: the browser may set only the source tab
and, outside a published app, the "trust this file" box.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import shutil
import stat
import time
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anywidget
import traitlets

from workbench.core import registry, settings
from workbench.core.errors import ModelFormatError, UntrustedPickleError, WorkbenchError, one_line
from workbench.core.model import Model
from workbench.core.safety import check_zip, human
from workbench.ui import assets
from workbench.ui.show_code import code_trait

#: bytes per chunk the browser sends (Jupyter's websocket takes messages of a few MiB at most)
CHUNK_BYTES = 1 << 20
#: chunks the browser sends before waiting for the kernel's acknowledgement
IN_FLIGHT = 4
#: files in one upload (a model and the weights beside it; a zip for more)
MAX_FILES = 32
#: longest file name kept (the suffixes are kept, the stem shortened)
MAX_NAME = 120
#: an upload with no chunk for this long is abandoned (a reloaded page): a new one replaces it
STALE_S = 120.0
#: a zip may unpack to this many times the upload limit
UNPACK_FACTOR = 4
#: free disk space kept beside an upload
DISK_MARGIN = 64 << 20
#: members of an uploaded zip (a model folder holds a few; Hugging Face folders some dozens)
MAX_MEMBERS = 10_000

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UNSAFE_CHARS = re.compile(r"[^\w.+\- ]+")
_ARCHIVE_JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db")


class UploadError(WorkbenchError, ValueError):
    """An upload was refused: too large, malformed, out of order, or a format a published app does not load."""


# -- pure helpers (tested on their own) --------------------------------------------------------------
def safe_name(name: str, max_len: int = MAX_NAME) -> str:
    """A file name from the browser reduced to a safe base name: no folder parts, no leading dots or
    dashes, no control or shell characters, at most ``max_len`` characters with its suffixes kept
    (``"../../x.onnx"`` -> ``"x.onnx"``, ``".bashrc"`` -> ``"bashrc"``); ``"upload"`` if nothing is left."""
    base = re.split(r"[\\/]", str(name))[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(c for c in base if c.isprintable())
    base = _UNSAFE_CHARS.sub("_", base)
    base = re.sub(r"\s+", " ", base).strip(" ").lstrip(".-").rstrip(". ")
    if len(base) > max_len:
        stem, dot, ext = base.partition(".")
        if len(ext) > max_len // 3:  # keep the last suffix only
            stem, ext = base.rsplit(".", 1)[0], base.rsplit(".", 1)[1][: max_len // 3]
        base = stem[: max(1, max_len - len(ext) - 1)].rstrip(". ") + (f".{ext}" if ext else "")
    return base or "upload"


def upload_root() -> Path:
    """``<artifacts>/uploads``: where uploads go, one new private folder each."""
    return settings.artifacts_dir() / "uploads"


def new_upload_folder(root: Path | None = None) -> Path:
    """A new, empty folder only this user can read (``<root>/<time>-<random>``); never an existing one."""
    root = upload_root() if root is None else root
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for _ in range(10):
        folder = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return folder
    raise UploadError(f"could not make a new folder under {root}", "check the artifacts folder's permissions")


def _member_parts(name: str) -> list[str] | None:
    """The path parts of a zip member, None for a member to skip (a folder entry, macOS metadata);
    raises ``UploadError`` for a name that would leave the folder."""
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name) or "\x00" in name:
        raise UploadError(f"the archive holds a member with an absolute or Windows path ({name[:80]!r})",
                          "zip the model folder with paths relative to it")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UploadError(f"the archive holds a member that leaves its folder ({name[:80]!r})",
                          "zip the model folder with paths relative to it")
    if not parts or name.endswith("/") or parts[0] in _ARCHIVE_JUNK or parts[-1] in _ARCHIVE_JUNK:
        return None
    if len(parts) > 32 or any(len(p) > 255 or not p.isprintable() for p in parts):
        raise UploadError(f"the archive holds a member with an unusable name ({name[:80]!r})",
                          "zip the model folder as it is on disk")
    return parts


def unpack_zip(archive: Path, dest: Path, max_bytes: int) -> None:
    """Unpack ``archive`` into the new folder ``dest``: no member outside it (no ``..``, absolute path or
    symbolic link), no zip bomb (``core.safety.check_zip``), at most ``max_bytes`` written (counted as
    written, not as declared). Raises ``UploadError``; ``dest`` is removed on failure."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise UploadError(f"{archive.name} is not a readable zip archive ({one_line(err, 120)})",
                          "zip the model folder again") from None
    dest.mkdir(mode=0o700)
    try:
        with zf:
            check_zip(zf, archive.stat().st_size, archive.name)
            if len(zf.infolist()) > MAX_MEMBERS:
                raise UploadError(f"{archive.name} holds {len(zf.infolist()):,} members, more than a model folder "
                                  f"({MAX_MEMBERS:,})", "zip the model's folder only")
            written = 0
            for info in zf.infolist():
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UploadError(f"the archive holds a symbolic link ({info.filename[:80]!r})",
                                      "zip the real files, not links")
                parts = _member_parts(info.filename)
                if parts is None:
                    continue
                target = dest.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                try:
                    out = open(target, "xb")  # noqa: SIM115 - closed below; "x": never overwrite
                except (FileExistsError, IsADirectoryError):
                    raise UploadError(f"the archive holds {info.filename[:80]!r} twice",
                                      "zip the model folder as it is on disk") from None
                with out, zf.open(info) as src:
                    while block := src.read(1 << 20):
                        written += len(block)
                        if written > max_bytes:
                            raise UploadError(f"{archive.name} unpacks to more than {human(max_bytes)}",
                                              "upload a smaller model, or raise WORKBENCH_MAX_UPLOAD_BYTES")
                        out.write(block)
    except ModelFormatError as err:  # check_zip: a bomb, or past WORKBENCH_MAX_UNPACKED_BYTES
        shutil.rmtree(dest, ignore_errors=True)
        raise UploadError(err.problem, err.fix) from None
    except UploadError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as err:  # a damaged or encrypted member
        shutil.rmtree(dest, ignore_errors=True)
        raise UploadError(f"{archive.name} could not be unpacked ({one_line(err, 160)})",
                          "zip the model folder again (no encryption)") from None


def model_entry(folder: Path, depth: int = 0) -> Path:
    """The file or folder to load among what an upload left in ``folder``: the one entry there is; the
    folder itself when it is a folder model (a Hugging Face folder); else the one file with a model's
    suffix (``.xml`` beside its ``.bin``, ``.onnx`` beside its external data)."""
    from workbench.core.detect import file_formats

    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if not entries:
        raise UploadError("the upload holds no file", "upload the model's file(s)")
    formats = file_formats()
    if any(cls.folder and cls.sniff(folder, b"") for cls in formats):
        return folder
    if len(entries) == 1:
        only = entries[0]
        if only.is_dir() and depth < 3 and not any(cls.folder and cls.sniff(only, b"") for cls in formats):
            return model_entry(only, depth + 1)  # a zip of a plain folder holding the files
        return only
    suffixes = {s for cls in formats if cls.loads_as is None for s in cls.suffixes}
    models = [p for p in entries if p.suffix.lower() in suffixes]
    if len(models) == 1:
        return models[0]
    names = ", ".join(p.name for p in entries[:6])
    if not models:
        raise UploadError(f"none of the uploaded files is a model file the workbench knows ({names})",
                          "upload the model file (.onnx, .xml, .param, …) together with the files beside it")
    raise UploadError(f"the upload holds several models ({', '.join(p.name for p in models[:6])})",
                      "upload one model at a time, with only the files that belong to it")


def code_risk(path: Path) -> str | None:
    """Why loading ``path`` could unpickle objects or run code shipped with it (None: pure data), from the
    format detected from its content (``Format.code_risk``)."""
    from workbench.core.detect import detect

    return detect(path).code_risk(path)


def accepted_formats(published: bool) -> str:
    """What the upload takes, for the hint under the drop area (from the registry)."""
    from workbench.core.detect import file_formats

    base = registry.Format.code_risk.__func__  # type: ignore[attr-defined]
    out = []
    for cls in sorted(file_formats(), key=lambda c: (c.folder, c.priority)):
        if cls.loads_as is not None:
            continue
        name = (cls.description or cls.name).split(" (")[0]
        if cls.folder and not cls.suffixes:
            name += " (zipped)"
        if not published or cls.pure_data:
            out.append(name)
        elif cls.code_risk.__func__ is not base:  # type: ignore[attr-defined] - the files decide
            out.append(f"{name}, data only")
    return ", ".join(out)


@dataclass
class _Upload:
    """An upload in progress: what the browser declared, and what arrived."""

    id: str
    folder: Path
    names: list[str]
    sizes: list[int]
    index: int = 0  # the file being received
    received: int = 0  # its bytes so far
    total: int = 0  # bytes of every file so far
    handle: IO[bytes] | None = None
    last: float = field(default_factory=time.monotonic)

    def temp(self, i: int) -> Path:
        return self.folder / f".{self.names[i]}.part"  # final names never start with a dot

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class ModelPicker(anywidget.AnyWidget):
    """Pick a model: a zoo model, uploaded files, or (outside a published app) a path.

    Args:
        value: the zoo model (or, outside a published app, path) loaded at start; None for none.
        models: the zoo models offered (default: every zoo model installed here).
        published: a published app's picker: no path field, uploads of pure-data formats only, no
            "trust this file". Default: ``settings.published()``, or a kernel started by Voilà. Always True
            when the kernel is marked published (``WORKBENCH_PUBLISHED``), whatever is passed.
        max_upload_bytes: the largest upload, all files together (default ``settings.max_upload_bytes()``).

    ``.model`` is the loaded ``Model`` (or None), ``.error`` the last error's text (also shown),
    ``.on_pick(callback)`` is called with each newly picked Model, ``.pick(name_or_path)`` picks from
    Python, and ``.code()`` is the Python that loads the current model.
    """

    _esm = assets.esm("model_picker")
    _css = assets.css("model_picker")

    source = traitlets.Unicode("zoo").tag(sync=True)  # the tab shown: "zoo", "upload" or "path"
    value = traitlets.Unicode("").tag(sync=True)  # what is loaded: a zoo name, a file name or a path
    zoo = traitlets.List(traitlets.Unicode()).tag(sync=True)
    zoo_missing = traitlets.Dict().tag(sync=True)  # offered zoo name -> why it cannot load here
    allow_path = traitlets.Bool(True).tag(sync=True)
    allow_trust = traitlets.Bool(True).tag(sync=True)
    trust = traitlets.Bool(False).tag(sync=True)
    max_upload_bytes = traitlets.Int(0).tag(sync=True)
    chunk_bytes = traitlets.Int(CHUNK_BYTES).tag(sync=True)
    in_flight = traitlets.Int(IN_FLIGHT).tag(sync=True)
    max_files = traitlets.Int(MAX_FILES).tag(sync=True)
    formats_hint = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("idle").tag(sync=True)  # idle | loading | uploading | ready | error
    message = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    info = traitlets.Dict().tag(sync=True)  # the loaded model: name, format, inputs, size
    code_text = code_trait()  # code(), for Show code (a method cannot share its name)

    def __init__(self, value: str | os.PathLike | Model | None = "digits-cnn", *,
                 models: Sequence[str] | None = None, published: bool | None = None,
                 max_upload_bytes: int | None = None, **kwargs: Any):
        from workbench import zoo
        from workbench.ui.kernel_lab import in_voila

        if settings.published():
            self._published = True
        else:
            self._published = in_voila() if published is None else bool(published)
        limit = settings.max_upload_bytes() if max_upload_bytes is None else int(max_upload_bytes)
        if limit <= 0:
            raise WorkbenchError(f"max_upload_bytes must be positive, not {limit}", "pass a number of bytes")
        self._max_upload = limit
        names = [n for n in zoo.names() if zoo.extra_missing(n) is None] if models is None else list(models)
        unknown = [n for n in names if n not in zoo.names()]
        if unknown:
            raise WorkbenchError(f"no zoo model named {', '.join(map(repr, unknown))}",
                                 f"choose among {', '.join(zoo.names())}")
        self._zoo = names
        self.model: Model | None = None
        self._loaded: tuple[str, str, bool] | None = None  # (kind, zoo name or path, trusted)
        self._callbacks: list[Callable[[Model], Any]] = []
        self._upload: _Upload | None = None
        self._kept: Path | None = None  # a published app's current upload
        super().__init__(zoo=names, zoo_missing={n: m for n in names if (m := zoo.extra_missing(n))},
                         allow_path=not self._published, allow_trust=not self._published,
                         max_upload_bytes=limit, formats_hint=accepted_formats(self._published), **kwargs)
        assets.require("model_picker")
        self.on_msg(lambda _w, content, buffers: self.handle_message(content, buffers))
        self.code_text = self.code()
        if value is not None and value != "":
            try:
                self.pick(value)
            except WorkbenchError:
                pass  # shown in the widget and kept in .error

    # -- the Python API ------------------------------------------------------------------------------
    @property
    def published(self) -> bool:
        """True for a published app's picker (no paths, pure-data uploads only)."""
        return self._published

    @property
    def limit(self) -> int:
        """The largest upload, in bytes (all files together)."""
        return self._max_upload

    def on_pick(self, callback: Callable[[Model], Any]) -> Callable[[Model], Any]:
        """Call ``callback(model)`` after each successful pick (usable as a decorator). A callback's error is
        shown in the widget and kept in ``.error``, never raised into the browser's message."""
        self._callbacks.append(callback)
        return callback

    def pick(self, source: str | os.PathLike | Model, *, trust: bool = False) -> Model:
        """Load ``source`` (a zoo name; outside a published app a path, a folder or a Hugging Face id; or a
        ``Model``), make it the picked model and return it. ``trust=True`` (outside a published app only)
        lets a pickle format run the code in the file. Raises the ``WorkbenchError``, also shown."""
        if isinstance(source, Model):
            return self._picked(source, ("path", str(source.path), False) if source.path else ("model", "", False),
                                label=source.name)
        text = os.fspath(source)
        if text in self._zoo or (isinstance(source, str) and text in _zoo_names() and not Path(text).exists()):
            return self._pick_zoo(text)
        if self._published:
            return self._fail(UploadError(f"a published app loads no paths ({text[:120]!r})",
                                          f"pick a zoo model ({', '.join(self._zoo)}) or upload a model file"))
        return self._pick_path(text, trust=trust)

    def script(self, imports: str, then: str) -> str:
        """A script that loads the current model as ``m`` (``code()``) and goes on with ``then``; ``imports``
        (lines after ``import workbench as wb``) go first. With no model to load, just ``code()``."""
        load = self.code().rstrip()
        if self._loaded is None or self._loaded[0] == "model":
            return load + "\n"
        body = "\n".join(line for line in load.splitlines() if line and line != "import workbench as wb")
        return f"import workbench as wb\n{imports}\n{body}\n{then}"

    def code(self) -> str:
        """The Python that loads the current model (the uploaded file's real path included)."""
        if self._loaded is None or self._loaded[0] == "model":
            note = "no model picked yet" if self._loaded is None else "an in-memory model: it has no file to load"
            return f"import workbench as wb\n\nm = None  # {note}\n"
        kind, target, trusted = self._loaded
        if kind == "path" and self._published:  # an upload (no other path here): the file as the visitor named it
            return (f"import workbench as wb\n# the file you uploaded, next to this script\n"
                    f"m = wb.load({json.dumps(Path(target).name)})\n")
        return f"import workbench as wb\nm = wb.load({json.dumps(target)}{', trust=True' if trusted else ''})\n"

    # -- what the browser sends ----------------------------------------------------------------------
    _FROM_BROWSER = frozenset({"source"})

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """State from the browser: only the tab shown and (outside a published app) the trust box."""
        allowed = self._FROM_BROWSER | ({"trust"} if not self._published else frozenset())
        sync_data = {k: v for k, v in (sync_data or {}).items() if k in allowed}
        if sync_data.get("source", "zoo") not in ("zoo", "upload", "path"):
            sync_data.pop("source")
        if sync_data:
            super().set_state(sync_data)

    def handle_message(self, content: Any, buffers: Sequence[Any] | None = None) -> None:
        """What a message from the browser does (``{"kind": ...}``): ``pick_zoo``, ``pick_path``,
        ``upload_start``, ``upload_chunk`` (one buffer), ``upload_cancel``. Never raises: errors are shown."""
        if not isinstance(content, dict):
            return
        kind = content.get("kind")
        try:
            if kind == "pick_zoo":
                name = content.get("name")
                if not isinstance(name, str) or name not in self._zoo:
                    self._fail(UploadError(f"{str(name)[:80]!r} is not a zoo model offered here",
                                           f"choose one of {', '.join(self._zoo)}"))
                self._pick_zoo(name)
            elif kind == "pick_path":
                path = content.get("path")
                if self._published:
                    self._fail(UploadError("a published app loads no paths", "upload a model file instead"))
                if not isinstance(path, str) or not path.strip():
                    self._fail(UploadError("no path was given", "type the path of a model file or folder"))
                self.pick(path.strip(), trust=self.trust)
            elif kind == "upload_start":
                self._upload_start(content)
            elif kind == "upload_chunk":
                self._upload_chunk(content, list(buffers or []))
            elif kind == "upload_cancel":
                up = self._upload
                if up is not None and content.get("id") == up.id:
                    self._discard(up)
                    self.status, self.message = ("ready" if self.model is not None else "idle"), "upload cancelled"
        except WorkbenchError:
            pass  # already shown
        except Exception as err:  # noqa: BLE001 - the kernel carries on; the widget says what happened
            self._show_error(f"{type(err).__name__}: {one_line(err, 300)}")

    # -- picking -------------------------------------------------------------------------------------
    def _pick_zoo(self, name: str) -> Model:
        from workbench import zoo

        self._busy(f"loading {name}…")
        try:
            model = zoo.load(name)
        except WorkbenchError as err:
            return self._fail(err)
        except Exception as err:  # noqa: BLE001 - a zoo build's own error, on one line
            return self._fail(WorkbenchError(f"the zoo model {name} could not be built: {one_line(err, 300)}",
                                             "check the installation (bash scripts/setup)"))
        return self._picked(model, ("zoo", name, False), label=name)

    def _pick_path(self, text: str, *, trust: bool, label: str | None = None) -> Model:
        import workbench as wb

        trust = bool(trust) and not self._published
        self._busy(f"loading {label or text}…")
        try:
            model = wb.load(text, trust=trust)
        except UntrustedPickleError as err:
            fix = f"{err.fix}; or tick “trust this file” if you trust it" if self.allow_trust else err.fix
            return self._fail(type(err)(err.problem, fix))
        except WorkbenchError as err:
            return self._fail(err)
        except Exception as err:  # noqa: BLE001 - a loader's own exception, on one line
            return self._fail(ModelFormatError(f"{label or text} could not be loaded: {one_line(err, 300)}",
                                               "check that it is a complete model file of a format the workbench reads"))
        where = str(Path(text).expanduser().resolve()) if Path(text).expanduser().exists() else text
        return self._picked(model, ("path", where, trust), label=label or text)

    def _picked(self, model: Model, loaded: tuple[str, str, bool], *, label: str) -> Model:
        self.model = model
        self._loaded = loaded
        self.value = label
        self.info = _summary(model)
        self.status, self.error = "ready", ""
        self.message = f"{label} · {model.format}"
        self.code_text = self.code()
        for callback in list(self._callbacks):
            try:
                callback(model)
            except Exception as err:  # noqa: BLE001 - shown, not raised into the comm
                self._show_error(f"on_pick callback {getattr(callback, '__name__', 'callback')} failed: "
                                 f"{type(err).__name__}: {one_line(err, 300)}", status="ready")
        return model

    def _busy(self, message: str) -> None:
        self.status, self.message, self.error = "loading", message, ""

    def _show_error(self, text: str, status: str = "error") -> None:
        self.error = text
        self.status = status
        if status == "error":
            self.message = ""

    def _fail(self, err: WorkbenchError) -> Any:
        """Show ``err`` and raise it."""
        self._show_error(str(err))
        raise err

    # -- uploads -------------------------------------------------------------------------------------
    def _reply(self, content: dict[str, Any]) -> None:
        self.send(content)

    def _refuse(self, uid: Any, err: WorkbenchError) -> None:
        """Tell the browser its upload ``uid`` stopped, show why, raise."""
        self._reply({"kind": "abort", "id": uid if isinstance(uid, str) else "", "error": str(err)})
        self._fail(err)

    def _discard(self, up: _Upload) -> None:
        up.close()
        shutil.rmtree(up.folder, ignore_errors=True)
        if self._upload is up:
            self._upload = None

    def _abort(self, up: _Upload, err: WorkbenchError) -> None:
        self._discard(up)
        self._refuse(up.id, err)

    def _upload_start(self, msg: dict[str, Any]) -> None:
        uid, files = msg.get("id"), msg.get("files")
        if not isinstance(uid, str) or not _ID.fullmatch(uid):
            self._refuse(uid, UploadError("the upload has no valid id", "reload the page and try again"))
        running = self._upload
        if running is not None:
            if time.monotonic() - running.last < STALE_S:
                self._reply({"kind": "abort", "id": uid, "error": "another upload is running: wait for it, or cancel it"})
                raise UploadError("another upload is running")  # the running upload's status stays shown
            self._discard(running)  # abandoned (the page was reloaded): the new upload replaces it
        if not isinstance(files, list) or not files:
            self._refuse(uid, UploadError("the upload names no file", "choose the model's file(s)"))
        if len(files) > MAX_FILES:
            self._refuse(uid, UploadError(f"the upload has {len(files)} files, more than {MAX_FILES}",
                                          "upload the model's files only, or a .zip of its folder"))
        names, sizes = [], []
        for f in files:
            name, size = (f.get("name"), f.get("size")) if isinstance(f, dict) else (None, None)
            if not isinstance(name, str) or not isinstance(size, int) or isinstance(size, bool):
                self._refuse(uid, UploadError("the upload declares a file without a name and a size",
                                              "reload the page and try again"))
            if size <= 0:
                self._refuse(uid, UploadError(f"{safe_name(name)} is empty (0 bytes)", "choose the complete file"))
            names.append(safe_name(name))
            sizes.append(size)
        total = sum(sizes)
        if total > self._max_upload:
            self._refuse(uid, UploadError(f"the upload is {human(total)}, more than the limit of "
                                          f"{human(self._max_upload)}",
                                          "upload a smaller model, or raise WORKBENCH_MAX_UPLOAD_BYTES"))
        folded = [n.casefold() for n in names]
        if len(set(folded)) != len(folded):
            self._refuse(uid, UploadError(f"the upload names a file twice ({', '.join(names)[:200]})",
                                          "choose each file once"))
        zipped = [n for n in names if n.lower().endswith(".zip")]
        if zipped and len(names) > 1:
            self._refuse(uid, UploadError("a .zip is uploaded on its own", "put every file of the model in the zip"))
        root = upload_root()
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        need = total * (UNPACK_FACTOR if zipped else 1) + DISK_MARGIN
        if shutil.disk_usage(root).free < need:
            self._refuse(uid, UploadError(f"the disk has less than {human(need)} free for the upload",
                                          "free some space in the artifacts folder"))
        self._upload = _Upload(uid, new_upload_folder(root), names, sizes)
        self.status, self.error = "uploading", ""
        self.message = f"uploading {', '.join(names)[:120]} ({human(total)})"
        self._reply({"kind": "ack", "id": uid, "received": 0})

    def _upload_chunk(self, msg: dict[str, Any], buffers: list[Any]) -> None:
        up = self._upload
        if up is None or msg.get("id") != up.id:
            # a chunk of no running upload: nothing is written, a running upload goes on
            self._reply({"kind": "abort", "id": msg.get("id") if isinstance(msg.get("id"), str) else "",
                         "error": "no such upload is running"})
            return
        index, offset = msg.get("file"), msg.get("offset")
        if len(buffers) != 1:
            self._abort(up, UploadError("an upload chunk came without its bytes", "try the upload again"))
        data = memoryview(buffers[0]).cast("B")
        n = data.nbytes
        if index != up.index or offset != up.received or isinstance(index, bool) or isinstance(offset, bool):
            self._abort(up, UploadError(f"upload chunks came out of order (file {index!r} at {offset!r}, expected "
                                        f"file {up.index} at {up.received})", "try the upload again"))
        if n == 0 or n > CHUNK_BYTES:
            self._abort(up, UploadError(f"an upload chunk of {n} bytes (chunks are 1 to {CHUNK_BYTES} bytes)",
                                        "try the upload again"))
        if up.received + n > up.sizes[up.index]:
            self._abort(up, UploadError(f"{up.names[up.index]} is larger than the {up.sizes[up.index]} bytes "
                                        "declared for it", "try the upload again"))
        try:
            if up.handle is None:
                fd = os.open(up.temp(up.index), os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                             0o600)
                up.handle = os.fdopen(fd, "wb")
            up.handle.write(data)
        except OSError as err:
            self._abort(up, UploadError(f"the upload could not be written ({err.strerror or err})",
                                        "free disk space in the artifacts folder"))
        up.received += n
        up.total += n
        up.last = time.monotonic()
        if up.received == up.sizes[up.index]:
            up.close()
            final = up.folder / up.names[up.index]
            if final.exists():  # cannot happen in a new folder with distinct names; never overwrite anyway
                self._abort(up, UploadError(f"{final.name} exists already", "try the upload again"))
            os.rename(up.temp(up.index), final)
            up.index += 1
            up.received = 0
        done = up.index == len(up.names)
        self._reply({"kind": "ack", "id": up.id, "received": up.total, "done": done})
        if done:
            self._upload = None
            self._finish(up)

    def _finish(self, up: _Upload) -> None:
        """Every file arrived: unpack a zip, find the model, refuse code in a published app, load."""
        label = up.names[0] if len(up.names) == 1 else " + ".join(up.names)[:120]
        try:
            self._busy(f"checking {label}…")
            if len(up.names) == 1 and up.names[0].lower().endswith(".zip"):
                archive = up.folder / up.names[0]
                # the zip's name without suffixes: "model.mlpackage.zip" holding "model.mlpackage/" unpacks
                # into "model/", which no format claims by its name alone
                stem = safe_name(archive.name[:-4]).split(".")[0] or "model"
                staging = up.folder / f".{stem}.unpacking"
                unpack_zip(archive, staging, self._max_upload * UNPACK_FACTOR)
                archive.unlink()
                os.rename(staging, up.folder / stem)
            entry = model_entry(up.folder)
            if self._published:
                try:
                    risk = code_risk(entry)
                except WorkbenchError as err:
                    raise UploadError(err.problem, err.fix) from None
                if risk:
                    raise UploadError(f"{entry.name} was not loaded: {risk}",
                                      f"upload a format that is pure data ({accepted_formats(True)}); "
                                      "export a torch model with wb.export(model, 'onnx') first")
            self._pick_path(str(entry), trust=self.trust, label=entry.name)
            if self._published:  # one upload kept per visitor, removed when their kernel ends
                previous, self._kept = self._kept, up.folder
                _VISITOR_UPLOADS.add(up.folder)
                if previous is not None:
                    shutil.rmtree(previous, ignore_errors=True)
                    _VISITOR_UPLOADS.discard(previous)
        except WorkbenchError as err:
            shutil.rmtree(up.folder, ignore_errors=True)  # nothing is left of a refused upload
            if self.status != "error":
                self._show_error(str(err))
            raise


#: the upload folders of a published app's pickers: a visitor's files do not outlive their kernel
_VISITOR_UPLOADS: set[Path] = set()


@atexit.register
def _remove_visitor_uploads() -> None:
    for folder in list(_VISITOR_UPLOADS):
        shutil.rmtree(folder, ignore_errors=True)


def _zoo_names() -> list[str]:
    from workbench import zoo

    return zoo.names()


def _summary(model: Model) -> dict[str, Any]:
    """What the status line shows of a loaded model."""
    size = None
    try:
        size = model.size_bytes
    except (OSError, WorkbenchError):
        pass
    return {"name": model.name, "format": model.format, "inputs": [str(s) for s in model.inputs][:6],
            "outputs": len(model.outputs), "size": size, "path": str(model.path) if model.path else ""}
