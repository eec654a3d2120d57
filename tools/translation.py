"""The Korean edition: translated pages kept in step with the English ones.

Every page of the book has a Korean twin under ``ko/`` at the same path
(``chapters/01-tensors.md`` -> ``ko/chapters/01-tensors.md``). The English page is the
source of all code and outputs; the Korean page holds the translated prose.

A chapter (a MyST notebook) and its Korean twin have the same cells in the same order.
A Korean code cell is the English one with its comments translated: the same code
(``code_tokens``: every token but the comments) and metadata, except for the few metadata
values a reader sees as text (a figure's caption and alt text, the "Show solution"
prompt), which are translated too. ``sync`` keeps a Korean code cell whose code is the
English cell's and otherwise replaces it with the English source. The Korean ``.ipynb``
is the English ``.ipynb`` with the Korean text and comments put in: the same code and the
same outputs that nbval verified, so it needs no execution of its own.

A page that is not a notebook (intro, running) is split into passages at its headings;
its Korean twin writes each passage after a block break ``+++ {"en": "..."}``.

Stale translations: every translated passage (a Markdown cell, the comments and translated
metadata of a code cell, a passage of a plain page) records ``en``, a short hash of the
English text it translates. When the English text changes, the hashes no longer match and
``status`` reports the passage as stale; ``make test`` fails until the translation is
brought up to date and its hash renewed (``mark``).
A passage that was never translated has no ``en`` and still holds the English text.

The Korean edition has one page of its own, the glossary ``ko/glossary.md``, which
``sync`` writes from ``ko/glossary.csv``.

    python -m tools.translation sync      # copy code and outputs into the Korean twins, write the glossary page
    python -m tools.translation status    # translated/total per page (make translation-status)
    python -m tools.translation check     # exit 1 unless every page is fully translated and in step
    python -m tools.translation config    # the Korean book's _config.yml, in _build/ko-config.yml
    python -m tools.translation mark chapters/02-learning-mechanics 12 15   # after translating cells 12 and 15
"""

from __future__ import annotations

import copy
import csv
import difflib
import hashlib
import io
import json
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
EDITION = "ko"
HASH_KEY = "en"
# Code cell metadata that a reader sees as text, and so is translated: (path of keys).
TRANSLATED_METADATA = [
    ("mystnb", "figure", "caption"),
    ("mystnb", "image", "alt"),
    ("mystnb", "code_prompt_show"),
    ("mystnb", "code_prompt_hide"),
]
BLOCK_BREAK = re.compile(r"^\+\+\+ (\{.*\})[ \t]*$")
FENCE = re.compile(r"^(```|:::)")
HEADING = re.compile(r"^#{1,6} ")
MAGIC = re.compile(r"^([ \t]*)([%!].*?)[ \t]*$", flags=re.MULTILINE)  # an IPython magic or shell line
GLOSSARY = f"{EDITION}/glossary.csv"
GLOSSARY_PAGE = "glossary"  # ko/glossary.md, written from GLOSSARY by sync: the one page of the Korean edition only


def text_hash(text: str) -> str:
    """A short hash of an English passage; whitespace at the ends does not count."""
    return hashlib.sha256(text.strip().encode()).hexdigest()[:8]


