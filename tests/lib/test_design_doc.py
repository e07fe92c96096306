"""DESIGN.md stays true mechanically (cheap: reads files, runs nothing).

- every repository path DESIGN.md names exists;
- every C file of agent/, collector/, common/ and proto/ is named in its
  "Module map" section;
- every section a source comment cites by name (DESIGN.md "Hot path
  budget", DESIGN: "replaced, never rejected") exists in DESIGN.md, as a
  heading or as the quoted words.
"""

import os
import re

SOURCE = os.environ.get(
    "SLUICE_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DESIGN = os.path.join(SOURCE, "DESIGN.md")
SRC_DIRS = ("agent", "collector", "common", "proto")
# Top-level directories whose paths DESIGN.md may name.
PATH_DIRS = SRC_DIRS + ("tests", "bench", "tools", "scripts", "deploy")
PATH_RE = re.compile(r"(?<![\w/.-])((?:%s)/[\w./\[\]-]*[\w\]])"
                     % "|".join(PATH_DIRS))
CITE_RE = re.compile(r'DESIGN(?:\.md)?:?\s*"([^"]+)"')


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def squash(text):
    """Comment leaders and runs of whitespace become one space."""
    text = re.sub(r"\n\s*(?:\*|//|#)?\s*", " ", text)
    return re.sub(r"\s+", " ", text)


def expand(path):
    """`sl_lj.[ch]` names two files."""
    m = re.search(r"\[(\w+)\]", path)
    if not m:
        return [path]
    return [path[:m.start()] + c + path[m.end():] for c in m.group(1)]


def section(text, title):
    m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(title), text,
                  re.S | re.M)
    assert m, "DESIGN.md has no section '## %s'" % title
    return m.group(1)


def test_named_paths_exist():
    text = read(DESIGN)
    missing = []
    for raw in sorted(set(PATH_RE.findall(text))):
        if "<" in raw or "*" in raw:
            continue  # a pattern (<dataset>/..., *.seg), not a file
        for p in expand(raw.rstrip(".")):
            if not os.path.exists(os.path.join(SOURCE, p)):
                missing.append(p)
    assert not missing, ("DESIGN.md names paths that do not exist (rename "
                         "them there): %s" % ", ".join(missing))


def test_module_map_names_every_c_file():
    text = section(read(DESIGN), "Module map")
    named = set()
    for raw in PATH_RE.findall(text):
        named.update(expand(raw.rstrip(".")))
    unmapped = []
    for d in SRC_DIRS:
        for name in sorted(os.listdir(os.path.join(SOURCE, d))):
            if name.endswith(".c") and "%s/%s" % (d, name) not in named:
                unmapped.append("%s/%s" % (d, name))
    assert not unmapped, ("add a line for each of these to DESIGN.md's "
                          "\"Module map\": %s" % ", ".join(unmapped))


def citations():
    """(file, cited words) for every DESIGN citation outside DESIGN.md."""
    out = []
    for top in SRC_DIRS + ("bench", "tests", "tools", "scripts"):
        for root, dirs, files in os.walk(os.path.join(SOURCE, top)):
            dirs[:] = [d for d in dirs if not d.startswith("corpus")]
            for name in files:
                if not name.endswith((".c", ".h", ".py", ".md", ".sh")):
                    continue
                path = os.path.join(root, name)
                if os.path.abspath(path) == os.path.abspath(__file__):
                    continue
                try:
                    text = read(path)
                except UnicodeDecodeError:
                    continue
                if "DESIGN" not in text:
                    continue
                for words in CITE_RE.findall(squash(text)):
                    out.append((os.path.relpath(path, SOURCE), words))
    out += [("README.md", w) for w in CITE_RE.findall(
        squash(read(os.path.join(SOURCE, "README.md"))))]
    return out


def test_cited_sections_exist():
    text = read(DESIGN)
    headings = {h.strip().lower() for h in
                re.findall(r"^#+\s+(.*)$", text, re.M)}
    body = squash(text).lower()
    cites = citations()
    assert cites, "found no DESIGN citation at all: the scan is broken"
    bad = ["%s: %r" % (f, w) for f, w in cites
           if w.strip().lower() not in headings
           and squash(w).strip().lower() not in body]
    assert not bad, ("cited but not in DESIGN.md (add the section or fix "
                     "the citation): %s" % "; ".join(bad))


def test_no_citation_outside_the_repository():
    bad = []
    for top in SRC_DIRS + ("bench", "tests", "tools", "scripts"):
        for root, _, files in os.walk(os.path.join(SOURCE, top)):
            for name in files:
                if not name.endswith((".c", ".h", ".py", ".md", ".sh")):
                    continue
                path = os.path.join(root, name)
                try:
                    if "shared/" + "DESIGN.md" in read(path):
                        bad.append(os.path.relpath(path, SOURCE))
                except UnicodeDecodeError:
                    pass
    assert not bad, "DESIGN.md is at the repository root: %s" % bad
