#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: berth_container
short_description: Declare a berth container and drive its systemd unit
description:
  - Writes C(/etc/berth/containers/NAME.toml) from a YAML mapping (rendered 1:1 as TOML, see
    berth.toml(5)) or from TOML text, runs C(systemctl daemon-reload) so berth's generator
    makes C(berth@NAME.service), and starts, stops or restarts that unit with the berth CLI.
  - A candidate declaration is checked with C(berth validate) on the target before it is written;
    an invalid declaration never replaces a valid one.
  - Check mode changes nothing; with C(--diff) it shows the declaration's diff and the output of
    C(berth plan) for the candidate (the unit files the generator would change).
  - Idempotent: the same declaration gives the same bytes, and a second run reports no change.
version_added: "0.1.0"
author: berth project
options:
  name:
    description: The container's NAME (the unit is C(berth@NAME.service)).
    type: str
    required: true
  state:
    description:
      - C(present) writes the declaration (and restarts a running unit whose declaration changed,
        see I(restart_on_change)); C(started)/C(stopped) also start or stop the unit;
        C(restarted) always restarts it; C(absent) stops the unit and removes the declaration,
        its drop-ins and the container's snapshot (C(berth rm)).
    type: str
    choices: [present, absent, started, stopped, restarted]
    default: present
  declaration:
    description: The declaration as a mapping of TOML tables (C(container), C(service), C(health), ...).
    type: dict
  toml:
    description: The declaration as TOML text (instead of I(declaration)).
    type: str
  config_dir:
    description: Where declarations live.
    type: path
    default: /etc/berth/containers
  restart_on_change:
    description: Restart an active unit whose declaration changed.
    type: bool
    default: true
  wait_healthy:
    description:
      - After a start or restart, wait until C(berth list --json) says the container is C(healthy)
        (containers without a health check: until the unit is active). Fails on a failed unit or
        after I(timeout).
    type: bool
    default: false
  timeout:
    description: Seconds to wait for a start, stop or health.
    type: int
    default: 120
"""

EXAMPLES = r"""
- name: db, pinned by digest
  berth.berth.berth_container:
    name: db
    state: started
    wait_healthy: true
    declaration:
      container:
        image: "registry.internal:5000/app/db:v1"
        command: ["/srv/db"]
      health:
        command: ["test", "-e", "/run/db.ready"]
        interval: "1s"
      network:
        networks: ["app"]

- name: the same as TOML text
  berth.berth.berth_container:
    name: web
    state: present
    toml: "{{ lookup('file', 'web.toml') }}"
"""

RETURN = r"""
container:
  description: The container as C(berth list --json) shows it after the change (null when absent).
  returned: always
  type: dict
declaration_path:
  description: The declaration's path.
  returned: always
  type: str
plan:
  description: C(berth plan) output for the candidate (check mode and --diff only).
  returned: when the declaration changes and check or diff mode is on
  type: str
