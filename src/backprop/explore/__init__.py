"""`backprop explore`: the backward pass, every matrix of the notes, live in the browser.

The server (`backprop.explore.server`) computes everything with the engine and
`backprop.layers`/`backprop.losses` (`backprop.explore.views`); the page only draws.
"""

from backprop.explore.server import ExploreServer, make_server, serve
from backprop.explore.session import LIMITS, ExploreConfig, Session

__all__ = ["LIMITS", "ExploreConfig", "ExploreServer", "Session", "make_server", "serve"]
