"""Publishers, subscribers and wait sets: the seed's API for ``bool``/``int``/``float``
topics, and topics of any message type (declared in Python, or adopted from the topic)."""

import asyncio
import select
import time

from . import _shmx
from ._types import StructType, adopt, message_type, RelSlice, _RelStr

__all__ = ["Publisher", "Subscriber", "WaitSet"]


def _is_seed(value):
    return isinstance(value, (bool, int, float))


class Publisher:
    """Publishes on topic ``name``.

    ``Publisher(name, default_value, buffer_num=16)`` with a ``bool``, ``int`` or ``float``
    default is the seed's API: ``publish(value)`` sends one value, on the same topic as
    Rust's ``Publisher<bool>``, ``Publisher<i64>`` or ``Publisher<f64>``. ``buffer_num`` is
    the queue depth: how many values a subscriber may have waiting before the oldest is
    dropped; the last value is kept as history for subscribers that come later.

    ``Publisher(name, MessageType, buffer_num=16, *, history=None, max_tail_bytes=None,
    max_loans=None, overflow=None, block_timeout=None)`` publishes messages of a type declared in Python (``shmx.Struct``,
    ``shmx.struct``, a primitive or an array) or, with ``None``, of the existing topic's
    type: ``loan()`` a chunk, write its fields in place, ``publish(loan)``; or ``send(dict
    or tuple)``. A topic that holds another type raises ``shmx.TypeMismatch``.
    ``max_tail_bytes`` is the room for ``RelSlice``/``RelStr`` data after the message;
    ``overflow`` what a full subscriber queue does: ``"drop_oldest"`` (the default: latest
    data wins), ``"block"`` (wait up to ``block_timeout`` seconds, or forever) or ``"fail"``
    (``shmx.QueueFull``). Unset options come from shmx's defaults file, as in Rust.

    Every constructor takes ``root=`` (default: ``$SHMX_ROOT``, or shmx's default root).
    """

    def __new__(cls, name, message_type=None, *args, **kwargs):
        if cls is Publisher:
            cls = _SeedPublisher if _is_seed(message_type) else _TypedPublisher
        return object.__new__(cls)


class _SeedPublisher(Publisher):
    def __init__(self, name, default_value, buffer_num=16, *, root=None):
        self._inner = _shmx.SeedPublisher(name, default_value, buffer_num, root=root)
        # Bound to the compiled method: no Python frame per call.
        self.publish = self._inner.publish
        self.topic = self._inner.topic

    def __repr__(self):
        return f"<shmx.Publisher {self.topic!r} (seed)>"


class _TypedPublisher(Publisher):
    def __init__(self, name, message_type=None, buffer_num=16, *, root=None, history=None,
                 max_tail_bytes=None, max_loans=None, overflow=None, block_timeout=None):
        t = _typed_endpoint(self, message_type, lambda schema: _shmx.RawPublisher(
            name, schema, buffer_num, root=root, history=history,
            max_tail_bytes=max_tail_bytes, max_loans=max_loans, overflow=overflow,
            block_timeout=block_timeout))
        # Bound to the compiled methods: no Python frame per call.
        self.loan = self._raw.loan
        self.publish = self._raw.publish
        self._rel_fields = [(n, ft) for n, _, ft in getattr(t, "fields", ())
                            if isinstance(ft, (RelSlice, _RelStr))]

    @property
    def capacity(self):
        """The most bytes a sample may have: the message and its whole tail."""
        return self._raw.capacity

    def subscriber_count(self):
        """Number of subscribers connected."""
        return self._raw.subscriber_count()

    def pool_stats(self):
        """The pool's chunks by state, after taking back what subscribers returned: a
        dict of ``total``, ``free``, ``loaned``, ``history``, ``delivered``, ``pinned``."""
        return self._raw.pool_stats()

    def publish(self, loan):
        """Publishes a loan of this publisher (``loan()``): zero-copy. ``send`` copies a
        dict or tuple."""
        self._raw.publish(loan)

    def send(self, value):
        """Publishes a message given as a dict of fields, a tuple of all fields in order
        (or the value itself for a topic whose type is not a struct): copied into a loaned
        chunk. ``RelSlice`` and ``RelStr`` fields take arrays and strings."""
        m = self._raw.loan(self._tail_for(value))
        t = self._type
        if not isinstance(t, StructType):
            m.value = value
        elif isinstance(value, dict):
            for k, v in value.items():
                m[k] = v
        elif isinstance(value, (tuple, list)):
            if len(value) != len(t.fields):
                raise TypeError(f"{t.name} has {len(t.fields)} fields, not {len(value)}")
            for (k, _, _), v in zip(t.fields, value):
                m[k] = v
        else:
            raise TypeError(f"send a dict or a tuple of {t.name}'s fields, not "
                            f"{type(value).__name__}")
        m._publish(self._raw)

    def _tail_for(self, value):
        """The tail a copied message needs (its top-level relative fields'), or ``None``
        (the largest) when that is not simple to tell."""
        if not self._rel_fields:
            return 0
        if not isinstance(value, dict):
            return None
        need = 0
        for name, ft in self._rel_fields:
            v = value.get(name)
            if v is None:
                continue
            if isinstance(v, str):
                need += len(v.encode("utf-8"))
            else:
                try:
                    import numpy as np
                    need += np.asarray(v).size * ft.elem.size + ft.elem.align
                except Exception:
                    return None
        return need

    def __repr__(self):
        return f"<shmx.Publisher {self.topic!r} {self.schema}>"


