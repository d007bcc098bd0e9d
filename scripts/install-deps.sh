#!/usr/bin/env bash
# Installs what the tests need and the machine lacks: PostgreSQL's server
# binaries (initdb, pg_ctl) and Chromium for the UI tests. It uses apt-get
# when it runs as root on Debian; otherwise it says what is missing and
# leaves the tests to skip (or, with CI=true, to fail).
set -euo pipefail

missing=()
pg_bin=""
for d in /usr/lib/postgresql/*/bin; do
	[ -x "$d/initdb" ] && pg_bin="$d"
done
command -v initdb >/dev/null 2>&1 && pg_bin=$(dirname "$(command -v initdb)")
[ -n "$pg_bin" ] || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing ${missing[*]} with apt-get..." >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# --no-install-recommends keeps Chromium's install to about a minute.
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# Debian's postgresql package starts a cluster of its own; the tests
	# start throwaway clusters and need none.
	if command -v pg_ctlcluster >/dev/null 2>&1; then
		for c in /etc/postgresql/*/main; do
			[ -d "$c" ] || continue
			v=$(basename "$(dirname "$c")")
			pg_ctlcluster "$v" main stop >/dev/null 2>&1 || true
		done
	fi
	exit 0
fi
echo "missing: ${missing[*]} (run as root on Debian to install them, or install them yourself)" >&2
if [ "${CI:-}" = "true" ]; then
	exit 1
fi
