"""pytest plugin: make nbval run cells the way Jupyter does, so a trailing ``;`` hides output.

nbval 0.10+ executes cells with ``store_history=False``; IPython then cannot see the
cell's trailing semicolon and displays the value anyway (nbval issue #194, IPython
issue #14162), so a plotting cell ending in ``ax.legend();`` gains a
``<matplotlib.legend.Legend at 0x...>`` output that the committed notebook (executed
by Jupyter or nbclient, which store history) does not have. Load it with
``python -m pytest -p tests.nbval_semicolon --nbval ...`` from the repository root,
as the Makefile does.
"""

from __future__ import annotations

import nbval.kernel


def _execute_cell_input(self, cell_input, allow_stdin=None):
    return self.kc.execute(cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False)


if not hasattr(nbval.kernel.RunningKernel, "execute_cell_input"):
    raise ImportError("nbval_semicolon: nbval.kernel.RunningKernel.execute_cell_input is gone; update the plugin")
nbval.kernel.RunningKernel.execute_cell_input = _execute_cell_input
