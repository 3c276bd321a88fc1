#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: berth_network
short_description: Declare a berth network (/etc/berth/networks/NAME.toml)
description:
  - Writes the network declaration from a mapping (rendered 1:1 as TOML, see berth.network(5))
    or TOML text, after C(berth network inspect) of the candidate on the target accepted it; an
    invalid declaration never replaces a valid one. berth brings a declared network up when the
    first container on it starts.
  - C(state=absent) stops its unit C(berth-network@NAME.service) (or runs C(berth network down))
    and removes the declaration. Remove the containers on it first: stopping the unit stops them.
version_added: "0.1.0"
author: berth project
options:
  name:
    type: str
    required: true
  declaration:
    description: The declaration as a mapping, e.g. C({network: {subnets: ["10.89.1.0/24"]}}).
    type: dict
  toml:
    description: The declaration as TOML text.
    type: str
  state:
    type: str
    choices: [present, absent]
    default: present
  config_dir:
    type: path
    default: /etc/berth/networks
"""

EXAMPLES = r"""
- berth.berth.berth_network:
    name: app
    declaration:
      network:
        subnets: ["10.89.1.0/24"]
        internal: true
"""

RETURN = r"""
network:
  description: C(berth network inspect --json) of the network (null when absent).
  returned: always
  type: dict
"""

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.berth.berth.plugins.module_utils.berth import (
    atomic_write,
    declaration_module,
    read_text,
    wanted_text,
)


def inspect(berth, name, search=None):
    env = {"BERTH_NETWORKS_PATH": search} if search else None
    rc, out, err = berth.run("network", "inspect", "--json", name, env=env)
    if rc != 0:
        return None, (err or out).strip()
    try:
        return json.loads(out)[0], None
    except (ValueError, IndexError):
        return None, out.strip()


def main():
    module, berth, name, path = declaration_module(AnsibleModule, "network", "/etc/berth/networks",
                                                   ["present", "absent"])
    p = module.params
    current = read_text(path)

    if p["state"] == "absent":
        if current is None and not os.path.isdir(path + ".d"):
            module.exit_json(changed=False, network=None)
        result = dict(changed=True, network=None)
        if module._diff and current is not None:
            result["diff"] = dict(before=current, after="", before_header=path, after_header=path)
        if not module.check_mode:
            # Up through its unit (containers on it require it): stopping the unit takes it down.
            unit = "berth-network@%s.service" % name
            if berth.systemctl("is-active", "--quiet", unit, check_rc=False) == 0:
                berth.systemctl("stop", unit)
            net, _ = inspect(berth, name)
            if net and net.get("up"):
                berth.run("network", "down", name, check_rc=True)
            if current is not None:
                os.unlink(path)
            if os.path.isdir(path + ".d"):
                shutil.rmtree(path + ".d")
        module.exit_json(**result)

    wanted = wanted_text(module, "network")
    if wanted == current:
        net, _ = inspect(berth, name)
        module.exit_json(changed=False, network=net)

    # The candidate alone in a scratch search path: berth parses and plans it as it would /etc's.
    scratch = tempfile.mkdtemp(prefix="berth-ansible-net-")
    try:
        with open(os.path.join(scratch, name + ".toml"), "w", encoding="utf-8") as f:
            f.write(wanted)
        net, error = inspect(berth, name, search=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if net is None:
        module.fail_json(msg="network declaration '%s' is invalid; %s left as it was: %s" % (name, path, error))
    result = dict(changed=True, network=net)
    if module._diff:
        result["diff"] = dict(before=current or "", after=wanted, before_header=path, after_header=path)
    if not module.check_mode:
        atomic_write(path, wanted)
        result["network"], _ = inspect(berth, name)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
