"""A real tus client (tuspy, from PyPI) against a running hub: one whole upload, and one whose connection
is cut mid-body and that a fresh client resumes from the server's offset. Prints a JSON line.

usage: tus_client_check.py BASE_URL KEY PHOTO OTHER_PHOTO LABEL [RESUME_BASE_URL]

With RESUME_BASE_URL (another API node of the same hub), the cut upload is resumed through that node.
"""
import json
import socket
import sys
import time
from urllib.parse import urlparse

from tusclient import client

base, key, photo, other_photo, label = sys.argv[1:6]
resume_base = sys.argv[6] if len(sys.argv) > 6 else base
headers = {"Authorization": "Bearer " + key}
tus = client.TusClient(base + "/v1/uploads/", headers=headers)

# 1. A whole upload in 256 KB chunks.
whole = tus.uploader(photo, chunk_size=256 * 1024, metadata={"label": label, "filename": "whole.jpg", "device": "tuspy"})
whole.upload()

# 2. Another photo: the first 64 KB, then a PATCH whose connection is cut halfway through its body.
other = open(other_photo, "rb").read()
first = tus.uploader(other_photo, chunk_size=64 * 1024, metadata={"label": label, "filename": "cut.jpg"})
first.upload_chunk()  # creates the upload and sends 64 KB
url = first.url
offset = first.offset

# Cut the connection mid-body: announce the rest, send half of it, close the socket.
u = urlparse(url)
rest = other[offset:]
half = rest[: len(rest) // 2]
s = socket.create_connection((u.hostname, u.port))
s.sendall((f"PATCH {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nAuthorization: Bearer {key}\r\n"
           f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
           f"Content-Length: {len(rest)}\r\n\r\n").encode() + half)
s.close()

# A fresh client (a phone after the network came back) resumes from the server's offset. The server may
# still be finishing the cut request (409 while it holds the upload), so retry as a phone would.
resume_url = resume_base + url[len(base):] if url.startswith(base) else url
resumer = client.TusClient(resume_base + "/v1/uploads/", headers=headers)
resumed = resumer.uploader(other_photo, url=resume_url, chunk_size=1024 * 1024, retries=20, retry_delay=0.25)
# The server keeps what arrived before the cut: wait (bounded) until it has taken note of it.
server_offset = resumed.get_offset()
for _ in range(100):
    if server_offset > offset:
        break
    time.sleep(0.05)
    server_offset = resumed.get_offset()
resumed.offset = server_offset
resumed.upload()
print(json.dumps({"whole_url": whole.url, "cut_url": url, "resumed_url": resume_url, "sent_before_cut": offset + len(half),
                  "server_offset_after_cut": server_offset, "size": len(other)}))
