#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: rollbridge contributors
# MIT License (see the repository's LICENSE)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: info
short_description: Read a rollbridge daemon's status as facts
version_added: "0.2.0"
description:
  - Runs C(rollbridge status --json) on the managed host and returns the status document, also as the fact
    C(rollbridge) (C(ansible_facts.rollbridge)), with the active release, every release with its processes, the
    services, the singletons and the proxy.
  - Never changes anything (C(changed) is always false); works the same in check mode.
  - When no daemon answers on the config's control socket it succeeds with C(daemon_running=false) and a null
    C(active_release_id), so a play can decide to start one.
author:
  - rollbridge contributors
extends_documentation_fragment:
  - rollbridge.deploy.rollbridge
notes:
  - Supports check mode.
seealso:
  - module: rollbridge.deploy.release
'''

EXAMPLES = r'''
- name: Read the status
  rollbridge.deploy.info:
    config: /srv/shop/rollbridge.js
  register: shop

- name: Show the active release
  ansible.builtin.debug:
    msg: "{{ shop.active_release_id }} serves on port {{ ansible_facts.rollbridge.proxy.port }}"
  when: shop.daemon_running
'''

RETURN = r'''
daemon_running:
  description: Whether a daemon answered on the config's control socket.
  returned: always
  type: bool
  sample: true
active_release_id:
  description: The release serving traffic, or null.
  returned: always
  type: str
  sample: "42"
status:
  description: The status document of C(rollbridge status --json) (null when no daemon runs).
  returned: always
  type: dict
ansible_facts:
  description: The same status document as the fact C(rollbridge), plus C(daemon_running).
  returned: always
  type: dict
  contains:
    rollbridge:
      description: The status document with C(daemon_running) added.
      type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rollbridge.deploy.plugins.module_utils.rollbridge import (
    ROLLBRIDGE_COMMON_ARGS,
    Rollbridge,
    RollbridgeCommandError,
)


def main():
    module = AnsibleModule(argument_spec=dict(ROLLBRIDGE_COMMON_ARGS), supports_check_mode=True)
    rollbridge = Rollbridge(module)
    try:
        status = rollbridge.status()
    except RollbridgeCommandError as error:
        rollbridge.fail(error, changed=False)
    running = status is not None
    facts = dict(status or {}, daemon_running=running)
    facts.pop('status', None)
    module.exit_json(
        changed=False,
        daemon_running=running,
        active_release_id=(status or {}).get('activeReleaseId'),
        status=status,
        ansible_facts=dict(rollbridge=facts),
    )


if __name__ == '__main__':
    main()
