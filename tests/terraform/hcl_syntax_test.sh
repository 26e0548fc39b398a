#!/usr/bin/env bash
# The Terraform module of examples/meshhook/terraform/ parses, refers only to
# what it declares, passes its template every variable, and outputs the
# shape `meshdeploy hosts import` reads (compared with the recorded
# output.example.json). Terraform itself is not needed (it could not fetch
# its providers here): tests/terraform/hclcheck.go, built now against
# Debian's golang-github-hashicorp-hcl-v2-dev, does the checking. The
# checker is also run on broken copies of the module: it must refuse each.
# Usage: hcl_syntax_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(cd "$1" && pwd) build=$(cd "$2" && pwd)
if ! command -v go >/dev/null; then
  echo "skipped: go is not installed (golang-go, scripts/install-deps.sh)" >&2
  exit 77
fi
gopath=/usr/share/gocode
[ -d "$gopath/src/github.com/hashicorp/hcl/v2" ] || {
  echo "golang-github-hashicorp-hcl-v2-dev is missing (scripts/install-deps.sh)" >&2
  exit 1
}
module=$src/examples/meshhook/terraform
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
# WHY GO111MODULE=off and GOPATH: Debian installs Go libraries as GOPATH
# sources; module mode would try to download them. The build cache is kept
# in the build directory, so a second run does not compile HCL again.
GOPATH=$gopath GO111MODULE=off GOFLAGS= GOCACHE=$build/go-cache GOTOOLCHAIN=local \
  go build -o "$t/hclcheck" "$src/tests/terraform/hclcheck.go"

"$t/hclcheck" -dir "$module" -recorded "$module/output.example.json"

# Each broken copy must be refused, with the expected message.
refuses() { # refuses NAME EXPECTED-MESSAGE (the copy is in $t/$NAME)
  local out
  if out=$("$t/hclcheck" -dir "$t/$1" -recorded "$t/$1/output.example.json" 2>&1); then
    echo "hclcheck accepted the broken module '$1':" >&2
    echo "$out" >&2
    exit 1
  fi
  grep -qF -- "$2" <<<"$out" || {
    echo "broken module '$1': expected '$2' in:" >&2
    echo "$out" >&2
    exit 1
  }
  echo "refused as expected: $1"
}
broken() { cp -r "$module" "$t/$1"; }

broken syntax && sed -i 's/^resource "hcloud_firewall" "meshhook" {/resource "hcloud_firewall" "meshhook" {{/' "$t/syntax/main.tf"
refuses syntax "main.tf:"
broken undeclared && sed -i 's/var\.server_type/var.server_size/' "$t/undeclared/main.tf"
refuses undeclared "var.server_size is not declared"
broken template && sed -i 's/^    proxy_port       = var.proxy_port$//' "$t/template/main.tf"
refuses template 'template variable "proxy_port" is not passed'
broken output_key && sed -i 's/^      host_key = /      hostkey = /' "$t/output_key/outputs.tf"
refuses output_key "the module's output builds [address hostkey name]"
broken output_gone && sed -i 's/^output "server_ids"/output "ids"/' "$t/output_gone/outputs.tf"
refuses output_gone "outputs [meshdeploy_hosts server_ids], the module declares [ids meshdeploy_hosts]"
echo "terraform module: ok"
