"""
Diagnostic status names, built and read back in this one place.

The nodes name their statuses ``<node>: <task>``, as diagnostic_updater does; the task says what
the status is about: ``<node>: input <topic>`` (one camera input), ``<node>: model <model>`` (the
model serving them) and ``<node>: head <head> on <topic>`` (one head of a packed model on one
input). diag_monitor, the demo and the benchmarks find their rows by these names, so a name
built here is a name :func:`parse_status_name` reads.
"""

from dataclasses import dataclass
from typing import Optional

INPUT = 'input'
MODEL = 'model'
HEAD = 'head'
ON = ' on '  # between a head and its input topic


@dataclass(frozen=True)
class StatusName:
    """What a status name says: its kind, node and subject (topic or model), and its head."""

    kind: str  # INPUT, MODEL or HEAD
    node: str
    subject: str  # the input topic (INPUT, HEAD) or the model (MODEL)
    head: Optional[str] = None  # HEAD only


def input_status(node: str, topic: str) -> str:
    """Return the name of the status of one input topic of ``node``."""
    return f'{node}: {INPUT} {topic}'


def model_status(node: str, model: str) -> str:
    """Return the name of the status of the model ``node`` runs."""
    return f'{node}: {MODEL} {model}'


def head_status(node: str, head: str, topic: str) -> str:
    """Return the name of the status of one head of a packed model on one input topic."""
    return f'{node}: {HEAD} {head}{ON}{topic}'


def parse_status_name(name: str) -> Optional[StatusName]:
    """
    Parse what a name built by this module says; None for any other name.

    The node is what comes before the first ``': '``; a model name may hold anything after
    ``model ``, while head names and topics hold no spaces (they are parts of topic names).
    """
    node, sep, task = name.partition(': ')
    if not (sep and node):
        return None
    kind, _, rest = task.partition(' ')
    if not rest:
        return None
    if kind in (INPUT, MODEL):
        return StatusName(kind, node, rest)
    if kind == HEAD:
        head, on, topic = rest.partition(ON)
        if head and on and topic:
            return StatusName(HEAD, node, topic, head)
    return None
