"""shmx: zero-copy shared-memory publish/subscribe, the same topics as Rust's.

The seed's API::

    import shmx
    pub = shmx.Publisher("temperature", 0.0, 5)   # name, default value (its type), queue depth
    pub.publish(21.5)
    sub = shmx.Subscriber("temperature", 0.0)
    data, ok = sub.subscribe()                    # (21.5, True), or (last value, False)
"""

from ._shmx import *  # noqa: F401,F403
from ._shmx import Publisher, Subscriber, Error  # noqa: F401