class Subscriber:
    """Receives the samples of topic ``name``.

    ``Subscriber(name, default_value)`` with a ``bool``, ``int`` or ``float`` default is the
    seed's API: ``subscribe()`` returns ``(value, True)`` for the next value published (in
    order, each once) or ``(last, False)`` when none waits (``last``: the last value
    received, or the default before the first); ``recv(timeout=None)`` waits for the next.

    ``Subscriber(name, MessageType=None, buffer_num=None, *, copy=False)`` receives messages
    of a type declared in Python, or with ``None`` of the existing topic's type (adopted
    from its stored schema). ``take()`` returns the next sample or ``None``; ``recv(timeout=
    None)`` waits (the GIL released; Ctrl-C interrupts it); ``for s in sub:`` iterates;
    ``await sub.recv_async()`` waits on asyncio. A sample is read in place: its fields by
    name (``s.x``, ``s["x"]``), arrays and ``RelSlice`` fields as read-only numpy views,
    ``RelStr`` fields as ``str``, ``s.value`` the whole message as a numpy structured
    scalar view. The chunk goes back to the publisher when the sample and all views of it
    are gone. ``copy=True`` copies each sample out before handing it over, for publishers
    that are not trusted.
    """

    def __new__(cls, name, message_type=None, *args, **kwargs):
        if cls is Subscriber:
            cls = _SeedSubscriber if _is_seed(message_type) else _TypedSubscriber
        return object.__new__(cls)

    def __iter__(self):
        while True:
            yield self.recv()

    def fileno(self):
        """A descriptor that polls readable while samples wait (level-triggered after a
        ``take`` or ``subscribe`` found nothing)."""
        return self._inner_fileno()

    async def recv_async(self):
        """Waits on the running asyncio loop for the next sample (or value)."""
        got = self._try()
        if got is not None:
            return got
        loop = asyncio.get_running_loop()
        fd = self.fileno()
        while True:
            got = self._try()
            if got is not None:
                return got
            fut = loop.create_future()

            def ready(fut=fut):
                if not fut.done():
                    fut.set_result(None)

            loop.add_reader(fd, ready)
            try:
                await fut
            finally:
                loop.remove_reader(fd)


class _SeedSubscriber(Subscriber):
    def __init__(self, name, default_value, buffer_num=None, *, root=None):
        self._inner = _shmx.SeedSubscriber(name, default_value, buffer_num, root=root)
        self.subscribe = self._inner.subscribe
        self.recv = self._inner.recv
        self.samples_waiting = self._inner.samples_waiting
        self._inner_fileno = self._inner.fileno
        self.topic = self._inner.topic

    def _try(self):
        return self._inner.recv(0)

    def __repr__(self):
        return f"<shmx.Subscriber {self.topic!r} (seed)>"


