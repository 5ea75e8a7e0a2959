"""Safe YAML: PyYAML's safe loader (no tag ever builds a Python object), stricter where a case file needs it, and a
case written back as YAML for the report, cut at a bounded length."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import yaml

from xfw_harness.core.errors import show

MAX_YAML_DEPTH = 64  # nesting of YAML lists and mappings


MAX_CASE_YAML = 4000  # characters of a case's YAML kept for the report (input values written inline can be long)


class _Capped(io.StringIO):
    """A stream that stops the YAML dumper once it holds more than MAX_CASE_YAML characters: a case that repeats
    an anchored long string through aliases would otherwise be dumped in full (gigabytes) before being cut."""

    def write(self, text: str) -> int:
        n = super().write(text)
        if self.tell() > MAX_CASE_YAML:
            raise _Enough
        return n


class _Enough(Exception):  # noqa: N818 - not an error: the dump is long enough
    pass


def case_yaml(raw: dict) -> str:
    """A case as YAML for the report (the mapping as loaded: comments are not kept)."""
    out = _Capped()
    with contextlib.suppress(_Enough):
        yaml.safe_dump(raw, out, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)
    text = out.getvalue()
    return text if len(text) <= MAX_CASE_YAML else text[:MAX_CASE_YAML] + "\n# ... (cut: the case is longer)\n"


class CaseLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no tag ever builds a Python object), except that
    - a key given twice in one mapping is an error, not a silent overwrite (merge keys `<<: *base` still work);
    - nesting deeper than MAX_YAML_DEPTH is an error (not a RecursionError somewhere later);
    - a scalar its tag cannot read (`!!int abc`, a date 2001-13-45) is an error at its line, not a ValueError.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as e:  # PyYAML's constructors raise ValueError, IndexError (`!!int ''`), ...
            raise yaml.constructor.ConstructorError(None, None, f"cannot read {show(node.value)} as {node.tag}: {e}",
                                                    node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base`: the base's keys, which the mapping's own keys may override
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # a list or mapping used as a key
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"the key {show(key)} is not a plain value",
                    key_node.start_mark) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"the key {show(key)} is given twice",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
