#!/bin/bash
# Run Debian's (or any) nginx with deploy/nginx.conf outside docker compose, e.g. to check the
# proxy in front of an Odoo started by hand. Only the upstream addresses and the listening
# port change, by sed, in a copy under $DIR; every other line is the file docker compose uses.
#
#   bash deploy/nginx-local.sh ODOO_HTTP ODOO_GEVENT LISTEN_PORT [DIR]
#   bash deploy/nginx-local.sh 127.0.0.1:8069 127.0.0.1:8072 8080
#   bash deploy/nginx-local.sh stop 8080 [DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = stop ]; then
    dir=${3:-/tmp/odoo-nginx-$2}
    exec nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx-main.conf" -s stop
fi
http=${1:?ODOO_HTTP host:port}; gevent=${2:?ODOO_GEVENT host:port}; port=${3:?LISTEN_PORT}
dir=${4:-/tmp/odoo-nginx-$port}
mkdir -p "$dir"
sed -e "s#server odoo:8069;#server $http;#" \
    -e "s#server odoo:8072;#server $gevent;#" \
    -e "s#listen 80;#listen 127.0.0.1:$port;#" \
    "$here/nginx.conf" > "$dir/odoo-site.conf"
# the official nginx image includes conf.d/*.conf inside its http block: the same here
cat > "$dir/nginx-main.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $dir/access.log;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dir/odoo-site.conf;
}
CONF
diff "$here/nginx.conf" "$dir/odoo-site.conf" || true
nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx-main.conf" -t
nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx-main.conf"
echo "nginx on http://127.0.0.1:$port -> $http, /websocket -> $gevent (stop: $0 stop $port $dir)"
