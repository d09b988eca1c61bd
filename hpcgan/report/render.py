"""The pages' HTML from their views, through the Jinja2 templates in templates/ with autoescaping:
every value is escaped where it is written, so a run name or a config value holding `<`, `&` or a
quote shows as text. The stylesheet and the sort script (static/) are copied into each page, so a
page is one file that opens offline; its images are files beside it."""

from __future__ import annotations

from functools import cache
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from hpcgan.report.run_view import RunView
from hpcgan.report.sweep_view import SweepView


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("hpcgan.report", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,  # a misspelt field fails the render, not a blank on the page
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@cache
def static(name: str) -> Markup:
    """A file of ours from static/, to inline in <style> or <script>. Markup: these are raw text
    elements, where escaping would change the code (and nothing in them comes from a run)."""
    return Markup(resources.files("hpcgan.report").joinpath("static", name).read_text(encoding="utf-8"))


def run_page(view: RunView) -> str:
    return environment().get_template("run.html").render(view=view, css=static("report.css"))


def sweep_page(view: SweepView) -> str:
    return environment().get_template("sweep.html").render(view=view, css=static("report.css"),
                                                           script=static("sort.js"))  # fmt: skip
