#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the shape of the code (issue 10): layers, no include circles, one owner per table,
no SQL in handlers.

Usage: tools/check-layers.py [SOURCE_ROOT]   (default: the folder above tools/)
       tools/check-layers.py --graph [SOURCE_ROOT]   also prints broker's module graph

Every violation is printed as `file:line: [rule] message`; the exit status is 1 when there is
any, 0 otherwise. Python 3 standard library only; runs in the unit suite (`check-layers`).
The rules and their exceptions are described in docs/architecture.md ("Dependency picture").
"""

import os
import re
import sys

# ---------------------------------------------------------------------------------------------
# Rule "layers": which folders a folder's files may include from. A folder is its own layer;
# `common` is the bottom, the three programs sit side by side on top of it.
# ---------------------------------------------------------------------------------------------
FOLDERS = ("common", "broker", "agent", "cli")
FOLDER_PREFIX = {"cm-": "common", "br-": "broker", "ag-": "agent", "ctl-": "cli"}
MAY_INCLUDE = {
    "common": {"common"},
    "broker": {"broker", "common"},
    "agent": {"agent", "common"},
    "cli": {"cli", "common"},
}

# ---------------------------------------------------------------------------------------------
# Rule "handler-up": broker's lower modules never include the HTTP/API layer (br-api*.h,
# br-http*.h). The files that legitimately must, with the reason. Key: (includer, included).
# ---------------------------------------------------------------------------------------------
HTTP_HEADER = re.compile(r"^br-(api|http)[-.]")
UP_EXCEPTIONS = {
    ("br-main.c", "br-http.h"):
        "the program's main starts the HTTP server: it is the top of the stack",
    ("br-daemon.c", "br-http.h"):
        "the daemon context owns the HTTP server and starts/stops it with the other loops",
    ("br-config.h", "br-http-parse.h"):
        "the configuration carries BrHttpLimits; br-http-parse is a pure, leaf parser "
        "(it includes only cm-error.h), not the server",
    ("br-console.h", "br-api.h"):
        "the web console is served as routes beside the API (br_console_route takes a BrCall): "
        "it belongs to the HTTP layer, not to the store",
}

# ---------------------------------------------------------------------------------------------
# Rule "cycle": the module graph of broker/ has no circles. A module is a header and the .c
# files that implement it (br-x.c, br-x-*.c without a header of their own, br-x-priv.h).
# ---------------------------------------------------------------------------------------------
# Files that are not part of their header's module, with the reason.
MODULE_OVERRIDES = {
    # br-daemon.h is the daemon CONTEXT (config, store, policies, the loops' handles) that the
    # loops are handed; br-daemon.c is the composition root that opens and wires every loop, so
    # it sits at the very top. Issue 10 splits br-daemon.h into config / context / HTTP server;
    # until then the .c is its own module, otherwise every loop would form a circle with it.
    "br-daemon.c": "br-daemon(root)",
    # The request handlers' shared helpers (br_request_review and BrRequestRow, used by the
    # dashboard, jobs and materials handlers): part of the handler layer, like br-api.h.
    "br-api-requests.h": "br-api",
    "br-api-requests.c": "br-api",
}

# Includes left out of the module graph: known circles not trivially broken, with the reason.
# Key: (includer, included header).
CYCLE_EXCEPTIONS = {
    ("br-api-metrics.c", "br-http.h"):
        "/metrics reads the HTTP server's request counters (br_http_counters) while br-http.c "
        "routes to the handlers: the br-http <-> br-api circle named in issue 10; it goes when "
        "the counters move below the server",
}

# ---------------------------------------------------------------------------------------------
# Rule "owner": each table's SQL lives in its owner module's .c files. The map is checked
# against the code: every CREATE TABLE in broker/ must have an owner here.
# ---------------------------------------------------------------------------------------------
OWNERS = {
    "accounts": ("br-account.c",),
    "allocations": ("br-allocation.c",),
    "audit": ("br-audit.c",),
    "audit_head": ("br-audit.c",),
    "backups": ("br-security.c",),
    "departments": ("br-department.c",),
    "events": ("br-event.c",),
    "findings": ("br-finding.c",),
    "host_claims": ("br-job.c",),
    "host_outages": ("br-host-outage.c",),
    "host_samples": ("br-metering.c",),
    "hosts": ("br-host.c",),
    "incidents": ("br-security.c",),
    "instance_history": ("br-instance.c",),
    "instances": ("br-instance.c",),
    "job_steps": ("br-job.c",),
    "jobs": ("br-job.c",),
    "mail_outbox": ("br-outbox.c",),
    "maintenance_windows": ("br-maintenance.c",),
    "emergency_drills": ("br-vendor-record.c",),
    "operations_reports": ("br-vendor-record.c",),
    "restore_tests": ("br-vendor-record.c",),
    "security_bulletins": ("br-vendor-record.c",),
    "vendor_documents": ("br-vendor-record.c",),
    "materials": ("br-material.c",),
    "notifications": ("br-notification.c",),
    "observations": ("br-observation.c",),
    "opinions": ("br-request.c",),
    "request_history": ("br-request.c",),
    "requests": ("br-request.c",),
    "rollups": ("br-metering.c",),
    "samples": ("br-metering.c",),
    # PostgreSQL only (migration 16): the samples' default partition, read when the metering
    # loop makes the partitions of days whose windows wait there.
    "samples_default": ("br-metering.c",),
    "sessions": ("br-session.c",),
    "sign_in_failures": ("br-session.c",),
    "sign_in_links": ("br-session.c",),
    "sla_explanations": ("br-sla-explanation.c",),
    "systems": ("br-system.c",),
    "trial_results": ("br-trial.c",),
    "unowned_samples": ("br-metering.c",),
    "vulnerabilities": ("br-security.c",),
}

# An owner's own statements may join other tables into a read of its table (names, counts,
# scope: `(SELECT d.name FROM departments d ...) AS department_name`). A statement that names
# none of the file's tables reads someone else's table: only the read models below may, and
# only the tables listed (the read models named in /work/notes/owners.md). They never write.
# {file: (tables, reason)}
READ_EXCEPTIONS = {
    "br-report.c": (
        {"allocations", "backups", "departments", "events", "findings", "incidents", "instances",
         "job_steps", "observations", "request_history", "requests", "rollups", "systems",
         "trial_results", "vulnerabilities"},
        "the reports read model: utilisation, waste, security, lifecycle and audit-support "
        "reports aggregate across the tables in one consistent read"),
    "br-dashboard.c": (
        {"allocations", "departments", "findings", "hosts", "opinions", "request_history",
         "requests", "systems"},
        "the console's overview read model: counts and sums across the tables for the "
        "reviewers' dashboard and the approval queue"),
    "br-usage.c": (
        {"allocations", "instances", "rollups", "samples"},
        "the usage answers (/v1/usage): an instance's or allocation's figures over a range, "
        "from the samples or rollups of its instances, scoped by the allocation's department"),
    "br-report-sla.c": (
        {"allocations", "backups", "emergency_drills", "events", "host_outages", "incidents",
         "instance_history", "instances", "jobs", "maintenance_windows", "operations_reports",
         "request_history", "requests", "restore_tests", "security_bulletins",
         "vulnerabilities"},
        "the service-quality scorecard's read model (docs/service-quality.md): the month's "
        "instance history, outages, maintenance windows, request clocks, provision jobs, "
        "incidents, vulnerabilities, the vendor's duty records and the systems with backups in one "
        "consistent read"),
    "br-assess.c": (
        {"allocations", "instances", "rollups", "samples"},
        "the assessment's evidence reads: the live production instances with their "
        "allocation's department and system, and each one's samples and rollups over the "
        "assessed range, as the verdict's input"),
}

# Files allowed to WRITE tables they do not own, with the reason: {(file, table): reason}.
WRITE_EXCEPTIONS = {}

# The schema itself: migrations create, alter and backfill every table; the store copier
# (`cloudbrokerd migrate-store`, branch migrate) copies every table wholesale between backends.
SCHEMA_FILES = {"br-migrations.c", "br-migrate-store.c"}

# ---------------------------------------------------------------------------------------------
# Rule "handler-sql": br-api-*.c hold no SQL and no statement API.
# ---------------------------------------------------------------------------------------------
HANDLER = re.compile(r"^br-api(-[a-z0-9-]+)?\.c$")
STMT_API = re.compile(r"\b(cm_db_prepare|cm_db_stmt|CmStmt|CM_DB_BIND|sqlite3_?\w*)\b")
SQL_IN_LITERAL = re.compile(
    r"\b(SELECT\b.*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b")

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
INCLUDE_AT = re.compile(r"#\s*include\b")
TABLE_REF = re.compile(
    r"\b(?P<kw>INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM|FROM|JOIN)"
    r"\s+\"?(?P<table>[a-z_][a-z0-9_]*)\"?")
CREATE_TABLE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?([a-z_][a-z0-9_]*)")


class Source:
    """One C file: its includes and its SQL-bearing string literals, comments left out."""

    def __init__(self, root, folder, name):
        self.folder = folder
        self.name = name
        self.rel = f"{folder}/{name}"
        with open(os.path.join(root, folder, name), encoding="utf-8", errors="replace") as f:
            self.text = f.read()
        self.includes = []  # (line, header)
        for n, line in enumerate(self.text.splitlines(), 1):
            m = INCLUDE.match(line)
            if m:
                self.includes.append((n, m.group(1)))
        self.literals = join_literals(tokenize(self.text))


class Literal:
    """A string literal as the compiler sees it: adjacent pieces joined, string macros between
    them expanded, and the source line of each piece kept for the report."""

    def __init__(self, line):
        self.text = ""
        self.marks = [(0, line)]  # (offset in text, line of the piece that starts there)
        self.define = None  # the macro name when this is the body of a #define
        self.used = False  # a macro body expanded somewhere (then checked where it is used)

    def add(self, text, line):
        self.marks.append((len(self.text), line))
        self.text += text

    def add_literal(self, other):
        base = len(self.text)
        self.marks.extend((base + off, ln) for off, ln in other.marks)
        self.text += other.text

    def line_at(self, pos):
        res = self.marks[0][1]
        for off, ln in self.marks:
            if off > pos:
                break
            res = ln
        return res


IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFINE = re.compile(r"#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)[ \t]*(\\\n)?")


def tokenize(text):
    """Yields ("lit", text, line), ("id", name, line), ("define", name, line), ("end", "", line)
    for a C file; comments and character constants are skipped, "end" is any other token and
    the end of a preprocessor line."""
    i, n, line = 0, len(text), 1
    in_directive = False
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            line += text.count("\n", i, j)
            i = j
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == "\\" and text.startswith("\\\n", i):  # line continuation
            line += 1
            i += 2
        elif c == "\n":
            if in_directive:
                yield ("end", "", line)
                in_directive = False
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c == "#" and not in_directive:
            in_directive = True
            m = DEFINE.match(text, i)
            if INCLUDE_AT.match(text, i):  # "x.h" is not a literal
                i = text.find("\n", i)
                i = n if i < 0 else i
            elif m:
                yield ("define", m.group(1), line)
                if m.group(2):
                    line += 1
                i = m.end()
            else:
                yield ("end", "", line)
                i += 1
        elif c == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            yield ("end", "", line)
            i = j + 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    buf.append(" " if text[j + 1] in "nt" else text[j + 1])
                    j += 2
                else:
                    buf.append(text[j])
                    j += 1
            yield ("lit", "".join(buf), line)
            i = j + 1
        else:
            m = IDENT.match(text, i)
            if m:
                yield ("id", m.group(0), line)
                i = m.end()
            else:
                yield ("end", "", line)
                i += 1


def join_literals(tokens):
    """Joins adjacent literals and the string macros between them into Literals."""
    macros = {}
    res = []
    cur = None
    define = None  # the macro whose body is being read
    for kind, val, line in tokens:
        if kind == "lit":
            if cur is None:
                cur = Literal(line)
                cur.define = define
                define = None
            cur.add(val, line)
            continue
        if kind == "id" and val in macros:
            if cur is None:
                cur = Literal(line)
                cur.define = define
                define = None
            cur.add_literal(macros[val])
            macros[val].used = True
            continue
        if cur is not None:
            if cur.define:
                macros[cur.define] = cur
            res.append(cur)
            cur = None
        define = val if kind == "define" else None
    if cur is not None:
        res.append(cur)
    return res


def module_of(name, headers):
    """The module a broker file belongs to: its own header, else the longest br-x prefix that
    has a header (br-workflow-plan.c → br-workflow, br-virt-priv.h → br-virt)."""
    if name in MODULE_OVERRIDES:
        return MODULE_OVERRIDES[name]
    stem = name.rsplit(".", 1)[0]
    if stem.endswith("-priv"):
        stem = stem[: -len("-priv")]
    parts = stem.split("-")
    for k in range(len(parts), 1, -1):
        cand = "-".join(parts[:k])
        if cand + ".h" in headers:
            return cand
    return stem


def check(root, show_graph=False):
    """Runs every rule on the tree at @root. Returns the violations as (file, line, rule, msg)."""
    out = []

    def report(src, line, rule, msg):
        out.append((src.rel, line, rule, msg))

    def report_tool(msg):
        out.append(("tools/check-layers.py", 1, "stale-exception", msg))

    sources = {}
    for folder in FOLDERS:
        for name in sorted(os.listdir(os.path.join(root, folder))):
            if name.endswith((".c", ".h")):
                sources[(folder, name)] = Source(root, folder, name)
    broker = {name: s for (folder, name), s in sources.items() if folder == "broker"}

    check_folders(sources, report)
    check_up(broker, report, report_tool)
    check_cycles(broker, report, report_tool, show_graph)
    check_tables(broker, report, report_tool)
    check_handlers(broker, report)
    return sorted(set(out))


def check_folders(sources, report):
    located = {name: folder for (folder, name) in sources}
    for src in sources.values():
        for line, hdr in src.includes:
            folder = located.get(hdr)
            if folder is None:
                folder = next((f for p, f in FOLDER_PREFIX.items() if hdr.startswith(p)), None)
            if folder is not None and folder not in MAY_INCLUDE[src.folder]:
                report(src, line, "layers",
                       f"{src.folder}/ includes {folder}/{hdr}; {src.folder}/ may include only "
                       + " and ".join(f"{f}/" for f in sorted(MAY_INCLUDE[src.folder])))


def check_up(broker, report, report_tool):
    used = set()
    for name, src in sorted(broker.items()):
        if HTTP_HEADER.match(name):
            continue
        for line, hdr in src.includes:
            if not HTTP_HEADER.match(hdr):
                continue
            if (name, hdr) in UP_EXCEPTIONS:
                used.add((name, hdr))
                continue
            report(src, line, "handler-up",
                   f"{name} is below the HTTP/API layer but includes {hdr}")
    for key in sorted(set(UP_EXCEPTIONS) - used):
        report_tool(f"UP_EXCEPTIONS lists {key[0]} -> {key[1]}, which is no longer there")


def check_cycles(broker, report, report_tool, show_graph):
    headers = {n for n in broker if n.endswith(".h")}
    mod = {name: module_of(name, headers) for name in broker}
    used = set()
    edges = {}  # module -> {module: [(file, line, header)]}
    for name, src in sorted(broker.items()):
        a = mod[name]
        edges.setdefault(a, {})
        for line, hdr in src.includes:
            if hdr not in broker:
                continue
            if (name, hdr) in CYCLE_EXCEPTIONS:
                used.add((name, hdr))
                continue
            b = mod[hdr]
            if b != a:
                edges[a].setdefault(b, []).append((name, line, hdr))
    for key in sorted(set(CYCLE_EXCEPTIONS) - used):
        report_tool(f"CYCLE_EXCEPTIONS lists {key[0]} -> {key[1]}, which is no longer there")
    if show_graph:
        for a in sorted(edges):
            print(f"{a} -> {' '.join(sorted(edges[a]))}")
    for scc in strongly_connected(edges):
        path = shortest_cycle(edges, scc)
        sites = [edges[a][b][0] for a, b in zip(path, path[1:])]
        f, line, _ = sites[0]
        report(broker[f], line, "cycle",
               "circle " + " -> ".join(path) + " (" + "; ".join(
                   f"broker/{f}:{ln} includes {h}" for f, ln, h in sites) + ")"
               + (f"; all of {', '.join(sorted(scc))} are in one circle" if len(scc) > 2 else ""))


def shortest_cycle(edges, scc):
    """A shortest circle through the first module of @scc, as a path that ends where it starts."""
    start = min(scc)
    prev = {start: None}
    queue = [start]
    while queue:
        a = queue.pop(0)
        for b in sorted(edges.get(a, {})):
            if b not in scc:
                continue
            if b == start:
                path = [a]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return path[::-1] + [start]
            if b not in prev:
                prev[b] = a
                queue.append(b)
    return [start, start]


def check_handlers(broker, report):
    for name, src in sorted(broker.items()):
        if not (name.endswith(".c") and HANDLER.match(name)):
            continue
        for n, line in enumerate(strip_literals_by_line(src.text), 1):
            m = STMT_API.search(line)
            if m:
                report(src, n, "handler-sql",
                       f"a handler uses the statement API ({m.group(1)}); call the table's owner")
        for lit in src.literals:
            m = SQL_IN_LITERAL.search(lit.text)
            if m:
                report(src, lit.line_at(m.start()), "handler-sql",
                       f"SQL in a handler (\"{lit.text[m.start():m.start() + 40]}...\"); "
                       "move it to the table's owner")


# One injected violation per rule: (file, text appended at its end, rule, words of the message).
SELF_TEST = [
    ("common/cm-util.c", '#include "br-store.h"', "layers", "common/ includes broker/br-store.h"),
    ("cli/ctl-main.c", '#include "ag-config.h"', "layers", "cli/ includes agent/ag-config.h"),
    ("agent/ag-spool.c", '#include "ctl-http.h"', "layers", "agent/ includes cli/ctl-http.h"),
    ("broker/br-request.c", '#include "br-api.h"', "handler-up", "includes br-api.h"),
    ("broker/br-tx.h", '#include "br-job.h"', "cycle", "br-job -> br-tx -> br-job"),
    ("broker/br-system.c", 'static const char *w = "UPDATE accounts SET name = ?";', "owner",
     "writes accounts (UPDATE)"),
    ("broker/br-system.c", 'static const char *r = "SELECT id FROM hosts";', "owner",
     "reads hosts"),
    ("broker/br-session.c",  # through a string macro: reported at the macro's line
     '#define JOINED " FROM systems s"\nstatic const char *m = "SELECT s.id" JOINED;', "owner",
     "reads systems"),
    ("broker/br-migrations.c", 'static const char *t = "CREATE TABLE widgets (id INTEGER)";',
     "owner", "table widgets has no owner"),
    ("broker/br-api-systems.c", 'static const char *q = "DELETE FROM systems WHERE id = ?";',
     "handler-sql", "SQL in a handler"),
    ("broker/br-api-hosts.c", "static void *p = (void *)cm_db_prepare;", "handler-sql",
     "statement API (cm_db_prepare)"),
]


def self_test(root):
    """Copies the sources, injects SELF_TEST's violations and checks that each is reported at
    its file and line with its rule (so the check in the unit suite can fail)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for folder in FOLDERS:
            shutil.copytree(os.path.join(root, folder), os.path.join(tmp, folder),
                            ignore=lambda d, names: [n for n in names
                                                     if not n.endswith((".c", ".h"))])
        expect = []
        for rel, text, rule, words in SELF_TEST:
            path = os.path.join(tmp, rel)
            with open(path, encoding="utf-8") as f:
                body = f.read()
            if not body.endswith("\n"):
                body += "\n"
            line = body.count("\n") + 1
            with open(path, "w", encoding="utf-8") as f:
                f.write(body + text + "\n")
            expect.append((rel, line, rule, words))
        out = check(tmp)
    failed = 0
    for rel, line, rule, words in expect:
        hit = [o for o in out if o[2] == rule and words in o[3]
               and (rule == "cycle" or (o[0], o[1]) == (rel, line))]
        if not hit:
            print(f"self-test: {rel}:{line}: [{rule}] \"{words}\" was not reported")
            failed += 1
    for o in out:
        print("self-test: reported %s:%d: [%s] %s" % o)
    if failed:
        return 1
    print(f"check-layers self-test: ok ({len(expect)} injected violations reported)")
    return 0


