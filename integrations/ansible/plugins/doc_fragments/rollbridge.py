# -*- coding: utf-8 -*-
# Copyright: rollbridge contributors
# MIT License (see the repository's LICENSE)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # The options every module of the collection has (module_utils/rollbridge.py's ROLLBRIDGE_COMMON_ARGS):
    # which config file, and which rollbridge executable runs it. A module may extend the description
    # of config (its own keys override these); type, required and default come from here.
    DOCUMENTATION = r'''
options:
  config:
    description:
      - Path of the application's rollbridge config file on the managed host.
    type: path
    required: true
  binary:
    description:
      - The rollbridge executable on the managed host, a name looked up on C(PATH), C(/usr/local/bin) and
        C(/opt/rollbridge/bin), or an absolute path.
    type: str
    default: rollbridge
'''
