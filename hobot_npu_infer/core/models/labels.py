"""Class names from a labels file (one name per line) or a list given in configuration."""

from typing import List, Optional, Sequence

from hobot_npu_infer.core.errors import ConfigError


def load_labels(path: str) -> List[str]:
    try:
        with open(path, encoding='utf-8') as f:
            names = [line.strip() for line in f]
    except OSError as exc:
        raise ConfigError(f'cannot read labels file {path}: {exc.strerror}') from None
    while names and not names[-1]:
        names.pop()
    if not names:
        raise ConfigError(f'labels file {path} holds no class names')
    return names


def resolve_class_names(labels_file: Optional[str], class_names: Sequence[str],
                        default: Sequence[str] = ()) -> List[str]:
    """
    Resolve the class names to use.

    A labels file wins over a name list, which wins over the model's own names.
    """
    if labels_file:
        return load_labels(labels_file)
    return list(class_names) if class_names else list(default)