def main(argv):
    show_graph = "--graph" in argv
    args = [a for a in argv[1:] if not a.startswith("--")]
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if "--self-test" in argv:
        return self_test(root)
    out = check(root, show_graph)
    for rel, line, rule, msg in out:
        print(f"{rel}:{line}: [{rule}] {msg}")
    if out:
        print(f"check-layers: {len(out)} violation(s)", file=sys.stderr)
        return 1
    print("check-layers: ok")
    return 0


def strip_literals_by_line(text):
    """The lines of @text with comments and the contents of literals blanked (newlines kept)."""
    res = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    res = re.sub(r'"(\\.|[^"\\\n])*"', '""', res)
    res = re.sub(r"//[^\n]*", "", res)
    return res.splitlines()


def check_tables(broker, report, report_tool):
    created = {}
    for name, src in broker.items():
        for lit in src.literals:
            for m in CREATE_TABLE.finditer(lit.text):
                created.setdefault(m.group(1), (src, lit.line_at(m.start())))
    for table, (src, line) in sorted(created.items()):
        if table not in OWNERS:
            report(src, line, "owner", f"table {table} has no owner in check-layers.py OWNERS")
    for table in sorted(set(OWNERS) - set(created)):
        report_tool(f"OWNERS lists {table}, which no CREATE TABLE in broker/ makes")
    owned_by = {}
    for table, files in OWNERS.items():
        for f in files:
            owned_by.setdefault(f, set()).add(table)
    used_read, used_write = set(), set()
    for name, src in sorted(broker.items()):
        if name in SCHEMA_FILES:
            continue
        own = owned_by.get(name, set())
        for lit in src.literals:
            if lit.used:
                continue
            refs = [(m, m.group("table")) for m in TABLE_REF.finditer(lit.text)]
            joins_own = any(t in own for _, t in refs)
            for m, table in refs:
                if table not in created or table in own:
                    continue
                line = lit.line_at(m.start())
                kw = m.group("kw").split()[0]
                owner = "/".join(OWNERS.get(table, ("?",)))
                if kw in ("INSERT", "REPLACE", "UPDATE", "DELETE"):
                    if (name, table) in WRITE_EXCEPTIONS:
                        used_write.add((name, table))
                        continue
                    report(src, line, "owner",
                           f"writes {table} ({kw}); only its owner {owner} may write it")
                    continue
                if joins_own:
                    continue  # the owner's own read, joining another table for names or scope
                ok = READ_EXCEPTIONS.get(name)
                if ok and table in ok[0]:
                    used_read.add((name, table))
                    continue
                report(src, line, "owner",
                       f"reads {table} (owner {owner}) in a statement on none of its own tables;"
                       " call the owner, or list the file as a read model in READ_EXCEPTIONS")
    for name, (tables, _) in sorted(READ_EXCEPTIONS.items()):
        for table in sorted(tables):
            if (name, table) not in used_read:
                report_tool(f"READ_EXCEPTIONS lets {name} read {table}, which it no longer does")
    for key in sorted(set(WRITE_EXCEPTIONS) - used_write):
        report_tool(f"WRITE_EXCEPTIONS lists {key}, which is no longer there")


def strongly_connected(edges):
    """Tarjan's algorithm; returns the components with more than one module."""
    index, low, stack, on, res = {}, {}, [], set(), []
    counter = [0]
    nodes = set(edges) | {b for a in edges for b in edges[a]}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                res.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return res


if __name__ == "__main__":
    sys.exit(main(sys.argv))
