"""Static checks of our addons against Odoo 17.0 rules that linters do not know.

Usage: python3 .ci/check_addons.py MODULE [MODULE ...]   (exit 1 on any problem)
"""

import ast
import pathlib
import re
import sys
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parent.parent
VERSION = re.compile(r"^17\.0\.\d+\.\d+\.\d+$")
REQUIRED = ("name", "version", "license", "author", "category", "summary", "depends", "data")
READMES = ("DESCRIPTION.md", "USAGE.md", "CONFIGURE.md")


def check_module(name):
    problems = []
    module = ROOT / name
    manifest_path = module / "__manifest__.py"
    if not manifest_path.exists():
        return ["%s: no __manifest__.py" % name]
    manifest = ast.literal_eval(manifest_path.read_text())
    for key in REQUIRED:
        if key not in manifest:
            problems.append("%s: manifest misses %r" % (name, key))
    if not VERSION.match(manifest.get("version", "")):
        problems.append("%s: version %r is not 17.0.x.y.z" % (name, manifest.get("version")))
    if manifest.get("license") != "LGPL-3":
        problems.append("%s: license must be LGPL-3" % name)
    for key in ("data", "demo"):
        for path in manifest.get(key, []):
            if not (module / path).exists():
                problems.append("%s: %s file %s does not exist" % (name, key, path))
    for fragment in READMES:
        if not (module / "readme" / fragment).exists():
            problems.append("%s: readme/%s is missing" % (name, fragment))
    if not (module / "static" / "description" / "index.html").exists():
        problems.append("%s: static/description/index.html is missing" % name)
    declared = set(manifest.get("data", [])) | set(manifest.get("demo", []))
    problems += check_xml(name, module, declared)
    problems += check_sources(name, module)
    return problems


def check_xml(name, module, declared):
    problems = []
    for xml in sorted(module.rglob("*.xml")):
        rel = xml.relative_to(module).as_posix()
        try:
            tree = ET.parse(xml)
        except ET.ParseError as exc:
            problems.append("%s: %s is not well-formed XML: %s" % (name, rel, exc))
            continue
        if (
            rel.startswith(("data/", "views/", "security/", "wizard/", "demo/"))
            and rel not in declared
        ):
            problems.append("%s: %s is not loaded by the manifest" % (name, rel))
        for element in tree.iter():
            for attr in ("attrs", "states"):
                if attr in element.attrib and element.tag != "attribute":
                    problems.append("%s: %s uses %s= (gone in 17.0)" % (name, rel, attr))
            if element.tag == "list" and rel.startswith("views/"):
                problems.append("%s: %s uses <list> (17.0 lists are <tree>)" % (name, rel))
            if element.tag == "record" and element.get("model") == "ir.cron":
                fields = {f.get("name"): f for f in element.findall("field")}
                numbercall = fields.get("numbercall")
                if numbercall is None or (numbercall.text or "").strip() != "-1":
                    problems.append(
                        "%s: cron %s needs numbercall -1 (17.0 default is 1)"
                        % (name, element.get("id"))
                    )
    return problems


def check_sources(name, module):
    problems = []
    for js in (
        sorted((module / "static" / "src").rglob("*.js"))
        if (module / "static" / "src").exists()
        else []
    ):
        first = js.read_text().lstrip().splitlines()[:1]
        if not first or "@odoo-module" not in first[0]:
            problems.append(
                "%s: %s must start with /** @odoo-module **/ (17.0)"
                % (name, js.relative_to(module))
            )
        text = js.read_text()
        if re.search(r"from\s+[\"']@web/core/network/rpc[\"']", text):
            problems.append(
                "%s: %s imports @web/core/network/rpc (17.1+); use useService('rpc')"
                % (name, js.relative_to(module))
            )
    for py in sorted(module.rglob("*.py")):
        text = py.read_text()
        if re.search(r"^\s*print\(", text, re.M):
            problems.append("%s: %s uses print()" % (name, py.relative_to(module)))
        if re.search(r"^\s*except\s*:", text, re.M):
            problems.append("%s: %s has a bare except" % (name, py.relative_to(module)))
    return problems


def main(modules):
    problems = [p for m in modules for p in check_module(m)]
    for problem in problems:
        print(problem)
    print("checked %s modules: %s problems" % (len(modules), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
