#!/usr/bin/env bash
# The tokio_chat example scaled out on this machine: Redis, N chat nodes sharing its stream,
# and nginx in front of them as a WebSocket-aware load balancer, all on 127.0.0.1, with their
# files in a temporary directory. Ctrl-C stops everything and removes it.
#
#   scripts/chat-cluster.sh [NODES]        # default 2 nodes
#
# Then open http://127.0.0.1:9000/ in a few tabs, and kill a node (its pid is printed) to
# watch its clients come back through nginx on another node without losing a message.
# Ports: PORT (nginx, 9000), NODE_PORT (first node, 9101; the next ones follow),
# REDIS_PORT (6390). Needs redis-server and nginx (scripts/setup-peers.sh installs both).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nodes=${1:-2}
front=${PORT:-9000}
first=${NODE_PORT:-9101}
redis_port=${REDIS_PORT:-6390}
say() { echo "chat-cluster: $*"; }
nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
for program in redis-server redis-cli "$nginx_bin"; do
  command -v "$program" >/dev/null 2>&1 || { say "$program is missing (scripts/setup-peers.sh installs it)" >&2; exit 1; }
done

dir=$(mktemp -d)
chmod 755 "$dir" # nginx's worker runs as nobody when started as root
pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

(cd "$root" && cargo build --release --example tokio_chat)
chat=${CARGO_TARGET_DIR:-$root/target}/release/examples/tokio_chat

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$dir" --logfile "$dir/redis.log" &
pids+=($!)
for _ in $(seq 50); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$redis_port" ping >/dev/null || { say "redis-server did not start; see $dir/redis.log" >&2; exit 1; }

upstreams=""
for i in $(seq "$nodes"); do
  port=$((first + i - 1))
  "$chat" "127.0.0.1:$port" --redis "127.0.0.1:$redis_port" --node "node-$i" &
  pids+=($!)
  say "node-$i: pid $! on 127.0.0.1:$port"
  upstreams+="    server 127.0.0.1:$port max_fails=1 fail_timeout=10s;"$'\n'
done

cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  # "Connection: upgrade" for WebSocket requests, "close" for the rest.
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  upstream chat {
    # WebSocket connections last: balance by open connections, not by requests.
    least_conn;
$upstreams  }
  server {
    listen 127.0.0.1:$front;
    location / {
      proxy_pass http://chat;
      proxy_http_version 1.1;                          # Upgrade needs HTTP/1.1
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header Host \$http_host;               # with the port: the same-origin check
      proxy_connect_timeout 2s;                        # a dead node: try the next one soon
      proxy_read_timeout 1h;                           # idle chats are not cut after 60 s
      proxy_send_timeout 1h;
    }
  }
}
EOF
"$nginx_bin" -p "$dir/" -c "$dir/nginx.conf" -e stderr &
pids+=($!)
say "chat on http://127.0.0.1:$front/ ($nodes nodes behind nginx, Redis on $redis_port); Ctrl-C stops it"
wait
