#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: rollbridge contributors
# MIT License (see the repository's LICENSE)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: release
short_description: Deploy, roll back or stop a release with rollbridge, without downtime
version_added: "0.2.0"
description:
  - Runs the C(rollbridge) binary on the managed host against one config file and reports its JSON result.
  - With I(state=active) (the default) it deploys I(release_path) unless that release is already the active one
    with the same release path and revision (C(rollbridge deploy --skip-if-active)), so a second run of the
    same play reports C(changed=false). The new release starts beside the running one, is health-checked,
    receives the traffic, and the previous one drains; a failure leaves the previous release serving.
  - With I(state=rolled_back) it switches back to I(release_id) (or to the previously active release when
    I(release_id) is not given) through C(rollbridge rollback); with I(state=stopped) it stops I(release_id)
    (default the active release) through C(rollbridge stop).
  - Check mode runs C(rollbridge deploy --dry-run), which works without a daemon and changes nothing, and
    returns its plan. Diff mode shows the active release before and after.
  - A failure returns rollbridge's error code in C(code), its message in C(msg) and the suggested fix in C(fix).
author:
  - rollbridge contributors
extends_documentation_fragment:
  - rollbridge.deploy.rollbridge
options:
  config:
    description:
      - Path of the application's rollbridge config file (C(rollbridge.js), C(rollbridge.json) …) on the managed host.
      - The commands run with its directory as working directory, so relative paths resolve against it.
  release_path:
    description:
      - Directory of the prepared release on the managed host. Required with I(state=active).
    type: path
  release_id:
    description:
      - Release id. With I(state=active) it defaults to I(revision), else to the UTC time; then every run deploys,
        so give I(release_id) or I(revision) for idempotence.
      - With I(state=rolled_back), the retained release to switch back to; with I(state=stopped), the release to stop.
    type: str
  revision:
    description:
      - Revision recorded with the release (a commit id, say). Defaults to the release id.
    type: str
  state:
    description:
      - C(active) deploys the release unless it is already active.
      - C(rolled_back) switches back to I(release_id), or to the previously active release; with I(release_id) it
        changes nothing when that release is already active.
      - C(stopped) stops the release (no drain); the proxy answers 503 until the next deploy when it was the active one.
    type: str
    choices: [active, rolled_back, stopped]
    default: active
  watch:
    description:
      - With I(state=active), keep the previous release warm this long after the switch (C(30s), C(2m)) and switch
        back automatically if the new web process exits, fails its health check or answers too many 5xx.
    type: str
  ensure_daemon:
    description:
      - With I(state=active), start a detached daemon first when none is running (C(deploy --ensure-daemon)).
        A daemon of another rollbridge build is replaced without downtime first.
    type: bool
    default: true
notes:
  - Needs C(rollbridge) 0.2 or later on the managed host (the C(rollbridge.deploy.install) role puts it there).
  - Supports check mode and diff mode.
seealso:
  - module: rollbridge.deploy.info
  - module: rollbridge.deploy.restart
'''

EXAMPLES = r'''
- name: Deploy release 42 (nothing happens when it is already active)
  rollbridge.deploy.release:
    config: /srv/shop/rollbridge.js
    release_path: /srv/shop/releases/42
    release_id: "42"
    revision: 3f2a9c1

- name: Deploy and watch the new release for 30 s, switching back on trouble
  rollbridge.deploy.release:
    config: /srv/shop/rollbridge.js
    release_path: /srv/shop/releases/43
    release_id: "43"
    watch: 30s

- name: Switch back to release 41
  rollbridge.deploy.release:
    config: /srv/shop/rollbridge.js
    state: rolled_back
    release_id: "41"

- name: Stop the active release
  rollbridge.deploy.release:
    config: /srv/shop/rollbridge.js
    state: stopped
'''

RETURN = r'''
active_release_id:
  description: The release serving traffic afterwards (in check mode, the one serving now).
  returned: success
  type: str
  sample: "42"
previous_release_id:
  description: The release that served before (now draining), or null.
  returned: success
  type: str
  sample: "41"
release_id:
  description: The release the command was about.
  returned: success
  type: str
  sample: "42"
already_active:
  description: True when the release was already active with the same release path and revision, so nothing was done.
  returned: when state=active
  type: bool
  sample: false
duration_ms:
  description: How long the deploy or rollback took, in milliseconds.
  returned: success
  type: int
  sample: 8412
phases:
  description: The deploy's phases (started, healthy, switched, draining …) with their timings.
  returned: success, when the CLI reports them
  type: list
  elements: dict
plan:
  description: In check mode, what the deploy would do (processes started and kept, the drain).
  returned: check mode with state=active
  type: dict
result:
  description: The rollbridge CLI's JSON document, unchanged.
  returned: success
  type: dict
code:
  description: rollbridge's stable error code (see docs/errors.md).
  returned: failure
  type: str
  sample: ERR_HEALTH_CHECK_FAILED
fix:
  description: What to do about the error, naming the config key, flag or command.
  returned: failure, when rollbridge suggests one
  type: str
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rollbridge.deploy.plugins.module_utils.rollbridge import (
    ROLLBRIDGE_COMMON_ARGS,
    Rollbridge,
    RollbridgeCommandError,
    release_states,
    result_fields,
)

# Release states in which a release still has running processes (see `rollbridge status`).
RUNNING_STATES = ('active', 'draining', 'starting')


