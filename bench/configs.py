"""Config files for the backend and the four proxies, and the shared TLS key.

Comparable settings for all: one worker, keep-alive to the backend with an
idle pool of 1024, no access log, X-Forwarded-For added, the same ECDSA
P-256 key and self-signed certificate, descriptors for 10,000+ clients.
"""

import os
import subprocess

LARGE_SIZE = 64 * 1024


def make_tls(work):
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "7",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    combined = os.path.join(work, "combined.pem")
    with open(combined, "w") as out:
        out.write(open(cert).read() + open(key).read())
    for path in (cert, key, combined):
        os.chmod(path, 0o644)
    return cert, key, combined


def write(work, name, text):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# The static-64 test's file: a small HTML page, served from WORK/files/ by
# the proxies that are also file servers (not HAProxy).
STATIC_PAGE = "files/page.html"


def static_files(work):
    os.makedirs(os.path.join(work, "files"), exist_ok=True)
    os.chmod(os.path.join(work, "files"), 0o755)
    rows = "".join(f"<tr><td>{i}</td><td>row {i} of a small static page</td></tr>\n" for i in range(50))
    page = os.path.join(work, STATIC_PAGE)
    with open(page, "w") as f:
        f.write(f"<!doctype html>\n<title>static</title>\n<table>\n{rows}</table>\n")
    os.chmod(page, 0o644)


def backend_config(work, port):
    static_files(work)
    with open(os.path.join(work, "64k"), "wb") as f:
        f.write(b"x" * LARGE_SIZE)
    return write(
        work,
        "backend.conf",
        f"""
worker_processes 1;
worker_rlimit_nofile 19000;
daemon off;
pid {work}/backend.pid;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    error_log {work}/backend.err error;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    sendfile on;
    open_file_cache max=16;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /small {{ return 200 "hello, world\\n"; }}
        location = /64k {{ root {work}; }}
    }}
}}
""",
    )


def nginx_config(work, http_port, https_port, backend, cert, key):
    return write(
        work,
        "nginx.conf",
        f"""
worker_processes 1;
worker_rlimit_nofile 19000;
daemon off;
pid {work}/nginx.pid;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    error_log {work}/nginx.err error;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 1024;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{http_port} backlog=4096;
        listen 127.0.0.1:{https_port} ssl http2 backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        # nginx before 1.23.4 leaves TLS 1.3 out by default; the others offer it.
        ssl_protocols TLSv1.2 TLSv1.3;
        location /files/ {{ root {work}; }}
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # 16 KiB buffers like HAProxy's; the default 4 KiB pages turn a
            # 64 KiB answer into many small reads and writes.
            proxy_buffer_size 16k;
            proxy_buffers 8 16k;
        }}
    }}
}}
""",
    )


def haproxy_config(work, http_port, https_port, backend, combined):
    return write(
        work,
        "haproxy.cfg",
        f"""
global
    nbthread 1
    maxconn 10500
    # Hard descriptor limits are often 20000: enough for 10,000 clients plus
    # the upstream pool, but short of HAProxy's reservation of 2 per maxconn.
    no strict-limits
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option forwardfor
    http-reuse safe
frontend proxy
    bind 127.0.0.1:{http_port}
    bind 127.0.0.1:{https_port} ssl crt {combined} alpn h2,http/1.1
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    default_backend app
backend app
    server backend 127.0.0.1:{backend} pool-max-conn 1024
""",
    )


def forwarder_config(work, port, backend):
    """HAProxy in TCP mode: bytes copied between client and backend, no HTTP
    work at all. Not a peer: it measures how many requests the load core
    (wrk and the backend) can take when the proxy's own work is near zero,
    which is the most any HTTP proxy on the proxy core could reach."""
    return write(
        work,
        "forwarder.cfg",
        f"""
global
    nbthread 1
    maxconn 2000
defaults
    mode tcp
    # Large transfers moved by the kernel (splice), not copied through
    # HAProxy's buffers: less work still on the proxy's core.
    option splice-auto
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend forward
    bind 127.0.0.1:{port}
    default_backend app
backend app
    server backend 127.0.0.1:{backend}
""",
    )


def caddy_config(work, http_port, https_port, backend, cert, key):
    proxy = f"""reverse_proxy 127.0.0.1:{backend} {{
        transport http {{
            keepalive 90s
            keepalive_idle_conns 1024
            keepalive_idle_conns_per_host 1024
        }}
    }}"""
    return write(
        work,
        "Caddyfile",
        f"""
{{
    admin off
    auto_https off
    default_bind 127.0.0.1
}}
http://:{http_port} {{
    handle /files/* {{
        root * {work}
        file_server
    }}
    handle {{
        {proxy}
    }}
}}
https://:{https_port} {{
    tls {cert} {key}
    {proxy}
}}
""",
    )


def wharf_configs(work, http_port, https_port, backend, cert, key):
    """wharf configs to try in order: HTTPS from files with plain HTTP kept
    (not redirected), the same without `redirect_http`, then plain HTTP only
    for a wharf that cannot terminate TLS yet.

    Its own log at "error", like nginx's error_log here (and by default):
    wrk sends the IP address as SNI and rustls warns about that on every
    handshake."""
    tls = f'mode = "files"\ncert = "{cert}"\nkey = "{key}"\n'
    https = f'https = ["127.0.0.1:{https_port}"]\n'
    variants = [
        ("wharf-tls.toml", https, f"[tls]\n{tls}redirect_http = false\n"),
        ("wharf-tls-redirect.toml", https, f"[tls]\n{tls}"),
        ("wharf.toml", "", ""),
    ]
    return [
        write(
            work,
            name,
            f"""[server]
listen = ["127.0.0.1:{http_port}"]
{https_line}admin = "off"

[log]
access = "off"
level = "error"

{tls_table}
[[site]]
  [[site.route]]
  path = "/files/"
  static = "{work}/files"
  [[site.route]]
  path = "/"
  upstream = "backend"

[upstream.backend]
servers = ["127.0.0.1:{backend}"]
""",
        )
        for name, https_line, tls_table in variants
    ]
