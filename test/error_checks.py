"""The check every test of a user-facing error makes: the error is raised and reads as one line."""

import pytest


def raises_one_line(error_type, call, *args, **kwargs):
    """
    Return the ``error_type`` that ``call(*args, **kwargs)`` raises, checked to be one line.

    Every user-facing error is one line (hobot_npu_infer.core.errors), so the tests check it
    in one place and then look at what the line says.
    """
    with pytest.raises(error_type) as excinfo:
        call(*args, **kwargs)
    message = str(excinfo.value)
    assert message and '\n' not in message
    return excinfo.value
