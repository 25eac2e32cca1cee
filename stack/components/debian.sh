# Debian packages: HAProxy, Nginx, promtool (prometheus) and amtool (alertmanager).
# Installed, never started as system services: tests run the binaries themselves
# on loopback. A temporary policy-rc.d stops the packages' own service start.

debian_install() {
  local missing=() p
  for p in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  local policy=/usr/sbin/policy-rc.d had_policy=0
  [ -e "$policy" ] && had_policy=1
  if [ $had_policy -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy"
  fi
  # apt lists may be missing on a fresh machine; update once, then install.
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    $sudo apt-get update -qq && \
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || { [ $had_policy -eq 1 ] || $sudo rm -f "$policy"; die "apt-get could not install ${missing[*]}"; }
  fi
  [ $had_policy -eq 1 ] || $sudo rm -f "$policy"
  # The packages may have started their daemons anyway (no systemd here); stop them.
  pkill -x nginx 2>/dev/null || true
  pkill -x haproxy 2>/dev/null || true
  pkill -x prometheus 2>/dev/null || true
  pkill -f prometheus-alertmanager 2>/dev/null || true
}

debian_version() {
  case "$1" in
    haproxy)  haproxy -v 2>/dev/null | head -1 | awk '{print $3}' ;;
    nginx)    nginx -v 2>&1 | sed 's/.*nginx\///' ;;
    promtool) promtool --version 2>&1 | head -1 | awk '{print $3}' ;;
    amtool)   amtool --version 2>&1 | head -1 | awk '{print $3}' ;;
  esac
}

debian_env() {
  echo "HOURGLASS_HAPROXY_BIN=$(command -v haproxy || true)"
  echo "HOURGLASS_NGINX_BIN=$(command -v nginx || true)"
  echo "HOURGLASS_PROMTOOL_BIN=$(command -v promtool || true)"
  echo "HOURGLASS_AMTOOL_BIN=$(command -v amtool || true)"
}
