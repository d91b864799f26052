"""Several worker processes, each dealt its share of the connections.

Workers that all accept from one listening socket take connections as they happen to
wake, and the first to wake takes every connection waiting: a burst of keep-alive
connections (a reverse proxy's pool, a load test) often lands on one worker, which then
serves it on one CPU while the others idle. So here the parent process accepts, and
deals each connection to the next worker in turn over a Unix socket (``SCM_RIGHTS``);
a worker serves what it is dealt with uvicorn's own protocol, as if it had accepted it.
A worker that is gone, or too busy to take the connection at once, is skipped; a worker
whose parent is gone finishes what it has and exits.
"""

import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from ..errors import GateError

logger = logging.getLogger("uvicorn.error")


class _Stop(Exception):
    """Raised by the parent's signal handler to leave the accept loop."""


class DealtServer(uvicorn.Server):
    """A uvicorn server fed accepted connections over ``channel`` instead of listening."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # no listener of its own
        loop = asyncio.get_running_loop()
        config = self.config
        starting: set[asyncio.Task[None]] = set()  # (the loop keeps only weak references)

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        async def serve(sock: socket.socket) -> None:
            try:
                await loop.connect_accepted_socket(protocol, sock, ssl=config.ssl)
            except OSError as e:  # a failed TLS handshake (or its timeout), a client gone
                logger.debug("connection dropped before its first request: %s", e)
                sock.close()

        def receive() -> None:
            try:
                message, fds, _, _ = socket.recv_fds(self.channel, 1, 1)
            except BlockingIOError:
                return
            if not message:  # the parent is gone: take no more, finish what we have
                loop.remove_reader(self.channel.fileno())
                self.should_exit = True
            for fd in fds:
                task = loop.create_task(serve(socket.socket(fileno=fd)))
                starting.add(task)
                task.add_done_callback(starting.discard)

        self.channel.setblocking(False)
        loop.add_reader(self.channel.fileno(), receive)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets=[])


def serve_dealt(
    listener: socket.socket, workers: int, make_config: Callable[[int], uvicorn.Config]
) -> None:
    """Fork ``workers`` processes (each makes its config with its index) and deal them the
    connections ``listener`` accepts,
    until SIGTERM or SIGINT (passed on to them; KeyboardInterrupt after the latter), or
    GateError when every worker has exited."""
    channels: list[socket.socket] = []
    children = []
    for index in range(workers):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # a worker: its own app and event loop; only its channel open
            try:
                # signals come from the parent only: a Ctrl-C sent to the terminal's
                # process group as well would arrive twice and cut the shutdown short
                os.setpgid(0, 0)
                for sock in (listener, ours, *channels):
                    sock.close()
                DealtServer(make_config(index), theirs).run()
            finally:
                os._exit(0)
        theirs.close()
        ours.setblocking(False)
        channels.append(ours)
        children.append(pid)

    live = set(children)
    dealing, received = True, 0  # the signal that stopped the dealing

    def pass_on(signum: int, _: Any) -> None:
        nonlocal received
        received = received or signum
        for child in list(live):  # (a SIGCHLD may change it meanwhile)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)
        if dealing:
            raise _Stop

    def reap(signum: int, _: Any) -> None:
        for child in list(live):
            if os.waitpid(child, os.WNOHANG)[0]:
                live.discard(child)
        if dealing and not live:
            raise _Stop

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, pass_on)
    signal.signal(signal.SIGCHLD, reap)
    try:
        reap(signal.SIGCHLD, None)  # any worker that died before the handler was set
        _deal(listener, channels)
    except _Stop:
        pass
    finally:
        dealing = False
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        listener.close()
        for channel in channels:
            channel.close()
        for child in live:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child, 0)
    if received == signal.SIGINT:
        raise KeyboardInterrupt  # as with one worker: the command exits with status 130
    if not received:
        raise GateError("every worker process has exited (see their errors above)")


def _deal(listener: socket.socket, channels: list[socket.socket]) -> None:
    turn = 0
    while channels:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            turn = _hand_over(conn, channels, turn)


def _hand_over(conn: socket.socket, channels: list[socket.socket], turn: int) -> int:
    """Pass ``conn`` to the first worker from ``turn`` on that takes it; the next turn.
    When every worker's queue is full, wait until one has room."""
    while channels:
        full = 0
        while full < len(channels):
            channel = channels[turn % len(channels)]
            turn += 1
            try:
                socket.send_fds(channel, [b"c"], [conn.fileno()])
                return turn
            except BlockingIOError:
                full += 1
            except OSError:  # that worker has exited
                channels.remove(channel)
                channel.close()
        if channels:
            select.select([], channels, [])
    return turn
