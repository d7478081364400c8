"""One line per error: how an exception of any library becomes one line of text."""

from hobot_npu_infer.core.errors import ConfigError, one_line
import pytest


@pytest.mark.parametrize('exc, options, line', [
    (RuntimeError('device lost\n  at frame 3'), {}, 'RuntimeError: device lost'),
    (RuntimeError('\n  device lost  \nmore'), {}, 'RuntimeError: device lost'),
    (ValueError(''), {}, 'ValueError'),
    (ValueError('  \n '), {'named': False}, 'ValueError'),
    (ConfigError('x' * 300), {}, 'ConfigError: ' + 'x' * 200),
    (ConfigError('x' * 300), {'named': False, 'limit': 160}, 'x' * 160),
    (ConfigError('x' * 300), {'limit': None}, 'ConfigError: ' + 'x' * 300),
    # OpenCV puts a traceback into its messages and the cause on the last line
    (RuntimeError('OpenCV(4.9) /src/imgcodecs.cpp:1\nerror: (-215) !buf.empty()\n'),
     {'named': False, 'last': True}, 'error: (-215) !buf.empty()'),
])
def test_one_line(exc, options, line):
    assert one_line(exc, **options) == line
