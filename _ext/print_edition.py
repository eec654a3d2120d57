"""Sphinx extension: the book as a PDF (`make pdf`), through Jupyter Book's LaTeX route.

sphinx-jupyterbook-latex typesets the book with its own document class, ``jupyterBook.cls``,
which loads ``bbm`` for seven blackboard-bold shortcuts (``\\RR``, ``\\NN``, ...). No page of
this book uses them, and Debian ships ``bbm.sty`` only in ``texlive-fonts-extra``, a
gigabyte of fonts: the class this extension leaves in the LaTeX folder defines those
shortcuts with amssymb's ``\\mathbb`` instead, and loads nothing else differently.

On paper nothing folds. sphinx-jupyterbook-latex drops the cells tagged ``hide-cell``
from the PDF, and those are the exercises' worked solutions: this extension keeps them,
each under a heading that says what it is (``print_solution_label``, one per edition), as
the site keeps them behind "Show solution". The prose about a solution, in a dropdown on
the site, is a titled box in the PDF.

Hangul is set with kotex (Debian's ``texlive-lang-korean``) in the Nanum fonts
(``fonts-nanum``), in both editions (the English one names the Korean edition in Korean):
Sphinx has no LaTeX set-up for Korean of its own. sphinx-jupyterbook-latex's preamble also
loads ucharclasses, with no font assigned to any class; its character-class transitions
override kotex's, and a Hangul character after a Latin one then comes out as an empty box
("Autograd와"): this extension leaves it out. Sections are numbered to the same depth
as on the site (chapters and their sections), so that the numbers agree; the pages of the
book's last part (Reference), which the site leaves unnumbered, are the PDF's appendices
(A, B, ...), as in a printed book.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from docutils import nodes
from sphinx.builders.latex import LaTeXBuilder
from sphinx.errors import ExtensionError
from sphinx.locale import __
from sphinx.transforms.post_transforms import SphinxPostTransform

CLASS_FILE = "jupyterBook.cls"
BBM = "\\RequirePackage{bbm}\n"

NO_BABEL = "no Babel option known for language %r"  # Sphinx's message, translated as Sphinx translates it
HIDDEN_CELL = "tag_hide-cell"
UCHARCLASSES = "\\usepackage[Latin,Greek]{ucharclasses}"

# Chapter headings: "Chapter 1" (or "Appendix A") over the title, between two rules, in the
# heading font; fncychap, Sphinx's default, spells the number out ("CHAPTER ONE") and has
# no place for the word Korean puts after it.
CHAPTER_HEADINGS = r"""
\makeatletter
\def\@makechapterhead#1{\vspace*{30\p@}{\parindent\z@\raggedleft\normalfont\sffamily
  \ifnum\c@secnumdepth>\m@ne\Large\@chapapp\ \thechapter\ifdefined\@chappos\ \@chappos\fi\par\nobreak\vskip 10\p@\fi
  \interlinepenalty\@M\rule{\textwidth}{1pt}\par\vskip 10\p@\Huge\bfseries #1\par\nobreak
  \vskip 10\p@\rule{\textwidth}{1pt}\par\nobreak\vskip 30\p@}}
\makeatother
"""

# The Korean edition's names, after sphinx-jupyterbook-latex's (which name the contents in
# English): 차례, 제 1 부, 부록 A, and chapters as Korean books number them, 제 1 장, in the
# heading and in the running foot (Sphinx's page style adds \@chappos, as for Japanese).
KOREAN_NAMES = r"""
\addto\captionsenglish{\renewcommand{\contentsname}{차례}\renewcommand{\partname}{제}%
  \renewcommand{\chaptername}{제}\renewcommand{\appendixname}{부록}}
