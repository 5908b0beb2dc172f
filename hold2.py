import socket, time, os, sys, resource, selectors
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
P=int(os.environ["PORT"]); n=int(sys.argv[1]); src=sys.argv[2]; dur=float(sys.argv[3])
sel=selectors.DefaultSelector(); live=set(); t0=time.time(); opened=0
def op():
    global opened
    s=socket.socket(); s.bind((src,0)); s.setblocking(False)
    try: s.connect(("127.0.0.1",P))
    except BlockingIOError: pass
    sel.register(s, selectors.EVENT_WRITE, "c"); live.add(s); opened+=1
last=0
while time.time()-t0<dur:
    while len(live)<n: op()
    for k,ev in sel.select(0.5):
        s=k.fileobj
        if k.data=="c":
            try: s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"); sel.modify(s, selectors.EVENT_READ, "r")
            except Exception: sel.unregister(s); live.discard(s); s.close()
        else:
            try: d=s.recv(100)
            except Exception: d=b""
            if not d: sel.unregister(s); live.discard(s); s.close()
    if time.time()-last>10: last=time.time(); print(f"{time.time()-t0:.0f}s live {len(live)} opened {opened}", flush=True)
