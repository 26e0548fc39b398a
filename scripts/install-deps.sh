#!/usr/bin/env bash
# Installs everything meshdeploy needs to build, test and benchmark, from
# Debian 12's packages. Idempotent: a second run changes nothing.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  # toolchain
  build-essential g++ cmake ninja-build pkg-config git clang clang-format clang-tidy libclang-rt-14-dev
  # libraries (see each src/*/README.md for why)
  libboost-dev libboost-system-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libfmt-dev libsystemd-dev libpq-dev libsqlite3-dev libsodium-dev libcurl4-openssl-dev
  libssl-dev libarchive-dev libzstd-dev libexpected-dev libgtest-dev libgmock-dev googletest
  libbenchmark-dev libpg-query-dev liburing-dev
  # systemd-analyze (tests/systemd_units_test.sh verifies the units)
  systemd
  # the ssh transport runs the system OpenSSH client (src/ssh/README.md);
  # the e2e tests run Debian's sshd as the hosts (tests/e2e/lib_ssh.sh)
  openssh-client openssh-server
  # test and bench peers: a real Postgres, load generator, proxies, receivers
  postgresql-15 postgresql-client-15 wrk nginx haproxy socat curl openssl procps util-linux iproute2
  python3 python3-aiosmtpd zstd sqlite3 hyperfine jq
  # the Terraform module's check (tests/terraform/hcl_syntax_test.sh): HashiCorp's
  # HCL parser as Debian packages it, built by Go offline (Terraform cannot be
  # installed from Debian, nor fetch its providers in CI)
  golang-go golang-github-hashicorp-hcl-v2-dev
)
# Node for the example app and the Supabase CLI / dbmate test peers. A machine
# that already has node and npm (e.g. from another repository) keeps them.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  # policy-rc.d keeps apt from starting nginx/haproxy/postgresql system services
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
