#!/usr/bin/env bash
# Installs Bobbin on a workshop PC (Debian/Ubuntu with systemd), from a built checkout:
#   cargo build --release -p bobbin-agent && sudo systemd/install.sh
# Idempotent: an existing /etc/bobbin/config.toml is never overwritten.
# DESTDIR=/some/root installs into a staging root and skips users, udev and systemctl
# (used to check the script without touching the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/bobbin}
ROOT=${DESTDIR:-}
[ -x "$BIN" ] || { echo "no $BIN: run 'cargo build --release -p bobbin-agent' first" >&2; exit 1; }

install -D -m 0755 "$BIN" "$ROOT/usr/bin/bobbin"
install -D -m 0644 README.md "$ROOT/usr/share/doc/bobbin/README.md"
install -d -m 0750 "$ROOT/etc/bobbin"
if [ ! -e "$ROOT/etc/bobbin/config.toml" ]; then
    # The example, pointed at the service's state directory.
    sed -e 's|^data_dir = .*|data_dir = "/var/lib/bobbin"|' \
        -e 's|^key_file = .*|key_file = "/var/lib/bobbin/agent.key"|' \
        config.example.toml > "$ROOT/etc/bobbin/config.toml"
    chmod 0640 "$ROOT/etc/bobbin/config.toml"
    echo "wrote $ROOT/etc/bobbin/config.toml: edit devices, stations and [sync]"
fi
for unit in bobbin.service bobbin-backup.service bobbin-backup.timer; do
    install -D -m 0644 "systemd/$unit" "$ROOT/etc/systemd/system/$unit"
done
install -D -m 0644 systemd/60-bobbin-scanners.rules "$ROOT/etc/udev/rules.d/60-bobbin-scanners.rules"
if [ -e systemd/mosquitto-bobbin.conf ]; then
    install -D -m 0644 systemd/mosquitto-bobbin.conf "$ROOT/usr/share/doc/bobbin/mosquitto-bobbin.conf"
fi

if [ -n "$ROOT" ]; then
    echo "staged into $ROOT (no users, udev or systemd changes)"
    exit 0
fi
getent group bobbin >/dev/null || groupadd --system bobbin
id bobbin >/dev/null 2>&1 || useradd --system --gid bobbin --groups dialout,plugdev \
    --home-dir /var/lib/bobbin --shell /usr/sbin/nologin bobbin
chgrp bobbin /etc/bobbin /etc/bobbin/config.toml
udevadm control --reload && udevadm trigger || true
systemctl daemon-reload
systemctl enable --now bobbin.service bobbin-backup.timer
echo "bobbin is running: systemctl status bobbin; bobbin status --config /etc/bobbin/config.toml"