class _TypedSubscriber(Subscriber):
    def __init__(self, name, message_type=None, buffer_num=None, *, root=None, copy=False):
        _typed_endpoint(self, message_type, lambda schema: _shmx.RawSubscriber(
            name, schema, buffer_num, root=root, copy=copy))
        # Bound to the compiled methods: no Python frame per call.
        self.take = self._raw.take
        self.recv = self._raw.recv
        self.samples_waiting = self._raw.samples_waiting
        self._inner_fileno = self._raw.fileno
        self._try = self._raw.take

    def publisher_count(self):
        """Number of publishers connected."""
        return self._raw.publisher_count()

    def __repr__(self):
        return f"<shmx.Subscriber {self.topic!r} {self.schema}>"


def _typed_endpoint(endpoint, message_type, make):
    """Makes ``endpoint._raw`` with ``make(schema_text or None)`` for ``message_type`` (or
    the topic's type, adopted, for ``None``) and gives the endpoint its type attributes;
    returns the type."""
    schema = None
    if message_type is not None:
        t, handler = _declared(message_type)
        schema = t.schema
    endpoint._raw = make(schema)
    if message_type is None:
        t, handler = message_type_of(endpoint._raw.schema)
    endpoint._type = t
    endpoint.type = handler if isinstance(t, StructType) else t
    endpoint._raw._set_type(handler)
    endpoint.topic = endpoint._raw.topic
    endpoint.schema = endpoint._raw.schema
    return t


def _declared(t):
    try:
        return message_type(t)
    except TypeError as e:
        raise TypeError(f"a topic's second argument is a default value (a bool, an int or a "
                        f"float: the seed's API) or a message type: {e}") from None


def message_type_of(schema):
    """``(type, handler)`` of a topic's stored schema text."""
    if schema.startswith("rkyv:") and not schema.startswith("rkyv::"):
        raise _shmx.InvalidSchema(
            f"invalid schema: the topic holds archived rkyv values ({schema!r}), which have "
            "no layout to read in place")
    return message_type(adopt(schema))


class WaitSet:
    """Waits on several subscribers at once (seed or typed)::

        ws = shmx.WaitSet()
        ws.attach(pose_sub)
        ws.attach(image_sub)
        for sub in ws.wait(timeout=1.0):
            while (s := sub.take()) is not None: ...

    ``wait`` returns the attached subscribers that have samples waiting (an empty list when
    ``timeout`` seconds passed first); take from each until it returns ``None`` before
    waiting again. The GIL is released while it waits; Ctrl-C interrupts it.
    """

    def __init__(self):
        self._subs = {}
        self._poll = select.poll()

    def attach(self, subscriber):
        """Adds a subscriber (anything with ``fileno()``)."""
        fd = subscriber.fileno()
        self._subs[fd] = subscriber
        self._poll.register(fd, select.POLLIN)

    def detach(self, subscriber):
        """Removes a subscriber."""
        fd = subscriber.fileno()
        if self._subs.pop(fd, None) is not None:
            self._poll.unregister(fd)

    def __len__(self):
        return len(self._subs)

    def wait(self, timeout=None):
        """The attached subscribers with samples waiting, waiting up to ``timeout`` seconds
        (``None``: forever) for one."""
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be None or a number >= 0, not {timeout}")
        if timeout is not None and timeout > 1e9:
            timeout = None  # past any deadline worth keeping (infinity included): forever
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is None:
                ms = None
            else:
                ms = min(max(0, int((deadline - time.monotonic()) * 1000 + 0.999)), 1 << 30)
            events = self._poll.poll(ms)
            # A descriptor is also readable for a publisher that joined or left, or a
            # wake-up for samples taken since: `samples_waiting` tells, and clears those.
            ready = [self._subs[fd] for fd, _ in events
                     if fd in self._subs and self._subs[fd].samples_waiting()]
            if ready or (deadline is not None and time.monotonic() >= deadline):
                return ready
