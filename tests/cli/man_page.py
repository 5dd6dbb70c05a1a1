"""man_page.py - the man page renders without a warning and documents every option.

Usage: man_page.py REFDIO PAGE
 1. `man --warnings -l PAGE` exits 0 and prints no warning (groff's own checks).
 2. For every command that `refdio --help` lists, every option its `--help` prints
    (the lines of its option list: -x, --long) appears in that command's section of the
    rendered page; for mount, every `-o` option too.
Negative controls, run every time: a copy of the page with an unknown macro must draw a
warning; a copy with one option's line removed, and a --help with an invented option,
must each make the comparison fail.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

REFDIO, PAGE = sys.argv[1], sys.argv[2]
ENV = dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8")
failures = []


def fail(msg):
    print("FAIL: " + msg)
    failures.append(msg)


def render(page):
    """(text, warnings) of man --warnings -l page."""
    p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                       env=ENV)
    text = subprocess.run(["col", "-bx"], input=p.stdout, capture_output=True,
                          text=True).stdout
    return p.returncode, text, p.stderr.strip()


def commands():
    out = subprocess.run([REFDIO, "--help"], capture_output=True, text=True).stdout
    return re.findall(r"(?m)^  ([a-z][a-z-]+) ", out)


def help_options(cmd, help_text=None):
    """The options a command's --help lists: the option lines of its help."""
    if help_text is None:
        help_text = subprocess.run([REFDIO, cmd, "--help"], capture_output=True,
                                   text=True).stdout
    opts = set()
    for line in help_text.splitlines():
        m = re.match(r"^  (-[^ ].*?)(  |$)", line)
        if m:
            opts.update(re.findall(r"(?<![\w-])(--?[a-zA-Z][a-zA-Z0-9-]*)", m.group(1)))
        if cmd == "mount":
            m = re.match(r"^     ([a-z_]+=?)", line)
            if m:
                opts.add(m.group(1))
    return opts


def sections(text, cmds):
    """{command: its section of the rendered page}."""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^   ([a-z][a-z-]+)$", line)
        if m and m.group(1) in cmds:
            cur = m.group(1)
            out[cur] = []
            continue
        if re.match(r"^[A-Z]", line):
            cur = None
        if cur:
            out[cur].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def missing(text, cmds, extra=None):
    """[(command, option)] documented by --help but not in the page."""
    secs = sections(text, cmds)
    miss = []
    for cmd in cmds:
        opts = help_options(cmd) | (extra or {}).get(cmd, set())
        sec = secs.get(cmd, "")
        for o in sorted(opts):
            if o in ("-h", "--help"):
                continue        # said once for all commands in DESCRIPTION
            end = "" if o.endswith("=") else r"(?![\w-])"
            if not re.search(r"(?<![\w-])%s%s" % (re.escape(o), end), sec):
                miss.append((cmd, o))
    return miss


st, text, warn = render(PAGE)
if st != 0 or warn:
    fail("man --warnings -l %s: status %d, warnings:\n%s" % (PAGE, st, warn))
if "--help" not in text:
    fail("the page does not say --help")
cmds = commands()
if len(cmds) < 9:
    fail("refdio --help lists only %r" % cmds)
total = sum(len(help_options(c)) for c in cmds)
for cmd, o in missing(text, cmds):
    fail("%s --help prints %s, the man page's %s section does not" % (cmd, o, cmd))
print("%d commands, %d options from --help, all in the page" % (len(cmds), total))

# Negative controls.
work = tempfile.mkdtemp(prefix="refdio-man-")
try:
    with open(PAGE) as f:
        src = f.read()
    bad = os.path.join(work, "bad.8")
    with open(bad, "w") as f:
        f.write(src.replace(".SH DESCRIPTION", ".XQ bogus\n.SH DESCRIPTION", 1))
    st, _, warn = render(bad)
    if not warn:
        fail("negative control: an unknown macro drew no warning")
    cut = os.path.join(work, "cut.8")
    lines = src.splitlines(True)
    drop = [i for i, ln in enumerate(lines) if "\\-\\-interval" in ln or "--interval" in ln]
    with open(cut, "w") as f:
        f.write("".join(ln for i, ln in enumerate(lines) if i not in drop))
    _, cut_text, _ = render(cut)
    if ("stats", "--interval") not in missing(cut_text, ["stats"]):
        fail("negative control: the page without --interval still passed")
    if ("demo", "--no-such-option") not in missing(text, ["demo"],
                                                     {"demo": {"--no-such-option"}}):
        fail("negative control: an invented option was found in the page")
    if help_options("x", "  --alpha N   a\n  -b, --beta  b\n") != {"--alpha", "-b", "--beta"}:
        fail("the option lines of a help text are not read right")
finally:
    shutil.rmtree(work)
sys.exit(1 if failures else 0)
