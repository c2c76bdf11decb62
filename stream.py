import socket,time,sys
s=socket.create_connection(('127.0.0.1',int(sys.argv[1]))); s.settimeout(10)
s.sendall(b'CONNECT 127.0.0.1:19001 HTTP/1.1\r\nHost: x\r\n\r\n')
t0=time.time(); s.recv(1000)
try:
    while True:
        s.sendall(b'x'); d=s.recv(10)
        if not d: break
        time.sleep(float(sys.argv[2]))
except Exception as e: print(e)
print('closed after %.2f'%(time.time()-t0))
