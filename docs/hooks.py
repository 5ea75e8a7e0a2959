"""MkDocs hooks (mkdocs.yml `hooks:`): the manual's generated parts, made when the site is built.

A page that says `<!-- generated: NAME -->` on a line of its own gets `xfw_harness.tools.manual.generated(NAME)` there:
the block reference from the registry, the catalogue of known differences from cases/known_differences.yaml.
Nothing generated is written into docs/. The case file's JSON Schema, shipped in the package
(xfw_harness/data/case-file.schema.json, `make schema`), is published at the site's root beside the pages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", flags=re.M)
SCHEMA = "case-file.schema.json"


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    shipped = Path(config["config_file_path"]).resolve().parent / "xfw_harness" / "data" / SCHEMA
    files.append(File.generated(config, SCHEMA, abs_src_path=str(shipped)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if not MARKER.search(markdown):
        return markdown
    from xfw_harness.tools.manual import generated  # imports the frameworks: only for the pages that need them

    root = Path(config["config_file_path"]).resolve().parent
    return MARKER.sub(lambda m: generated(m.group(1), root), markdown)
