#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: berth_facts
short_description: berth's containers and networks as facts
description:
  - Sets C(ansible_facts.berth_containers) (a dict by container name, each entry what
    C(berth list --json) says: unit state, health, image, snapshot) and C(ansible_facts.berth_networks)
    (by name, from C(berth network ls --json)).
version_added: "0.1.0"
author: berth project
options:
  name:
    description: Only these containers.
    type: list
    elements: str
"""

EXAMPLES = r"""
- berth.berth.berth_facts:
- assert:
    that: ansible_facts.berth_containers.web.health == 'healthy'
"""

RETURN = r"""
ansible_facts:
  description: berth_containers and berth_networks.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.berth.berth.plugins.module_utils.berth import Berth


def main():
    module = AnsibleModule(argument_spec=dict(name=dict(type="list", elements="str")), supports_check_mode=True)
    berth = Berth(module)
    wanted = module.params["name"]
    containers = {c["name"]: c for c in berth.list() if not wanted or c.get("name") in wanted}
    networks = {}
    for n in berth.json("network", "ls", "--json") or []:
        networks[n.get("name")] = n
    module.exit_json(changed=False, ansible_facts=dict(berth_containers=containers, berth_networks=networks))


if __name__ == "__main__":
    main()
