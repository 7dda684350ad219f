"""A TCP proxy on 127.0.0.1 that can stop forwarding: the network a phone has in a lift.

`StallingProxy(port)` forwards every connection to 127.0.0.1:port. `stall()` kills every open
connection silently for the browser (it stays open but no byte moves, as when a network drops
without a reset) and holds new ones; the server's side of it is closed, as a server notices a dead
peer in time (that side is issue 13's). `resume()` lets new connections through. Old ones stay dead.
`freeze()` holds every byte on both sides of every connection, old and new, and tells no one (a
mobile network that stops moving for a while); `thaw()` lets them all go on.
"""

import select
import socket
import threading

from conftest import bound_socket


class StallingProxy:
    def __init__(self, target_port: int):
        self.target = target_port
        self.sock = bound_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.generation = 0
        self.open = threading.Event()
        self.open.set()
        self.flowing = threading.Event()
        self.flowing.set()
        self.frozen_from = 0
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        self.upstreams: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        self.open.clear()
        self.generation += 1
        for upstream in self.upstreams:
            try:
                upstream.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.upstreams = []

    def resume(self) -> None:
        self.open.set()

    def freeze(self) -> None:
        self.flowing.clear()
        self.frozen_from = len(self.upstreams)

    def answers_held(self) -> int:
        """Connections opened since the freeze whose server has answered (its bytes wait here)."""
        fresh = self.upstreams[self.frozen_from:]
        return len(select.select(fresh, [], [], 0)[0]) if fresh else 0

    def thaw(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.closed.set()
        self.open.set()
        self.flowing.set()
        for s in [self.sock, *self.sockets]:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, self.generation), daemon=True).start()

    def _serve(self, client: socket.socket, generation: int) -> None:
        self.open.wait()  # made during a stall: nothing moves until resume()
        if self.closed.is_set():  # woken by close(), not resume(): the server behind may be gone already
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target))
        self.sockets += [client, upstream]
        self.upstreams.append(upstream)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst, generation), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, generation: int) -> None:
        try:
            while not self.closed.is_set():
                if generation != self.generation:  # stalled: this connection is dead for good
                    self.closed.wait()
                    return
                ready, _, _ = select.select([src], [], [], 0.05)
                if not ready or generation != self.generation:
                    continue
                self.flowing.wait()  # frozen: held, as a network that stopped moving holds it
                data = src.recv(65536)
                self.flowing.wait()
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
        except OSError:
            return
