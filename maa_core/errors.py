"""One exception type for bad input: its message is the single line a user sees."""


class MaaError(ValueError):
    """Malformed or mismatched input. str(err) names the file/field and what was expected."""


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise MaaError(msg)


def exit_code(e: MaaError, prog: str = "maa") -> int:
    """What every command line does with bad input: one line on stderr, exit code 2."""
    import sys

    print(f"{prog}: error: {' '.join(str(e).split()) or type(e).__name__}", file=sys.stderr)
    return 2
