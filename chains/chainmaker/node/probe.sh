#!/usr/bin/env bash
# Step 1 of issue 10: can this machine fetch ChainMaker's node modules through the Go module
# proxy? Exit 0 when it can (go on and build the node), 1 when it cannot (still blocked).
# It asks the proxy for four exact modules and one control module; nothing else.
set -u
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" && go mod init probe >/dev/null 2>&1
export GOFLAGS=-mod=mod

blocked=0
try() {
    echo "\$ $*"
    if "$@" 2>&1; then echo "ok"; else echo "FAILED"; blocked=1; fi
}
go version
# chainmaker-go v2.3.7 is the pseudo-version of commit 1402b75b28ab (its module path has no /v2).
try go mod download -json chainmaker.org/chainmaker-go@1402b75b28ab
try go mod download chainmaker.org/chainmaker/vm-evm/v2@v2.3.7
try go mod download chainmaker.org/chainmaker/consensus-solo/v2@v2.3.5
try go mod download chainmaker.org/third_party/qtls-go1-19@v1.0.0
# Control: a module on another host, to tell "the proxy is down" from "refused".
echo "\$ go mod download github.com/spf13/cobra@v1.1.3"
go mod download github.com/spf13/cobra@v1.1.3 2>&1 && echo "ok (control)"
if [ "$blocked" = 1 ]; then
    # The proxy's own words on why (the go command shows only the status code).
    proxy=$(go env GOPROXY | cut -d, -f1)
    echo "the proxy says: $(curl -sS "$proxy/chainmaker.org/chainmaker-go/@v/list")"
    echo "BLOCKED: ChainMaker's modules are not served here"
fi
exit "$blocked"
