"""YAML files a user hands docsort (a ``--config``, a labels file, a model's manifest), read
so that no file can make it run out of memory or print a traceback.

YAML aliases share one node between several places: ``a: &a [x, x]``, ``b: &b [*a, *a]`` ...
nine levels down is a 1 kB file ("billion laughs") that becomes a thousand million values as
soon as anything walks it (``str`` of a label name, an error message, a copy of the
parameters). The node graph is therefore sized before anything is built from it: a document
whose aliases expand it past ``MAX_VALUES`` values, or that refers to itself, is refused in one
line. Aliases that stay small (a stage config reused) still work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from docsort.errors import DocsortError

MAX_VALUES = 1_000_000  # what aliases may expand a document to (a file without any is as big)


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """The YAML document in ``path``, or a one-line ``DocsortError`` saying why not (missing,
    not UTF-8 text, not valid YAML, aliases expanding past ``MAX_VALUES``)."""
    path = Path(path)
    if not path.is_file():
        raise DocsortError(f"{what} not found: {str(path)!r}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DocsortError(f"{str(path)!r}: not a YAML file (not UTF-8 text)") from None
    except OSError as exc:
        raise DocsortError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    return parse_yaml(text, repr(str(path)))


def parse_yaml(text: str, source: str) -> Any:
    """``text`` as YAML (safe types only), refused in one line naming ``source`` when it is not
    valid YAML, nests too deeply or expands past ``MAX_VALUES`` values through aliases."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problem = _expansion_problem(node)
        if problem:
            raise DocsortError(f"{source}: {problem}; write the values out instead")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise DocsortError(f"{source}: not valid YAML ({_first_line(exc)})") from None
    except RecursionError:
        raise DocsortError(f"{source}: nested too deeply to be read") from None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _expansion_problem(root: yaml.Node) -> str | None:
    """Why the node graph cannot be built (it refers to itself, or its aliases expand it past
    ``MAX_VALUES`` values), else None. Sizes are counted once per shared node, without
    recursion, so a bomb is refused in milliseconds and deep nesting cannot crash the count."""
    sizes: dict[int, int] = {}
    open_nodes = {id(root)}
    stack = [(root, iter(_children(root)))]
    while stack:
        node, pending = stack[-1]
        child = next(pending, None)
        if child is None:
            stack.pop()
            open_nodes.discard(id(node))
            size = 1 + sum(sizes[id(c)] for c in _children(node))
            if size > MAX_VALUES and size > len(sizes) + 1:
                return f"its aliases (*name) expand it to more than {MAX_VALUES:,} values"
            sizes[id(node)] = size
            continue
        if id(child) in sizes:
            continue
        if id(child) in open_nodes:
            return "an alias (*name) refers to a value that holds it"
        open_nodes.add(id(child))
        stack.append((child, iter(_children(child))))
    return None


def _first_line(exc: Exception) -> str:
    """What is wrong and where: "expected ',' or ']', but got '<stream end>' at line 1,
    column 15" (the first line of PyYAML's message names a context, not the problem)."""
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
