#!/usr/bin/env python
"""Generate docs/hooks.md, the hook reference, from nas_core/hookspecs.py.

    python scripts/gen_hook_docs.py           # rewrite docs/hooks.md
    python scripts/gen_hook_docs.py --check   # exit 1 if docs/hooks.md is out of date

Everything comes from the hookspecs module: its docstring (overview, method mapping, lifecycle
order, versioning), its banner comments (phases), and each spec's signature, docstring and
pluggy options (firstresult, historic, deprecated arguments). tests/test_plugin_kit.py fails
when the committed page differs from what this script renders.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "hooks.md"
BANNER = re.compile(r"^# -{20,}\s*$")


def rst_inline(text: str) -> str:
    """``code`` -> `code`; :mod:`x` / :class:`x` / :meth:`x` -> `x`."""
    text = re.sub(r":(?:mod|class|meth|func|data|attr|ref):`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def rst_to_markdown(doc: str, heading: str = "##") -> str:
    """The small subset of reStructuredText our docstrings use, as Markdown."""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"=+", nxt.strip() or "x") and len(nxt.strip()) >= len(line.strip()):
            out += [f"{heading} {line.strip()}", ""]
            i += 2
            continue
        if re.fullmatch(r"=+( +=+)+", line.strip()):  # a simple table: keep it verbatim
            rules, block = 0, []
            while i < len(lines) and rules < 3:
                if re.fullmatch(r"=+( +=+)+", lines[i].strip()):
                    rules += 1
                block.append(lines[i])
                i += 1
            out += ["```text", *block, "```"]
            continue
        if line.rstrip().endswith("::"):
            text = line.rstrip()[:-2].rstrip()
            if text:
                out.append(rst_inline(text) + ":")
            out += ["", "```text"]
            i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            while block and not block[0].strip():
                block.pop(0)
            indent = min((len(b) - len(b.lstrip()) for b in block if b.strip()), default=0)
            out += [b[indent:] for b in block] + ["```", ""]
            continue
        out.append(rst_inline(line))
        i += 1
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def phases(module: ModuleType) -> list[tuple[str, list[str]]]:
    """(phase title and text from the banner comment, hook names in file order)."""
    source = inspect.getsource(module)
    lines = source.splitlines()
    tree = ast.parse(source)
    hooks = {node.lineno: node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("nas_")}
    for node in tree.body:  # decorated functions: use the decorator's line
        if isinstance(node, ast.FunctionDef) and node.decorator_list and node.name.startswith("nas_"):
            hooks[min(d.lineno for d in node.decorator_list)] = hooks.pop(node.lineno)
    result: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(lines):
        if BANNER.match(lines[i]):
            j = i + 1
            comment = []
            while j < len(lines) and not BANNER.match(lines[j]):
                comment.append(lines[j].lstrip("#").strip())
                j += 1
            result.append((" ".join(comment), []))
            i = j + 1
            continue
        if (i + 1) in hooks:
            if not result:
                result.append(("Hooks", []))
            result[-1][1].append(hooks[i + 1])
        i += 1
    return result


def phase_title(banner: str) -> tuple[str, str]:
    """'Lifecycle: supernet training. Broadcast; ...' -> ('Lifecycle: supernet training', 'Broadcast; ...')."""
    head, _, rest = banner.partition(". ")
    return head.strip().rstrip("."), rest.strip()


def signature(function) -> str:
    sig = inspect.signature(function)
    params = ", ".join(f"{p.name}: {p.annotation}" if p.annotation is not inspect.Parameter.empty else p.name for p in sig.parameters.values())
    ret = f" -> {sig.return_annotation}" if sig.return_annotation is not inspect.Signature.empty else ""
    return f"def {function.__name__}({params}){ret}"


def spec_options(module: ModuleType, function) -> dict:
    project = getattr(module, "PROJECT_NAME", None) or "nas_core"
    return getattr(function, f"{project}_spec", None) or {}


def render(module: ModuleType | None = None) -> str:
    if module is None:
        from nas_core import hookspecs as module  # noqa: PLW0127
    title, _, body = rst_to_markdown(module.__doc__ or "").partition("\n")
    out = [
        "# Hook reference",
        "",
        "<!-- Generated by scripts/gen_hook_docs.py from nas_core/hookspecs.py. Do not edit by hand:",
        "     change the hookspecs and run `python scripts/gen_hook_docs.py`. -->",
        "",
        title,
        "",
        body.strip(),
        "",
        "Which installed plugin implements which hook: `nas plugins --hooks`. How to write a plugin:",
        "[writing-a-plugin.md](writing-a-plugin.md).",
        "",
        "## Index",
        "",
        "| hook | phase | summary |",
        "|------|-------|---------|",
    ]
    groups = phases(module)
    for phase, names in groups:
        short = phase_title(phase)[0].split(":")[0]
        for name in names:
            doc = inspect.cleandoc(getattr(module, name).__doc__ or "").split("\n\n")[0].replace("\n", " ")
            first = re.split(r"(?<=\.)\s+(?=[A-Z`])", doc)[0]
            summary = rst_inline(first).replace("|", "\\|")
            out.append(f"| [`{name}`](#{name}) | {short} | {summary} |")
    for phase, names in groups:
        head, rest = phase_title(phase)
        out += ["", f"## {head}", ""]
        if rest.strip():
            out += [rst_inline(rest.strip()), ""]
        for name in names:
            function = getattr(module, name)
            options = spec_options(module, function)
            out += [f"### {name}", "", "```python", signature(function), "```", ""]
            out.append(rst_to_markdown(function.__doc__ or "(undocumented)").strip())
            flags = [label for key, label in (("firstresult", "stops at the first non-None result"), ("historic", "historic: replayed to late-registered plugins")) if options.get(key)]
            if flags:
                out += ["", "*" + "; ".join(flags) + "*"]
            deprecated = options.get("warn_on_impl_args") or {}
            if options.get("warn_on_impl"):
                out += ["", f"**Deprecated:** {options['warn_on_impl']}"]
            if deprecated:
                out += ["", "**Deprecated arguments:**", ""]
                out += [f"- `{arg}`: {warning}" for arg, warning in sorted(deprecated.items())]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/hooks.md is out of date")
    parser.add_argument("--output", default=str(OUTPUT))
    args = parser.parse_args(argv)
    text = render()
    path = Path(args.output)
    if args.check:
        if not path.is_file() or path.read_text() != text:
            print(f"{path} is out of date: run python scripts/gen_hook_docs.py", file=sys.stderr)
            return 1
        print(f"{path}: up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
