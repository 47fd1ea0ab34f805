#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: rollbridge contributors
# MIT License (see the repository's LICENSE)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: restart
short_description: Restart an application's processes one after the other with rollbridge
version_added: "0.2.0"
description:
  - Runs C(rollbridge restart) on the managed host. Without selectors it restarts every companion, singleton and
    service of the active release; naming the proxied web process replaces it without downtime (a new process on a
    fresh port, health-checked, then traffic moves to it and the old one drains).
  - A restart always changes something, so the task reports C(changed=true). In check mode nothing runs and the
    task reports C(changed=true) after checking that a daemon answers.
  - A failure returns rollbridge's error code in C(code), its message in C(msg) and the suggested fix in C(fix).
author:
  - rollbridge contributors
extends_documentation_fragment:
  - rollbridge.deploy.rollbridge
options:
  names:
    description:
      - Substrings of process instance ids; the union of their matches is restarted. A name that matches nothing
        fails before anything restarts.
    type: list
    elements: str
    default: []
  process:
    description:
      - A base process id (all its replicas) or one instance (C(worker#1)).
    type: str
  policy:
    description:
      - Only processes with this policy.
    type: str
    choices: [companion, singleton, service, proxied]
  cooldown:
    description:
      - Pause between restarted processes, e.g. C(5s).
    type: str
  check_url:
    description:
      - URL that must answer 2xx after the last restart, or the task fails.
    type: str
  check_timeout:
    description:
      - How long I(check_url) may take to answer 2xx, e.g. C(30s) (rollbridge's default is 10 s).
    type: str
notes:
  - Supports check mode.
seealso:
  - module: rollbridge.deploy.release
'''

EXAMPLES = r'''
- name: Restart the workers, 5 s apart, then check the site
  rollbridge.deploy.restart:
    config: /srv/shop/rollbridge.js
    names: [worker]
    cooldown: 5s
    check_url: http://127.0.0.1:8182/ping

- name: Replace the web process without dropping a request
  rollbridge.deploy.restart:
    config: /srv/shop/rollbridge.js
    process: web
'''

RETURN = r'''
restarted:
  description: Instance ids of the restarted processes, in order.
  returned: success, not in check mode
  type: list
  elements: str
  sample: ["worker#0", "worker#1"]
check:
  description: The answer of I(check_url) (its HTTP status).
  returned: when check_url is given, not in check mode
  type: dict
result:
  description: The rollbridge CLI's JSON document, unchanged.
  returned: success
  type: dict
code:
  description: rollbridge's stable error code.
  returned: failure
  type: str
  sample: ERR_PROCESS_NOT_FOUND
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


def main():
    argument_spec = dict(
        names=dict(type='list', elements='str', default=[]),
        process=dict(type='str'),
        policy=dict(type='str', choices=['companion', 'singleton', 'service', 'proxied']),
        cooldown=dict(type='str'),
        check_url=dict(type='str'),
        check_timeout=dict(type='str'),
    )
    argument_spec.update(ROLLBRIDGE_COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    for name in params['names']:
        if not name or name.startswith('-'):
            module.fail_json(msg='Invalid process name {0!r} in names: expected a substring of a process id'.format(name),
                             code='ERR_USAGE', fix='Remove the entry from names, or pass it through process')
    rollbridge = Rollbridge(module)
    try:
        if module.check_mode:
            document = rollbridge.run(['status'])
            module.exit_json(changed=True, result=document)
        args = ['restart']
        for option, flag in (('process', '--process'), ('policy', '--policy'), ('cooldown', '--cooldown'),
                             ('check_url', '--check-url'), ('check_timeout', '--check-timeout')):
            if params[option] is not None:
                args += [flag, params[option]]
        document = rollbridge.run(args + params['names'])
    except RollbridgeCommandError as error:
        rollbridge.fail(error, changed=False)
    result = result_fields(document)
    result.update(changed=True, result=document)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
