# -*- coding: utf-8 -*-
# Copyright: rollbridge contributors
# MIT License (see the repository's LICENSE)
"""Runs the rollbridge binary on the managed host and turns its ``--json`` answers into module results.

The modules never reimplement deploy logic: they build the command line, run the binary with
``ROLLBRIDGE_OUTPUT=json`` and map ``{"status": "success", ...}`` or ``{"error": {code, message, fix}}``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

# Options every module shares.
ROLLBRIDGE_COMMON_ARGS = dict(
    config=dict(type='path', required=True),
    binary=dict(type='str', default='rollbridge'),
)

# Where the install role puts the binary, searched after PATH (an SSH session's PATH is short).
EXTRA_BINARY_DIRS = ['/usr/local/bin', '/opt/rollbridge/bin']

DAEMON_UNREACHABLE = 'ERR_DAEMON_UNREACHABLE'


class RollbridgeCommandError(Exception):
    """The binary failed: rollbridge's error code, message and fix, or what it printed instead."""

    def __init__(self, code, message, fix=None, rc=None, stdout='', stderr='', details=None):
        super(RollbridgeCommandError, self).__init__(message)
        self.code = code
        self.message = message
        self.fix = fix
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.details = details


def parse_json_document(text):
    """The one JSON document the binary printed (the last line holding one, if anything precedes it), or None."""
    text = (text or '').strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith('{'):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def snake_case(name):
    out = []
    for char in name:
        if char.isupper():
            out.append('_')
            out.append(char.lower())
        else:
            out.append(char)
    return ''.join(out)


class Rollbridge(object):
    """The rollbridge CLI on this host, for one config file."""

    def __init__(self, module):
        self.module = module
        self.config = module.params['config']
        self.binary = self._find_binary(module.params['binary'])

    def _find_binary(self, binary):
        if '/' in binary:
            if not os.access(binary, os.X_OK):
                self.module.fail_json(
                    msg='The rollbridge binary {0} does not exist or is not executable'.format(binary),
                    code='ERR_ANSIBLE_BINARY_NOT_FOUND',
                    fix='Install it with the rollbridge.deploy.install role, or set the binary option to its path')
            return binary
        found = self.module.get_bin_path(binary, required=False, opt_dirs=EXTRA_BINARY_DIRS)
        if not found:
            self.module.fail_json(
                msg='No {0} executable on PATH or in {1}'.format(binary, ', '.join(EXTRA_BINARY_DIRS)),
                code='ERR_ANSIBLE_BINARY_NOT_FOUND',
                fix='Install it with the rollbridge.deploy.install role, or set the binary option to its absolute path')
        return found

    def run(self, args):
        """Runs ``rollbridge <args> --config <config> --json``; returns the success document or raises."""
        command = [self.binary] + list(args) + ['--config', self.config, '--json']
        rc, stdout, stderr = self.module.run_command(
            command,
            cwd=os.path.dirname(self.config) or None,
            environ_update={'ROLLBRIDGE_OUTPUT': 'json'},
        )
        document = parse_json_document(stdout)
        if rc == 0 and isinstance(document, dict) and 'error' not in document:
            return document
        error = document.get('error') if isinstance(document, dict) else None
        if isinstance(error, dict):
            raise RollbridgeCommandError(
                error.get('code', 'ERR_INTERNAL'), error.get('message', ''), error.get('fix'),
                rc=rc, stdout=stdout, stderr=stderr, details=error.get('details'))
        message = (stderr or stdout or '').strip() or 'no output'
        raise RollbridgeCommandError(
            'ERR_USAGE' if rc == 2 else 'ERR_INTERNAL',
            '{0} exited with {1}: {2}'.format(' '.join(command[:2]), rc, message[-2000:]),
            rc=rc, stdout=stdout, stderr=stderr)

    def status(self):
        """The daemon's status document, or None when no daemon answers on the config's control socket."""
        try:
            return self.run(['status'])
        except RollbridgeCommandError as error:
            if error.code == DAEMON_UNREACHABLE:
                return None
            raise

    def fail(self, error, **result):
        """Ends the module with rollbridge's error: ``msg`` is ``CODE: message``; ``code`` and ``fix`` as fields."""
        result.update(
            msg='{0}: {1}'.format(error.code, error.message),
            code=error.code,
            fix=error.fix,
            rc=error.rc,
            stderr=error.stderr,
        )
        if error.details is not None:
            result['details'] = error.details
        self.module.fail_json(**result)


def release_states(status, release_id):
    """The states (``active``, ``draining``, ``stopped`` …) of a release id in a status document: one per entry
    (a rolled-back-to release is listed again beside its stopped earlier run)."""
    return [release.get('state') for release in (status or {}).get('releases') or [] if release.get('releaseId') == release_id]


def result_fields(document):
    """The deploy result's fields in snake case (activeReleaseId → active_release_id)."""
    return dict((snake_case(key), value) for key, value in document.items() if key != 'status')
