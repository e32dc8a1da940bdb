# A TCP proxy on loopback that a test can cut: forwards 127.0.0.1:LISTEN to
# 127.0.0.1:TARGET; SIGUSR1 cuts (closes every connection and refuses new ones until told
# otherwise), SIGHUP freezes (every connection, and each new one, stays open and nothing
# goes through: a server or network that holds the connection and says nothing, which
# TCP does not notice), SIGUSR2 lets connections through again (what was held open
# then goes on). Prints its port once it listens.
# Run by tests/e2e/pg_outage.sh and pg_silent.sh: python3 tcpcut.py TARGET_PORT
import selectors
import signal
import socket
import sys

target = int(sys.argv[1])
cut = False
frozen = False
pairs = {}  # socket -> its other end
held = []  # connections accepted while frozen, not yet passed on
sel = selectors.DefaultSelector()


def drop(s):
    o = pairs.pop(s, None)
    for x in (s, o):
        if x is None:
            continue
        pairs.pop(x, None)
        try:
            sel.unregister(x)
        except (KeyError, ValueError):
            pass
        x.close()


def on_cut(_sig, _frm):
    global cut
    cut = True
    for s in list(pairs):
        drop(s)


def on_freeze(_sig, _frm):
    global frozen
    if not frozen:
        frozen = True
        for x in pairs:
            sel.unregister(x)


def pass_on(c):
    try:
        t = socket.create_connection(("127.0.0.1", target))
    except OSError:
        c.close()
        return
    pairs[c], pairs[t] = t, c
    sel.register(c, selectors.EVENT_READ)
    sel.register(t, selectors.EVENT_READ)


def on_let(_sig, _frm):
    global cut, frozen
    cut = False
    if frozen:
        frozen = False
        for x in pairs:
            sel.register(x, selectors.EVENT_READ)
        while held:
            pass_on(held.pop())


signal.signal(signal.SIGUSR1, on_cut)
signal.signal(signal.SIGUSR2, on_let)
signal.signal(signal.SIGHUP, on_freeze)
lsock = socket.socket()
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", 0))
lsock.listen(64)
sel.register(lsock, selectors.EVENT_READ)
print(lsock.getsockname()[1], flush=True)
while True:
    try:
        events = sel.select()
    except InterruptedError:
        continue
    for key, _ in events:
        s = key.fileobj
        if s is lsock:
            c, _ = lsock.accept()
            if cut:
                c.close()
            elif frozen:
                held.append(c)
            else:
                pass_on(c)
            continue
        if frozen or s not in pairs:
            continue
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            drop(s)
            continue
        try:
            pairs[s].sendall(data)
        except OSError:
            drop(s)
