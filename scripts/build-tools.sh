#!/usr/bin/env bash
# Builds the Go tools the tests run, once, into $INFLOW_TOOLS/bin (default
# $HOME/.cache/inflow-tools/bin), each from its published Go module through the
# Go module proxy; a tool already built at its pinned version is reused.
#
#   scripts/build-tools.sh        prints the bin directory on its last line
#
# Tools (and why this version): Telegraf v1.39.2, the newest the proxy serves,
# which has outputs.influxdb_v3 (1.38+); for the Kubernetes tests, kube-apiserver
# kube-controller-manager and kube-scheduler v1.36.3 (k8s-openapi's v1_36), etcd
# v3.6.16 (Kubernetes 1.36's), helm v4.3.2 and kwok v0.8.0 (fake nodes whose
# pods become Ready without a kubelet).
# INFLOW_TOOLS_KUBERNETES=0 skips the Kubernetes parts.
set -euo pipefail
tools="${INFLOW_TOOLS:-$HOME/.cache/inflow-tools}"
mkdir -p "$tools/bin" "$tools/src"
export GOFLAGS=-mod=mod GOMAXPROCS="${GOMAXPROCS:-2}"

# build NAME VERSION PACKAGE [TAGS SUFFIX]: PACKAGE at VERSION as bin/NAME-VERSION[SUFFIX], built in
# a scratch module (so the tool's own replace directives, which `go install`
# refuses, do not apply; its dependencies resolve to their published versions),
# with Go build TAGS when given.
build() {
    local name=$1 version=$2 package=$3 tags=${4:-} suffix=${5:-}
    local target="$tools/bin/$name-$version$suffix"
    if [ -x "$target" ]; then
        return 0
    fi
    echo "building $name $version (once; several minutes)" >&2
    local scratch="$tools/src/$name-$version$suffix"
    mkdir -p "$scratch"
    (
        cd "$scratch"
        [ -f go.mod ] || go mod init "inflow.dev/build-$name" >&2
        go get "$package@$version" >&2
        go build ${tags:+-tags "$tags"} -o "$target" "$package" >&2
    )
}

# kube_build VERSION COMMAND...: commands of k8s.io/kubernetes (kube-apiserver, ...), whose go.mod points its staging modules (k8s.io/api,
# client-go, ...) at v0.0.0 in its own tree: a scratch module requires it and
# replaces each with its published v0.X.Y.
kube_build() {
    local version=$1 minor
    shift
    minor=$(echo "$version" | cut -d. -f2)
    local missing=()
    for cmd in "$@"; do
        [ -x "$tools/bin/$cmd-$version" ] || missing+=("$cmd")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "building ${missing[*]} $version (once; many minutes)" >&2
    local scratch="$tools/src/kubernetes-$version"
    mkdir -p "$scratch"
    (
        cd "$scratch"
        local staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
            cloud-provider cluster-bootstrap code-generator component-base component-helpers
            controller-manager cri-api cri-client cri-streaming csi-translation-lib
            dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
            kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
            pod-security-admission sample-apiserver sample-cli-plugin sample-controller streaming)
        {
            echo "module inflow.dev/kubernetes-build"
            echo "go 1.26"
            echo "require k8s.io/kubernetes $version"
            for m in "${staging[@]}"; do
                echo "replace k8s.io/$m => k8s.io/$m v0.$minor.${version##*.}"
            done
        } > go.mod
        printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n)\n' > tools.go
        go mod tidy >&2
        local ldflags="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
        for cmd in "${missing[@]}"; do
            go build -ldflags "$ldflags" -o "$tools/bin/$cmd-$version" "k8s.io/kubernetes/cmd/$cmd" >&2
        done
    )
}

# Telegraf's custom build: only the plugins the tests use (a 32 MB binary that
# builds in a minute, where all of them take a quarter of an hour).
build telegraf v1.39.2 github.com/influxdata/telegraf/cmd/telegraf \
    custom,inputs.exec,parsers.influx,serializers.influx,outputs.influxdb,outputs.influxdb_v2,outputs.influxdb_v3 -inflow
if [ "${INFLOW_TOOLS_KUBERNETES:-1}" = 1 ]; then
    kube_build v1.36.3 kube-apiserver kube-controller-manager kube-scheduler
    build etcd v3.6.16 go.etcd.io/etcd/server/v3
    build helm v4.3.2 helm.sh/helm/v4/cmd/helm
    build kwok v0.8.0 sigs.k8s.io/kwok/cmd/kwok
fi
echo "$tools/bin"
