#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: rollbridge contributors
# MIT License (see the repository's LICENSE)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: legacy_takeover
short_description: Hand an app over from GNU Screen or hand-started processes to rollbridge
version_added: "0.2.0"
description:
  - Runs C(rollbridge legacy-takeover) on the managed host, once per host. It finds the legacy processes the
    config's C(legacyTakeover) block describes, starts the release beside them, stops them and switches the
    proxy port to rollbridge with the shortest possible gap.
  - Idempotent. When a rollbridge daemon already serves the application, the takeover has happened and the task
    reports C(changed=false) without touching anything.
  - Check mode returns the takeover's dry-run plan (C(legacy-takeover --dry-run)), listing the sessions and
    processes that would be stopped, the release and who holds the proxy port.
  - A failure returns rollbridge's error code in C(code), its message in C(msg) and the suggested fix in C(fix).
author:
  - rollbridge contributors
extends_documentation_fragment:
  - rollbridge.deploy.rollbridge
options:
  config:
    description:
      - Path of the application's rollbridge config file on the managed host; it must have a C(legacyTakeover) block.
  release_path:
    description:
      - Directory of the prepared release on the managed host.
    type: path
    required: true
  release_id:
    description:
      - Release id (default I(revision), else the UTC time).
    type: str
  revision:
    description:
      - Revision recorded with the release.
    type: str
notes:
  - Supports check mode.
seealso:
  - module: rollbridge.deploy.release
'''

EXAMPLES = r'''
- name: See what the takeover would stop and start
  rollbridge.deploy.legacy_takeover:
    config: /srv/shop/rollbridge.js
    release_path: /srv/shop/releases/42
  check_mode: true
  register: takeover_plan

- name: Take over from the screen sessions
  rollbridge.deploy.legacy_takeover:
    config: /srv/shop/rollbridge.js
    release_path: /srv/shop/releases/42
    release_id: "42"
'''

RETURN = r'''
active_release_id:
  description: The release serving traffic afterwards.
  returned: success
  type: str
  sample: "42"
port_gap_ms:
  description: How long the proxy port refused connections during the switch.
  returned: when the takeover ran
  type: int
legacy:
  description: How many legacy processes were stopped and killed.
  returned: when the takeover ran
  type: dict
plan:
  description: The sessions and processes to stop, the release, the proxy port and who holds it.
  returned: when the takeover ran, and in check mode
  type: dict
result:
  description: The rollbridge CLI's JSON document, unchanged.
  returned: success
  type: dict
code:
  description: rollbridge's stable error code.
  returned: failure
  type: str
  sample: ERR_LEGACY_NOT_CONFIGURED
fix:
  description: What to do about the error.
  returned: failure, when rollbridge suggests one
  type: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rollbridge.deploy.plugins.module_utils.rollbridge import (
    ROLLBRIDGE_COMMON_ARGS,
    Rollbridge,
    RollbridgeCommandError,
    result_fields,
)

TAKEOVER_NOT_NEEDED = 'ERR_TAKEOVER_NOT_NEEDED'


def main():
    argument_spec = dict(
        release_path=dict(type='path', required=True),
        release_id=dict(type='str'),
        revision=dict(type='str'),
    )
    argument_spec.update(ROLLBRIDGE_COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    rollbridge = Rollbridge(module)
    args = ['legacy-takeover', '--release-path', params['release_path']]
    for option, flag in (('release_id', '--release-id'), ('revision', '--revision')):
        if params[option] is not None:
            args += [flag, params[option]]
    try:
        status = rollbridge.status()
        if status is not None:
            module.exit_json(changed=False, active_release_id=status.get('activeReleaseId'),
                             msg='A rollbridge daemon already serves this application: nothing to take over', result=status)
        document = rollbridge.run(args + ['--dry-run'] if module.check_mode else args)
    except RollbridgeCommandError as error:
        if error.code == TAKEOVER_NOT_NEEDED:
            module.exit_json(changed=False, msg=error.message, result=dict(code=error.code, message=error.message))
        rollbridge.fail(error, changed=False)
    result = result_fields(document)
    result.update(changed=True, result=document)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
