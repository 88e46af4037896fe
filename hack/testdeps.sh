#!/usr/bin/env bash
# testdeps.sh installs the Debian packages the tests run as real parts, when
# they are missing: openssh-server (the SSH Git transport), prometheus (metric
# checks), time (peak RSS in the benchmarks), docker-registry (OCI charts),
# chromium (the dashboard's browser tests, driven with chromedp), iproute2 and util-linux (the
# private network namespace of the traffic tests and the demo). Git and Go are the only things
# a machine needs before `make test`; everything else comes from here or from
# the Go module proxy (hack/testbin.sh).
#
# Not root and something missing: one line saying what, exit 2.
set -euo pipefail

need=()
command -v git >/dev/null || need+=(git)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
[ -x /usr/bin/time ] || need+=(time)
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
command -v ip >/dev/null || need+=(iproute2)          # the traffic tests' and demo's network namespace
command -v unshare >/dev/null || need+=(util-linux)
/usr/bin/python3 -c "import scipy" 2>/dev/null || need+=(python3-scipy)  # the judge's statistics are checked against scipy
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)  # the OCI registry sluice chart pull is tested against
[ -x /usr/bin/chromium ] || need+=(chromium)  # the dashboard's browser tests (e2e TestDashboard)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "testdeps: missing Debian packages ${need[*]}: run as root, or: sudo apt-get install ${need[*]}" >&2
  exit 2
fi
echo "testdeps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the services it installs; the tests run their own on
# loopback ports with temp configs, so the system's copies are not needed.
for svc in prometheus ssh prometheus-node-exporter docker-registry; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