def diff_of(before, after):
    return dict(before='active_release: {0}\n'.format(before), after='active_release: {0}\n'.format(after))


def is_unknown_flag(error, flag):
    return error.rc == 2 and flag in error.message


def already_active(module, rollbridge):
    """For a CLI without --skip-if-active: the status document when the release is already active with the
    same release path and revision (what --skip-if-active decides in the daemon), else None."""
    params = module.params
    release_id = params['release_id'] or params['revision']
    status = rollbridge.status()
    if status is None or status.get('activeReleaseId') != release_id:
        return None
    release_path = os.path.join(os.path.dirname(params['config']), params['release_path'])
    for release in status.get('releases') or []:
        if (release.get('releaseId') == release_id and release.get('state') == 'active'
                and os.path.realpath(release.get('releasePath', '')) == os.path.realpath(release_path)
                and release.get('revision') == (params['revision'] or release_id)):
            return dict(activeReleaseId=release_id, previousReleaseId=None, releaseId=release_id, changed=False, skipped=True)
    return None


def run_deploy(module, rollbridge, args, idempotent):
    """``rollbridge deploy <args>``, with --skip-if-active when the release id is known. A CLI from before
    that flag (it answers a usage error) gets the same decision from its status instead."""
    if not idempotent:
        return rollbridge.run(args)
    try:
        return rollbridge.run(args + ['--skip-if-active'])
    except RollbridgeCommandError as error:
        if not is_unknown_flag(error, '--skip-if-active'):
            raise
    skipped = already_active(module, rollbridge)
    if skipped is not None:
        return skipped
    return rollbridge.run(args)


def deploy(module, rollbridge):
    params = module.params
    args = ['deploy', '--release-path', params['release_path']]
    for option, flag in (('release_id', '--release-id'), ('revision', '--revision')):
        if params[option] is not None:
            args += [flag, params[option]]
    idempotent = params['release_id'] is not None or params['revision'] is not None
    if module.check_mode:
        document = run_deploy(module, rollbridge, args + ['--dry-run'], idempotent)
        changed = not document.get('skipped', False)
        active = document.get('activeReleaseId')
        return dict(changed=changed, diff=diff_of(active, document.get('releaseId') if changed else active), document=document)
    if params['watch'] is not None:
        args += ['--watch', params['watch']]
    if params['ensure_daemon']:
        args.append('--ensure-daemon')
    document = run_deploy(module, rollbridge, args, idempotent)
    changed = document.get('changed', not document.get('skipped', False))
    active = document.get('activeReleaseId')
    before = active if not changed else document.get('previousReleaseId')
    return dict(changed=changed, diff=diff_of(before, active), document=document)


def roll_back(module, rollbridge):
    release_id = module.params['release_id']
    status = rollbridge.run(['status'])
    active = status.get('activeReleaseId')
    if release_id is not None and active == release_id:
        return dict(changed=False, diff=diff_of(active, active), document=dict(activeReleaseId=active, releaseId=release_id, skipped=True))
    if module.check_mode:
        return dict(changed=True, diff=diff_of(active, release_id or '(the previous release)'), document=dict(activeReleaseId=active, releaseId=release_id))
    args = ['rollback'] + (['--release-id', release_id] if release_id is not None else [])
    document = rollbridge.run(args)
    return dict(changed=document.get('changed', True), diff=diff_of(active, document.get('activeReleaseId')), document=document)


def stop(module, rollbridge):
    status = rollbridge.status()
    if status is None:
        return dict(changed=False, diff=diff_of(None, None), document=dict(activeReleaseId=None, daemonRunning=False))
    active = status.get('activeReleaseId')
    target = module.params['release_id'] or active
    if target is None or not any(state in RUNNING_STATES for state in release_states(status, target)):
        return dict(changed=False, diff=diff_of(active, active), document=dict(activeReleaseId=active, releaseId=target))
    after = None if target == active else active
    if module.check_mode:
        return dict(changed=True, diff=diff_of(active, after), document=dict(activeReleaseId=active, releaseId=target))
    rollbridge.run(['stop', '--release-id', target])
    return dict(changed=True, diff=diff_of(active, after), document=dict(activeReleaseId=after, releaseId=target))


def main():
    argument_spec = dict(
        release_path=dict(type='path'),
        release_id=dict(type='str'),
        revision=dict(type='str'),
        state=dict(type='str', default='active', choices=['active', 'rolled_back', 'stopped']),
        watch=dict(type='str'),
        ensure_daemon=dict(type='bool', default=True),
    )
    argument_spec.update(ROLLBRIDGE_COMMON_ARGS)
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[('state', 'active', ('release_path',))],
        supports_check_mode=True,
    )
    rollbridge = Rollbridge(module)
    action = dict(active=deploy, rolled_back=roll_back, stopped=stop)[module.params['state']]
    try:
        outcome = action(module, rollbridge)
    except RollbridgeCommandError as error:
        rollbridge.fail(error, changed=False)
    document = outcome['document']
    result = result_fields(document)
    # "skipped" would make Ansible report the task as skipped instead of ok.
    result['already_active'] = bool(result.pop('skipped', False))
    result.update(changed=outcome['changed'], result=document)
    if module._diff:
        result['diff'] = outcome['diff']
    module.exit_json(**result)


if __name__ == '__main__':
    main()
