"""Per-input QoS from parameters: sensor-data style (best effort, keep last 1) by default."""

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

RELIABILITY = {'best_effort': ReliabilityPolicy.BEST_EFFORT,
               'reliable': ReliabilityPolicy.RELIABLE}


def image_qos(reliability: str = 'best_effort', depth: int = 1) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=RELIABILITY[reliability],
                      durability=DurabilityPolicy.VOLATILE)


def per_input(values, count: int, name: str):
    """Return a per-input list: one value for all inputs, or exactly one per input."""
    values = list(values)
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise ValueError(f'{name} has {len(values)} values for {count} inputs: give one value '
                         f'for all inputs or one per input')
    return values


LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