def pages(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every page of a book's table of contents, root first, without extension."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    files = [toc["root"]]
    files.extend(entry["file"] for entry in toc.get("chapters", []))
    for part in toc.get("parts", []):
        files.extend(entry["file"] for entry in part.get("chapters", []))
    return files


def korean_path(page: str, root: Path = ROOT) -> Path:
    return root / EDITION / f"{page}.md"


def is_notebook(path: Path) -> bool:
    return path.read_text(encoding="utf-8").startswith("---\njupytext:")


# --- code and comments --------------------------------------------------------------------


def _tokens(source: str) -> list[tuple[str, str]]:
    """A code cell's tokens as (type name, text), comments included, without line breaks that end no statement.

    A magic or shell line (``%pip ...``, ``!ls``) is one string token, ``#`` included. Source
    that Python cannot tokenize is taken line by line, a line starting with ``#`` as a comment.
    """
    python = MAGIC.sub(lambda match: match.group(1) + repr(match.group(2)), source)
    try:
        return [
            (tokenize.tok_name[token.type], "" if token.type == tokenize.NEWLINE else token.string)
            for token in tokenize.generate_tokens(io.StringIO(python).readline)
            if token.type != tokenize.NL
        ]
    except (tokenize.TokenError, SyntaxError):
        lines = [line.strip() for line in source.splitlines() if line.strip()]
        return [("COMMENT" if line.startswith("#") else "LINE", line) for line in lines]


def code_tokens(source: str) -> tuple[tuple[str, str], ...]:
    """What a code cell runs: its tokens without the comments. A translation keeps them all."""
    return tuple(token for token in _tokens(source) if token[0] != "COMMENT")


def code_comments(source: str) -> list[str]:
    """A code cell's comments, in order: what a translation translates of its source."""
    return [text for kind, text in _tokens(source) if kind == "COMMENT"]


# --- translated metadata of code cells ----------------------------------------------------


def _get(metadata: dict, keys: tuple):
    for key in keys:
        if not isinstance(metadata, dict) or key not in metadata:
            return None
        metadata = metadata[key]
    return metadata


def _set(metadata: dict, keys: tuple, value) -> None:
    for key in keys[:-1]:
        metadata = metadata.setdefault(key, {})
    metadata[keys[-1]] = value


def translated_metadata(metadata: dict) -> dict:
    """The metadata values of a code cell that are translated, by their key path."""
    found = {}
    for keys in TRANSLATED_METADATA:
        value = _get(metadata, keys)
        if value is not None:
            found[".".join(keys)] = value
    return found


def untranslated_metadata(metadata: dict) -> dict:
    """A code cell's metadata without its translated values and without the hash: must equal the English."""
    stripped = copy.deepcopy(dict(metadata))
    stripped.pop(HASH_KEY, None)
    for keys in TRANSLATED_METADATA:
        parent = _get(stripped, keys[:-1]) if len(keys) > 1 else stripped
        if isinstance(parent, dict):
            parent.pop(keys[-1], None)
    return stripped


def _metadata_text(metadata: dict) -> str:
    return json.dumps(translated_metadata(metadata), ensure_ascii=False, sort_keys=True)


def _code_text(cell) -> str:
    """What a code cell's translation covers: its translated metadata, then its comments ("" if neither)."""
    parts = [_metadata_text(cell.metadata)] if translated_metadata(cell.metadata) else []
    return "\n".join(parts + code_comments(cell.source))


# --- passages -----------------------------------------------------------------------------


@dataclass
class Passage:
    """One unit of translation: its English text, and where the Korean page stands with it."""

    where: str  # "cell 12" or "passage 3", for messages
    english: str
    korean: str | None  # None when the Korean page has no text for it yet
    recorded_hash: str | None
    code: bool = False  # a code cell's comments and translated metadata, not prose

    @property
    def state(self) -> str:
        if self.recorded_hash is None:
            return "untranslated"
        return "translated" if self.recorded_hash == text_hash(self.english) else "stale"


@dataclass
class PageStatus:
    page: str
    passages: list[Passage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # structure: code that differs, cells out of order

    def count(self, state: str) -> int:
        return sum(passage.state == state for passage in self.passages)


def plain_passages(text: str) -> list[str]:
    """An English plain page split before each heading outside code fences."""
    passages, current, fenced = [], [], False
    for line in text.splitlines(keepends=True):
        if FENCE.match(line):
            fenced = not fenced
        if HEADING.match(line) and not fenced and "".join(current).strip():
            passages.append("".join(current))
            current = []
        current.append(line)
    passages.append("".join(current))
    return [passage.strip() + "\n" for passage in passages]


def korean_plain_passages(text: str) -> list[tuple[str | None, str]]:
    """A Korean plain page: (recorded hash, text) for each passage that follows a block break."""
    found: list[tuple[str | None, list[str]]] = []
    for line in text.splitlines(keepends=True):
        match = BLOCK_BREAK.match(line)
        if match:
            found.append((json.loads(match.group(1)).get(HASH_KEY), []))
        elif found:
            found[-1][1].append(line)
        elif line.strip():
            found.append((None, [line]))
    return [(recorded, "".join(lines).strip() + "\n") for recorded, lines in found]


def write_plain(passages: list[tuple[str | None, str]]) -> str:
    blocks = []
    for recorded, text in passages:
        marker = json.dumps({HASH_KEY: recorded}) if recorded else "{}"
        blocks.append(f"+++ {marker}\n\n{text.strip()}\n")
    return "\n".join(blocks)


def _cell_signature(cell) -> tuple:
    return ("code", code_tokens(cell.source)) if cell.cell_type == "code" else ("markdown",)


def _aligned(english_cells: list, korean_cells: list) -> dict[int, int]:
    """English cell index -> Korean cell index: code cells matched by their code, the Markdown between them,
    and in a stretch where cells of the same types differ in code, each with the one at its place."""
    english, korean = [_cell_signature(c) for c in english_cells], [_cell_signature(c) for c in korean_cells]
    pairs = {}
    for tag, a0, a1, b0, b1 in difflib.SequenceMatcher(a=english, b=korean, autojunk=False).get_opcodes():
        same_types = [c.cell_type for c in english_cells[a0:a1]] == [c.cell_type for c in korean_cells[b0:b1]]
        if tag == "equal" or (tag == "replace" and same_types):
            pairs.update(zip(range(a0, a1), range(b0, b1)))
    return pairs


def page_status(page: str, root: Path = ROOT) -> PageStatus:
    english_path, korean = root / f"{page}.md", korean_path(page, root)
    status = PageStatus(page)
    if not korean.exists():
        status.problems.append(f"{korean.relative_to(root)} is missing: run `python -m tools.translation sync`")
        return status
    if not is_notebook(english_path):
        english = plain_passages(english_path.read_text(encoding="utf-8"))
        translated = korean_plain_passages(korean.read_text(encoding="utf-8"))
        if len(translated) != len(english):
            status.problems.append(f"{len(english)} English passages but {len(translated)} Korean ones: run sync")
        for index, text in enumerate(english):
            recorded, korean_text = translated[index] if index < len(translated) else (None, None)
            status.passages.append(Passage(f"passage {index + 1}", text, korean_text, recorded))
        return status

    english_cells, korean_cells = jupytext.read(english_path).cells, jupytext.read(korean).cells
    if [_cell_signature(c) for c in english_cells] != [_cell_signature(c) for c in korean_cells]:
        status.problems.append("cells differ from the English notebook's (code or order): run sync")
    pairs = _aligned(english_cells, korean_cells)
    for index, cell in enumerate(english_cells):
        twin = korean_cells[pairs[index]] if index in pairs else None
        where = f"cell {index}"
        if cell.cell_type == "markdown":
            status.passages.append(
                Passage(where, cell.source, twin.source if twin else None, twin.metadata.get(HASH_KEY) if twin else None)
            )
            continue
        if twin is not None and untranslated_metadata(twin.metadata) != untranslated_metadata(cell.metadata):
            status.problems.append(f"{where}: metadata differs from the English cell's beyond the translated text")
        if _code_text(cell):
            status.passages.append(
                Passage(
                    f"{where} (code comments, caption, alt text, prompts)",
                    _code_text(cell),
                    _code_text(twin) if twin else None,
                    twin.metadata.get(HASH_KEY) if twin else None,
                    code=True,
                )
            )
    return status


# --- sync: code and outputs into the Korean twins --------------------------------------------


def _korean_notebook(english_path: Path, korean: Path):
    """The Korean notebook as it should be: English code, Korean text and comments where there are some.

    A Korean code cell whose code is not the English cell's is replaced by the English source;
    if that has comments, the cell's translation is then missing (its hash is dropped)."""
    english = jupytext.read(english_path)
    korean_cells = jupytext.read(korean).cells if korean.exists() else []
    pairs = _aligned(english.cells, korean_cells)
    result = copy.deepcopy(english)
    for index, cell in enumerate(result.cells):
        twin = korean_cells[pairs[index]] if index in pairs else None
        if twin is None:
            continue
        if cell.cell_type == "markdown":
            cell.source = twin.source
            if HASH_KEY in twin.metadata:
                cell.metadata[HASH_KEY] = twin.metadata[HASH_KEY]
            continue
        same_code = code_tokens(twin.source) == code_tokens(cell.source)
        if same_code:
            cell.source = twin.source
        for dotted, value in translated_metadata(twin.metadata).items():
            if _get(cell.metadata, tuple(dotted.split("."))) is not None:
                _set(cell.metadata, tuple(dotted.split(".")), value)
        if HASH_KEY in twin.metadata and (same_code or not code_comments(cell.source)):
            cell.metadata[HASH_KEY] = twin.metadata[HASH_KEY]
    return result


def korean_ipynb(english_ipynb: Path, korean_notebook) -> nbformat.NotebookNode:
    """The English stored notebook (code and verified outputs) with the Korean text, comments and metadata put in."""
    stored = jupytext.read(english_ipynb)
    if len(stored.cells) != len(korean_notebook.cells):
        raise ValueError(f"{english_ipynb} has {len(stored.cells)} cells, its Korean twin {len(korean_notebook.cells)}")
    for cell, twin in zip(stored.cells, korean_notebook.cells):
        if cell.cell_type != twin.cell_type or (cell.cell_type == "code" and code_tokens(cell.source) != code_tokens(twin.source)):
            raise ValueError(f"{english_ipynb} holds other code than its .md: run `make execute` (or `make sync` after editing the .ipynb)")
        cell.source = twin.source
        cell.metadata = copy.deepcopy(twin.metadata)
    return stored


def sync(root: Path = ROOT) -> list[Path]:
    """Bring every Korean twin in step with its English page, and the glossary page with the glossary;
    returns the files written."""
    targets = {korean_path(GLOSSARY_PAGE, root): glossary_page(root)}
    for page in pages(root / "_toc.yml"):
        english_path, korean = root / f"{page}.md", korean_path(page, root)
        if is_notebook(english_path):
            notebook = _korean_notebook(english_path, korean)
            targets[korean] = jupytext.writes(notebook, fmt="md:myst")
            english_ipynb = english_path.with_suffix(".ipynb")
            if english_ipynb.exists():
                stored = korean_ipynb(english_ipynb, notebook)
                targets[korean.with_suffix(".ipynb")] = jupytext.writes(stored, fmt="ipynb")
        else:
            english = plain_passages(english_path.read_text(encoding="utf-8"))
            translated = korean_plain_passages(korean.read_text(encoding="utf-8")) if korean.exists() else []
            merged = [translated[i] if i < len(translated) else (None, text) for i, text in enumerate(english)]
            targets[korean] = write_plain(merged)
    written = []
    for target, text in targets.items():
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written


def out_of_sync(root: Path = ROOT) -> list[str]:
    """Korean files that `sync` would rewrite (code or outputs not those of the English page, an old glossary page)."""
    problems = []
    glossary_path = korean_path(GLOSSARY_PAGE, root)
    if not glossary_path.exists() or glossary_path.read_text(encoding="utf-8") != glossary_page(root):
        problems.append(f"{glossary_path.relative_to(root)}: not written from the current {GLOSSARY}")
    for page in pages(root / "_toc.yml"):
        english_path, korean = root / f"{page}.md", korean_path(page, root)
        if not korean.exists() or not is_notebook(english_path):
            continue
        notebook = _korean_notebook(english_path, korean)
        if jupytext.writes(notebook, fmt="md:myst") != korean.read_text(encoding="utf-8"):
            problems.append(f"{korean.relative_to(root)}: its code cells are not the English page's (comments aside)")
        stored = korean.with_suffix(".ipynb")
        english_ipynb = english_path.with_suffix(".ipynb")
        if not english_ipynb.exists():
            continue  # a page executed at build time (data-sources): no stored notebook to copy
        expected = jupytext.writes(korean_ipynb(english_ipynb, notebook), fmt="ipynb")
        if not stored.exists() or stored.read_text(encoding="utf-8") != expected:
            problems.append(f"{stored.relative_to(root)}: not the English stored notebook with the Korean text")
    return problems


def mark_translated(page: str, numbers: list[int], root: Path = ROOT) -> list[str]:
    """Record that the Korean passages ``numbers`` (cell indices; passage numbers on plain pages) now
    translate the current English text: their ``en`` becomes its hash. Run it after translating them."""
    english_path, korean = root / f"{page}.md", korean_path(page, root)
    marked = []
    if not is_notebook(english_path):
        english = plain_passages(english_path.read_text(encoding="utf-8"))
        translated = korean_plain_passages(korean.read_text(encoding="utf-8"))
        for number in numbers:
            translated[number - 1] = (text_hash(english[number - 1]), translated[number - 1][1])
            marked.append(f"passage {number}")
        korean.write_text(write_plain(translated), encoding="utf-8")
        return marked
    english_cells = jupytext.read(english_path).cells
    notebook = jupytext.read(korean)
    pairs = _aligned(english_cells, notebook.cells)
    for number in numbers:
        cell, twin = english_cells[number], notebook.cells[pairs[number]]
        if cell.cell_type == "code" and code_tokens(twin.source) != code_tokens(cell.source):
            raise ValueError(f"{page}: cell {number} has other code than the English cell: run sync first")
        twin.metadata[HASH_KEY] = text_hash(cell.source if cell.cell_type == "markdown" else _code_text(cell))
        marked.append(f"cell {number}")
    korean.write_text(jupytext.writes(notebook, fmt="md:myst"), encoding="utf-8")
    return marked


# --- the glossary ---------------------------------------------------------------------------

GLOSSARY_INTRO = """\
이 책의 한국어판은 영어 용어 하나에 한국어 용어 하나만 씁니다. 같은 개념이 장마다 다른 이름으로 나오면
다른 개념으로 읽히기 쉽기 때문입니다. 용어가 책에서 처음 나올 때 괄호 안에 영어를 함께 적고
(예: 그레이디언트(gradient)), 몇 장 뒤에 다시 만나는 독자를 위해 한 번 더 적기도 합니다.

번역어는 대부분 PyTorch 한국어 튜토리얼(아래 표의 "튜토리얼")과 강의 노트·교재("교재")가 함께 쓰는 말을
따랐지만, 몇 가지는 이 책이 고른 것입니다. gradient는 튜토리얼의 *변화도*도, 교재에 흔한 *기울기*도 아닌
*그레이디언트*로 씁니다. 기울기는 직선의 기울기(slope)와 헷갈리고, 영어 음을 적으면 PyTorch의 `grad`와도
바로 이어지기 때문입니다. parameter는 튜토리얼의 *매개변수* 대신 *파라미터*로 씁니다. 함수의 매개변수와
모델이 학습하는 값을 구별하고, 코드의 `parameters()`와 맞추기 위해서입니다. training은 튜토리얼의
*학습* 대신 *훈련*으로 씁니다(훈련 세트, 훈련 손실). *학습*은 학습률(learning rate)에 씁니다.
다른 자료에서 변화도, 기울기, 매개변수, 학습 데이터를 만나면 이 책의 그레이디언트, 파라미터, 훈련 세트와
같은 말입니다.
"""


def glossary(root: Path = ROOT) -> list[dict]:
    """The rows of ko/glossary.csv, each a dict of its columns."""
    with (root / GLOSSARY).open(encoding="utf-8") as stream:
        return list(csv.DictReader(line for line in stream if not line.startswith("#")))


def glossary_page(root: Path = ROOT) -> str:
    """The Korean glossary page, ko/glossary.md: the introduction above and every term, in Korean order."""
    rows = ["| 용어 | English | 다른 자료에서 만나는 표기 |", "| --- | --- | --- |"]
    for term in sorted(glossary(root), key=lambda term: term["korean"]):
        elsewhere = ", ".join(variant.strip() for variant in term["elsewhere"].split(";") if variant.strip())
        rows.append(f"| {term['korean']} | {term['english']} | {elsewhere} |")
    header = f"% Written by `python -m tools.translation sync` from {Path(GLOSSARY).name} and GLOSSARY_INTRO in tools/translation.py: edit those."
    return f"{header}\n\n# 용어집\n\n{GLOSSARY_INTRO}\n" + "\n".join(rows) + "\n"


# --- the Korean book's configuration -----------------------------------------------------


def _merged(base, override):
    """``override`` laid over ``base``: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merged(base.get(key), value) if key in base else value
        return merged
    return override


def edition_config(root: Path = ROOT) -> dict:
    """The Korean book's _config.yml: the English one with ko/edition.yml laid over it."""
    english = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    changes = yaml.safe_load((root / EDITION / "edition.yml").read_text(encoding="utf-8"))
    return _merged(english, changes)


def write_edition_config(target: Path, root: Path = ROOT) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated by `python -m tools.translation config` from _config.yml and ko/edition.yml: edit those.\n"
    target.write_text(header + yaml.safe_dump(edition_config(root), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


# --- reports ------------------------------------------------------------------------------


def report(root: Path = ROOT, verbose: bool = False) -> tuple[str, bool]:
    """The coverage table, and whether everything is translated and in step."""
    lines = [f"{'page':42} {'translated':>10} {'stale':>6} {'missing':>8}"]
    complete = True
    totals = [0, 0, 0, 0]
    for page in pages(root / "_toc.yml"):
        status = page_status(page, root)
        counts = [status.count("translated"), status.count("stale"), status.count("untranslated"), len(status.passages)]
        totals = [a + b for a, b in zip(totals, counts)]
        lines.append(f"{page:42} {counts[0]:>4}/{counts[3]:<5} {counts[1]:>6} {counts[2]:>8}")
        for problem in status.problems:
            lines.append(f"    problem: {problem}")
        for passage in status.passages:
            if passage.state != "translated":
                first_line = passage.english.strip().splitlines()[0][:70] if passage.english.strip() else ""
                lines.append(f"    {passage.state}: {passage.where}: {first_line!r}")
                if verbose:
                    lines.append(f"        hash of the current English text: {text_hash(passage.english)}")
        complete &= counts[0] == counts[3] and not status.problems
    share = 100 * totals[0] / totals[3] if totals[3] else 100.0
    lines.append(f"{'all pages':42} {totals[0]:>4}/{totals[3]:<5} {totals[1]:>6} {totals[2]:>8}   ({share:.1f}% translated)")
    return "\n".join(lines), complete


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "sync":
        for path in sync():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if command == "mark" and len(argv) >= 3:
        for where in mark_translated(argv[1], [int(number) for number in argv[2:]]):
            print(f"{argv[1]}: {where} marked as translating the current English text")
        return 0
    if command == "config":
        print(write_edition_config(Path(argv[1]) if len(argv) > 1 else ROOT / "_build" / "ko-config.yml"))
        return 0
    if command in ("status", "check"):
        text, complete = report(verbose="--verbose" in argv)
        print(text)
        behind = out_of_sync()
        for problem in behind:
            print(f"out of step: {problem}")
        if command == "check" and not (complete and not behind):
            print("The Korean edition is behind the English one: translate or update the passages above "
                  "(their `en` hash is that of the English text they translate; see running.md).")
            return 1
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