"""

import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.berth.berth.plugins.module_utils.berth import (
    atomic_write,
    declaration_module,
    format_errors,
    read_text,
    wanted_text,
)
DEFAULT_SEARCH = ["/etc/berth/containers", "/run/berth/containers", "/usr/lib/berth/containers"]


def is_active(view):
    return bool(view) and view.get("active_state") in ("active", "activating", "reloading")


def plan_candidate(berth, name, text, config_dir):
    """`berth plan` with the candidate first in the search path: the unit diff it would cause."""
    scratch = tempfile.mkdtemp(prefix="berth-ansible-plan-")
    try:
        with open(os.path.join(scratch, name + ".toml"), "w", encoding="utf-8") as f:
            f.write(text)
        dirs = [scratch, config_dir] + [d for d in DEFAULT_SEARCH if d != config_dir]
        _, out = berth.plan(env={"BERTH_CONTAINERS_PATH": ":".join(dirs)})
        return out.replace(scratch + "/", config_dir.rstrip("/") + "/")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def wait_for(berth, module, name, timeout):
    """Until the container is healthy (or active without a health check); fails on a failed unit."""
    deadline = time.monotonic() + timeout
    view = None
    while True:
        view = berth.container(name)
        state = (view or {}).get("active_state")
        health = (view or {}).get("health", "-")
        if state == "active" and health in ("healthy", "-"):
            return view
        if state in ("failed", "inactive") or health == "unhealthy":
            module.fail_json(msg="container '%s' did not become healthy: state %s, health %s" % (name, state, health),
                             container=view, changed=True)
        if time.monotonic() >= deadline:
            module.fail_json(msg="container '%s' not healthy after %ds: state %s, health %s" %
                             (name, timeout, state, health), container=view, changed=True)
        time.sleep(0.2)


def unit_verb(berth, verb, name, timeout, changed=True):
    rc, out, err = berth.run(verb, "--timeout", str(timeout), name)
    if rc != 0:  # what was written stays written: say so
        berth.module.fail_json(msg="berth %s %s failed: %s" % (verb, name, (err or out).strip()), rc=rc,
                               changed=changed, container=berth.container(name))


def remove(module, berth, name, path):
    view = berth.container(name)
    dropins = path + ".d"
    text = read_text(path)
    has_snapshot = bool(view and view.get("snapshot"))
    loaded = bool(view and view.get("load_state") == "loaded")
    changed = text is not None or os.path.isdir(dropins) or has_snapshot or is_active(view) or loaded
    result = dict(changed=changed, declaration_path=path, container=None)
    if module._diff and text is not None:
        result["diff"] = dict(before=text, after="", before_header=path, after_header=path)
    if module.check_mode or not changed:
        return result
    if is_active(view):
        unit_verb(berth, "stop", name, module.params["timeout"])
    if text is not None:
        os.unlink(path)
    if os.path.isdir(dropins):
        shutil.rmtree(dropins)
    berth.daemon_reload()
    if has_snapshot:
        berth.run("rm", name, check_rc=True)
    return result


def main():
    module, berth, name, path = declaration_module(
        AnsibleModule, "container", "/etc/berth/containers",
        ["present", "absent", "started", "stopped", "restarted"],
        restart_on_change=dict(type="bool", default=True),
        wait_healthy=dict(type="bool", default=False),
        timeout=dict(type="int", default=120),
    )
    p = module.params

    if p["state"] == "absent":
        module.exit_json(**remove(module, berth, name, path))

    wanted = wanted_text(module, "container")
    current = read_text(path)
    if wanted is None and current is None:
        module.fail_json(msg="container '%s' has no declaration at %s; give 'declaration' or 'toml'" % (name, path))

    result = dict(changed=False, declaration_path=path)
    declaration_changed = wanted is not None and wanted != current
    if declaration_changed:
        valid, errors, warnings = berth.validate_file(name, wanted)
        if not valid:
            module.fail_json(msg="declaration of '%s' is invalid; %s left as it was" % (name, path),
                             errors=format_errors(errors))
        if warnings:
            result["warnings"] = warnings
            for w in warnings:
                module.warn("%s: %s" % (name, w))
        result["changed"] = True
        if module.check_mode or module._diff:
            result["plan"] = plan_candidate(berth, name, wanted, p["config_dir"])
            result["diff"] = [
                dict(before=current or "", after=wanted, before_header=path, after_header=path),
                dict(prepared=result["plan"]),
            ]

    view = berth.container(name)
    active = is_active(view)
    state = p["state"]
    verb = None
    if state == "started":
        verb = "start" if not active else ("restart" if declaration_changed and p["restart_on_change"] else None)
    elif state == "present":
        verb = "restart" if active and declaration_changed and p["restart_on_change"] else None
    elif state == "stopped":
        verb = "stop" if active else None
    elif state == "restarted":
        verb = "restart"
    result["changed"] = result["changed"] or verb is not None

    if module.check_mode:
        result["container"] = view
        module.exit_json(**result)

    if declaration_changed:
        atomic_write(path, wanted)
    # A declaration written by hand and never loaded: the generator has not made its unit yet.
    never_loaded = verb in ("start", "restart") and (view is None or view.get("load_state") == "not-found")
    if declaration_changed or never_loaded:
        berth.daemon_reload()
    if verb:
        unit_verb(berth, verb, name, p["timeout"], changed=result["changed"])
    if verb in ("start", "restart") and p["wait_healthy"]:
        result["container"] = wait_for(berth, module, name, p["timeout"])
    else:
        result["container"] = berth.container(name)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
