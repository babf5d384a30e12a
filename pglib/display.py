"""Show pglib's own source in the book, so the text and the library cannot drift."""

from __future__ import annotations

import inspect


def show_source(*objects) -> object:
    """Display the real source of functions/classes (syntax-highlighted in Jupyter, plain text elsewhere).

    Example: ``show_source(pglib.returns.reward_to_go)``.
    """
    if not objects:
        raise ValueError("show_source needs at least one function, class or module")
    text = "\n\n".join(inspect.getsource(obj).rstrip() for obj in objects)
    try:
        from IPython.display import Code
    except ImportError:  # outside Jupyter
        print(text)
        return None
    return Code(text, language="python")
