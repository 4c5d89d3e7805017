"""KEY=VALUE option values shared by the verbs: keys stripped, values parsed, clear errors."""

from __future__ import annotations

import pytest

from nitedr_ros.commands.options import json_or_text, parse_models, parse_pairs, parse_param_overrides
from nitedr_ros.errors import ConfigError


def test_pairs_are_parsed_and_bad_items_name_the_option():
    assert parse_models([' derain = /m/a.onnx ', 'fusion=b']) == {'derain': '/m/a.onnx', 'fusion': 'b'}
    assert parse_param_overrides(['threads=2', 'sync.slop=0.05', 'enable=false', 'empty=']) == {
        'threads': 2, 'sync.slop': 0.05, 'enable': False, 'empty': None}
    assert parse_pairs(['a=[1, 2]', 'b=text', 'c='], '--set', parse=json_or_text, value_required=False) == {
        'a': [1, 2], 'b': 'text', 'c': ''}
    for bad in ('derain', '=a.onnx', 'derain=', 'derain= '):
        with pytest.raises(ConfigError, match='--model needs ROLE=PATH'):
            parse_models([bad])
    with pytest.raises(ConfigError, match='--param needs NAME=VALUE'):
        parse_param_overrides(['slop'])
