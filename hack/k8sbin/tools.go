//go:build tools

// Package k8sbin pins the control-plane commands so that `go mod tidy` records every module they
// need; hack/build-binaries.sh builds them from here.
package k8sbin

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