\renewcommand{\thepart}{\arabic{part}~부}
\makeatletter
\def\@chappos{장}
\g@addto@macro\appendix{\gdef\@chappos{}}
\makeatother
"""

# kotex under XeLaTeX: Hangul in Nanum Myeongjo, headings in Nanum Gothic, code in Nanum
# Gothic Coding. Curly quotes are ordinary characters (XeTeX's class 0), set in the text's
# font: kotex classes them as Korean punctuation, set in the Hangul font with a gap after
# them ("PyTorch’ s"). Chapters and sections numbered, as on the site, not their
# subsections. No running head on the page after the contents (the front page).
PREAMBLE = r"""
\usepackage{kotex}
\XeTeXcharclass"2018=0 \XeTeXcharclass"2019=0 \XeTeXcharclass"201C=0 \XeTeXcharclass"201D=0
\setmainhangulfont{NanumMyeongjo}
\setsanshangulfont{NanumGothic}
\setmonohangulfont{NanumGothicCoding}
\setcounter{secnumdepth}{1}
\makeatletter
\g@addto@macro\sphinxtableofcontents{\markboth{}{}}
\makeatother
"""


def _finish_latex(app, exception):
    if exception is not None or not isinstance(app.builder, LaTeXBuilder):
        return
    _class_without_bbm(Path(app.outdir, CLASS_FILE))
    for document in app.config.latex_documents:
        _last_part_as_appendices(Path(app.outdir, document[1]))


def _last_part_as_appendices(path):
    text = path.read_text(encoding="utf-8")
    parts = re.findall(r"^\\part\{.*\}$", text, flags=re.MULTILINE)
    if len(parts) < 2:
        raise ExtensionError(f"{path}: expected the book's parts as \\part{{...}} lines, found {parts}")
    last = text.rindex("\n" + parts[-1] + "\n")
    path.write_text(text[:last] + "\n\\appendix" + text[last:], encoding="utf-8")


def _class_without_bbm(path):
    text = path.read_text(encoding="utf-8")
    if BBM not in text:
        raise ExtensionError(f"{path} no longer loads bbm as this extension expects: see _ext/print_edition.py")
    text = text.replace(BBM, "").replace("\\mathbbm", "\\mathbb")
    path.write_text(text, encoding="utf-8")


class KeepSolutions(SphinxPostTransform):
    """In the PDF, a hide-cell cell stays, under a heading: before sphinx-jupyterbook-latex drops it (priority 400)."""

    default_priority = 390
    formats = ("latex",)

    def run(self, **kwargs):
        for cell in list(self.document.findall(nodes.container)):
            if HIDDEN_CELL in cell["classes"]:
                cell["classes"].remove(HIDDEN_CELL)
                label = self.config.print_solution_label
                if not label:
                    raise ExtensionError("print_solution_label is not set: the PDF has no label for a solution")
                cell.parent.insert(cell.parent.index(cell), nodes.rubric(label, label))


class _KoreanNeedsNoBabel(logging.Filter):
    """Sphinx warns that Babel has no Korean; kotex does for Korean what Babel would. Any other warning stays."""

    def filter(self, record):
        return not (str(record.msg) == str(__(NO_BABEL)) and record.args == ("ko",))


def _preamble(app, config):
    """Runs after sphinx-jupyterbook-latex has added its preamble."""
    elements = dict(config.latex_elements)
    preamble = elements.get("preamble", "")
    if UCHARCLASSES not in preamble:
        raise ExtensionError("sphinx-jupyterbook-latex no longer loads ucharclasses as expected: see _ext/print_edition.py")
    elements["preamble"] = PREAMBLE + preamble.replace(UCHARCLASSES, "") + CHAPTER_HEADINGS
    elements["fncychap"] = ""
    if config.language == "ko":
        for source in ("sphinx.sphinx.builders.latex", "sphinx.sphinx.writers.latex"):  # where Sphinx warns of it
            logging.getLogger(source).addFilter(_KoreanNeedsNoBabel())
        elements["preamble"] += KOREAN_NAMES
    config.latex_elements = elements


def setup(app):
    app.add_config_value("print_solution_label", None, "env", types=[str])  # set by each edition's configuration
    app.add_post_transform(KeepSolutions)
    app.connect("config-inited", _preamble, priority=900)
    app.connect("build-finished", _finish_latex)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
