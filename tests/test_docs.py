"""The documentation a user reads resolves inside the repository and covers every command.

- every relative Markdown link (inline, image or reference-style) of README.md and docs/*.md
  points at a file of the repository, and a ``#fragment`` at a heading of the target;
- a document cited by name in code spans (`` `wekeo-api.md` ``, `` `docs/c2rcc.md` ``) exists;
- every ``seasonal-c2rcc`` sub-command is documented in README.md or docs/*.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seasonal_c2rcc import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
#: a document cited by name: `name.md` or `docs/name.md` (not output files like results/bill.md)
_DOC_NAME = re.compile(r"^(?:docs/)?[\w.-]+\.md$")


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans (links there are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text())):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        out.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    return out


def _links(path: Path) -> list[str]:
    prose = _prose(path.read_text())
    return _INLINE_LINK.findall(prose) + _REF_DEF.findall(prose)


def _is_external(target: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) is not None  # http:, https:, mailto:


def test_docs_found() -> None:
    names = {p.name for p in DOCS}
    assert {"README.md", "c2rcc.md", "emulator.md", "wekeo-api.md"} <= names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in _links(doc):
        if _is_external(target):
            continue
        file_part, _, fragment = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository ({dest})")
        elif not dest.exists():
            broken.append(f"{target}: no such file {dest.relative_to(ROOT)}")
        elif fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
            broken.append(f"{target}: no heading #{fragment} in {dest.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_documents_exist(doc: Path) -> None:
    """A doc named in a code span (`wekeo-api.md`) must be in the repository, next to the citing
    doc, in docs/ or at the root; a citation of a document that only exists elsewhere is a dead
    end for the reader."""
    missing = []
    for _, span in _CODE_SPAN.findall(_FENCE.sub("", doc.read_text())):
        name = span.strip()
        if not _DOC_NAME.match(name):
            continue
        if not any((base / name).exists() for base in (doc.parent, ROOT / "docs", ROOT)):
            missing.append(name)
    assert not missing, f"{doc.relative_to(ROOT)} cites documents not in the repository: {missing}"


#: Where users meet references to docs outside the docs: error messages, config descriptions,
#: profiles, report captions, rules and module docstrings.
_CODE_GLOBS = ("seasonal_c2rcc/**/*.py", "scripts/*.py", "rules/*.smk", "Snakefile", "config/*",
               "profiles/**/*.yaml", "report/*", "benchmarks/*.py", "tests/conftest.py")  # fmt: skip
_DOC_PATH = re.compile(r"\bdocs/[\w.-]+\.(?:md|svg|dot|mmd)\b")


def test_docs_cited_by_code_and_config_exist() -> None:
    """A ``docs/...`` path in a message, a config description or a docstring names a real file."""
    missing = set()
    for pattern in _CODE_GLOBS:
        for path in ROOT.glob(pattern):
            if not path.is_file():
                continue
            for cited in _DOC_PATH.findall(path.read_text(errors="replace")):
                if not (ROOT / cited).is_file():
                    missing.add(f"{cited} (cited in {path.relative_to(ROOT)})")
    assert not missing, "documents cited but not in the repository:\n" + "\n".join(sorted(missing))


def _subcommands(capsys: pytest.CaptureFixture[str]) -> list[str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    match = re.search(r"\{([a-z0-9,-]+)\}", usage)
    assert match, usage
    return match.group(1).split(",")


def test_every_cli_subcommand_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _subcommands(capsys)
    assert {"demo", "bill", "reset-job", "fetch-data"} <= set(commands)
    text = "\n".join(p.read_text() for p in DOCS)
    undocumented = [c for c in commands if not re.search(rf"seasonal-c2rcc {re.escape(c)}\b", text)]
    assert not undocumented, f"sub-commands not in README.md or docs/*.md: {undocumented}"


def test_link_checker_catches_broken_links(tmp_path: Path) -> None:
    """The checks above can fail: a broken link, a missing anchor and a code-span link."""
    doc = tmp_path / "x.md"
    doc.write_text(
        "# Title here\n\n## 2. Some `code` (x)\n\n[a](missing.md) [b](#2-some-code-x) "
        "[c](#nope) `[d](ignored.md)` [e](https://example.org) ![img](pic.png)\n"
        "[ref]: other.md\n"
    )
    assert _links(doc) == [
        "missing.md",
        "#2-some-code-x",
        "#nope",
        "https://example.org",
        "pic.png",
        "other.md",
    ]
    assert _anchors(doc) == {"title-here", "2-some-code-x"}
