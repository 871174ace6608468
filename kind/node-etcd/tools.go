//go:build tools

// Package tools records the upstream etcd main package this module builds, so
// that `go mod tidy` keeps its dependencies in go.mod/go.sum. It is never compiled.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
