# A resolver for test hosts: on udp/53 and tcp/53 of every address it answers every
# query NXDOMAIN. Run by the tests inside namespaces they made.
import socket, struct, threading
def answer(q):
    if len(q) < 12:
        return None
    flags = 0x8183 | (struct.unpack("!H", q[2:4])[0] & 0x0100)
    return q[:2] + struct.pack("!H", flags) + q[4:6] + b"\0\0\0\0\0\0" + q[12:]
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 53))
    while True:
        q, peer = s.recvfrom(4096)
        a = answer(q)
        if a:
            s.sendto(a, peer)
def tcp_one(c):
    with c:
        n = c.recv(2)
        if len(n) == 2:
            q = c.recv(struct.unpack("!H", n)[0])
            a = answer(q)
            if a:
                c.sendall(struct.pack("!H", len(a)) + a)
def tcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 53))
    s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=tcp_one, args=(c,), daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
tcp()
