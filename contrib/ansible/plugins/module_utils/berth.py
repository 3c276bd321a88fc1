# -*- coding: utf-8 -*-
# Shared by the berth.berth modules: running the berth CLI, rendering a declaration dict as TOML,
# and writing a file only when its content changes.
#
# The modules hold no knowledge of berth's schema: a YAML dict is rendered 1:1 as TOML and the
# target's own `berth validate` decides whether it is valid. The one piece of logic that lives
# here, the TOML writer, is deterministic (keys in the order given), so the same dict always gives
# the same bytes and a second run compares equal: that is what makes the modules idempotent.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import math
import os
import re
import shutil
import tempfile

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class TomlError(ValueError):
    pass


def _key(k):
    if not isinstance(k, str):
        raise TomlError("TOML keys must be strings, got %r" % (k,))
    return k if BARE_KEY.match(k) else _string(k)


def _string(s):
    # json.dumps escapes exactly what a TOML basic string needs (quote, backslash, control
    # characters as \uXXXX); ensure_ascii=False keeps UTF-8 text readable.
    return json.dumps(s, ensure_ascii=False)


def _is_table(v):
    return isinstance(v, dict)


def _is_table_array(v):
    return isinstance(v, list) and len(v) > 0 and all(isinstance(e, dict) for e in v)


def _value(v, where):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise TomlError("%s: NaN and infinity are not written" % where)
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(e, "%s[%d]" % (where, i)) for i, e in enumerate(v)) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join("%s = %s" % (_key(k), _value(e, "%s.%s" % (where, k))) for k, e in v.items()) + "}"
    if v is None:
        raise TomlError("%s: TOML has no null; leave the key out" % where)
    raise TomlError("%s: cannot write a %s as TOML" % (where, type(v).__name__))


def _table(lines, path, table):
    """Scalars (and inline arrays) of `table` first, then its sub-tables and arrays of tables."""
    for k, v in table.items():
        if not _is_table(v) and not _is_table_array(v):
            lines.append("%s = %s" % (_key(k), _value(v, ".".join(path + [k]))))
    for k, v in table.items():
        sub = path + [k]
        name = ".".join(_key(p) for p in sub)
        if _is_table(v):
            if lines:
                lines.append("")
            lines.append("[%s]" % name)
            _table(lines, sub, v)
        elif _is_table_array(v):
            for entry in v:
                if lines:
                    lines.append("")
                lines.append("[[%s]]" % name)
                _table(lines, sub, entry)


def to_toml(doc):
    """A dict as TOML text: dicts become [tables], lists of dicts [[arrays of tables]]."""
    if not isinstance(doc, dict):
        raise TomlError("a declaration must be a mapping, got %s" % type(doc).__name__)
    lines = []
    _table(lines, [], doc)
    return "\n".join(lines) + "\n"


def normalize_text(text):
    return text if text.endswith("\n") else text + "\n"


def read_text(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def atomic_write(path, text, mode=0o644):
    """Replaces `path` in one rename(2): a reader sees the old or the new file, never a half."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Berth:
    """The berth CLI on the target, through AnsibleModule.run_command (no shell)."""

    def __init__(self, module, binary=None):
        self.module = module
        self.binary = binary or module.get_bin_path("berth", required=True, opt_dirs=["/usr/local/bin"])

    def run(self, *args, env=None, check_rc=False):
        cmd = [self.binary] + list(args)
        rc, out, err = self.module.run_command(cmd, environ_update=env or {})
        if check_rc and rc != 0:
            self.module.fail_json(msg="'%s' failed (exit %d): %s" % (" ".join(cmd), rc, (err or out).strip()),
                                  rc=rc, stdout=out, stderr=err, cmd=cmd)
        return rc, out, err

    def json(self, *args, env=None, ok_codes=(0,)):
        rc, out, err = self.run(*args, env=env)
        if rc not in ok_codes:
            self.module.fail_json(msg="'berth %s' failed (exit %d): %s" % (" ".join(args), rc, (err or out).strip()),
                                  rc=rc, stdout=out, stderr=err)
        try:
            return json.loads(out) if out.strip() else None
        except ValueError as e:
            self.module.fail_json(msg="'berth %s' printed no JSON: %s" % (" ".join(args), e), stdout=out)

    def validate_file(self, name, text):
        """`berth validate --json` of the candidate text as NAME.toml in a scratch directory:
        (valid, errors, warnings). Nothing under /etc is touched."""
        scratch = tempfile.mkdtemp(prefix="berth-ansible-")
        try:
            path = os.path.join(scratch, name + ".toml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            rc, out, err = self.run("validate", "--json", path)
            try:
                report = json.loads(out)
            except ValueError:
                return False, [{"message": (err or out).strip() or "berth validate failed (exit %d)" % rc}], []
            entry = report[0] if report else {}
            errors = entry.get("errors", [])
            for e in errors:  # the scratch path means nothing to the user: say the file it becomes
                if e.get("file") == path:
                    e["file"] = name + ".toml"
            return rc == 0 and entry.get("valid", False), errors, entry.get("warnings", [])
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def plan(self, env=None):
        """`berth plan`: (changed, output); exit 2 means changes."""
        rc, out, err = self.run("plan", env=env)
        if rc not in (0, 2):
            self.module.fail_json(msg="berth plan failed (exit %d): %s" % (rc, (err or out).strip()), stdout=out,
                                  stderr=err)
        return rc == 2, out

    def list(self):
        return self.json("list", "--json") or []

    def container(self, name):
        for c in self.list():
            if c.get("name") == name:
                return c
        return None

    def systemctl(self, *args, check_rc=True):
        """systemd's side of a declaration: daemon-reload (the generator), network units."""
        cmd = [self.module.get_bin_path("systemctl", required=True)] + list(args)
        rc, out, err = self.module.run_command(cmd)
        if check_rc and rc != 0:
            self.module.fail_json(msg="'%s' failed: %s" % (" ".join(cmd), (err or out).strip()))
        return rc

    def daemon_reload(self):
        self.systemctl("daemon-reload")


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def declaration_module(module_class, kind, config_dir, states, **spec):
    """The AnsibleModule of a module that owns CONFIG_DIR/NAME.toml (berth_container, berth_network):
    name, state, declaration|toml, config_dir plus `spec`; returns (module, berth, name, path)."""
    module = module_class(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=states),
            declaration=dict(type="dict"),
            toml=dict(type="str"),
            config_dir=dict(type="path", default=config_dir),
            **spec
        ),
        mutually_exclusive=[["declaration", "toml"]],
        required_if=[["state", "present", ["declaration", "toml"], True]],
        supports_check_mode=True,
    )
    name = module.params["name"]
    if not NAME.match(name):  # it becomes a file name: no '/', no leading '.'
        module.fail_json(msg="invalid %s name '%s'" % (kind, name))
    return module, Berth(module), name, os.path.join(module.params["config_dir"], name + ".toml")


def wanted_text(module, kind):
    """The declaration the task gives, as the TOML text to write (None when it gives none)."""
    p = module.params
    try:
        if p["declaration"] is not None:
            return to_toml(p["declaration"])
    except TomlError as e:
        module.fail_json(msg="declaration of %s '%s': %s" % (kind, p["name"], e))
    return normalize_text(p["toml"]) if p["toml"] is not None else None


def format_errors(errors):
    out = []
    for e in errors:
        if "line" in e:
            out.append("%s:%s:%s: %s" % (e.get("file", "?"), e["line"], e.get("column", 0), e.get("message", "")))
        else:
            out.append(e.get("message", str(e)))
    return out
