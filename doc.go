// Package plumb is the root of an etcd-compatible replicated key-value store
// whose one node implementation runs either as a production member or inside
// a deterministic simulator. The code lives in the packages below; this
// package holds only the import-policy test (deps_test.go). See README.md and
// docs/DESIGN.md for the architecture.
package plumb
