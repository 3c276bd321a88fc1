#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: berth_image
short_description: Pull an image into berth's store (pinned by digest) or remove it
description:
  - C(state=present) pulls I(name) with C(berth image pull) unless the store already holds it.
    With I(digest) the pull is pinned (C(NAME[:TAG]@DIGEST)) and an image counts as present only
    when the store's image of that name is that manifest digest (berth keys images by it), so a
    moved tag never changes a pinned host.
  - C(state=absent) removes the image with C(berth image rm).
  - Registries, mirrors and credentials come from the target's registries.toml (berth-registries.toml(5)).
version_added: "0.1.0"
author: berth project
options:
  name:
    description: C([REGISTRY/]REPOSITORY[:TAG]); the store names the image so.
    type: str
    required: true
  digest:
    description: C(sha256:...) the pull is pinned to.
    type: str
  state:
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- berth.berth.berth_image:
    name: registry.internal:5000/app/web:v2
    digest: "sha256:4f1c..."
"""

RETURN = r"""
image:
  description: C(berth image inspect --json) of the image (null when absent).
  returned: always
  type: dict
"""

import json
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.berth.berth.plugins.module_utils.berth import Berth

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def inspect(berth, ref):
    rc, out, _ = berth.run("image", "inspect", ref)
    if rc != 0:
        return None
    try:
        return json.loads(out)
    except ValueError:
        return None


def pinned_at(image, digest):
    """The store keys an image by its manifest digest (its id), so a pin is that id."""
    return bool(image) and image.get("id") == digest


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            digest=dict(type="str"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    name, digest = p["name"], p["digest"]
    if "@" in name:
        module.fail_json(msg="give the digest as 'digest', not in 'name' ('%s')" % name)
    if digest is not None and not DIGEST.match(digest):
        module.fail_json(msg="digest '%s' is not sha256:<64 hex digits>" % digest)
    berth = Berth(module)
    image = inspect(berth, name)

    if p["state"] == "absent":
        if image is None:
            module.exit_json(changed=False, image=None)
        if not module.check_mode:
            berth.run("image", "rm", name, check_rc=True)
        module.exit_json(changed=True, image=None)

    present = image is not None and (digest is None or pinned_at(image, digest))
    if present:
        module.exit_json(changed=False, image=image)
    if module.check_mode:
        module.exit_json(changed=True, image=image)
    ref = name + ("@" + digest if digest else "")
    berth.run("image", "pull", ref, check_rc=True)
    image = inspect(berth, name)
    if digest is not None and not pinned_at(image, digest):
        module.fail_json(msg="pulled '%s' but the store's '%s' is not at %s" % (ref, name, digest), image=image)
    module.exit_json(changed=True, image=image)


if __name__ == "__main__":
    main()
