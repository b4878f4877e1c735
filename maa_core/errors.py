"""One exception type for bad input: its message is the single line a user sees."""


class MaaError(ValueError):
    """Malformed or mismatched input. str(err) names the file/field and what was expected."""


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise MaaError(msg)
