//go:build !js

package linearizability

// yield does nothing where goroutines are preemptible; see yield_js.go.
func yield() {}
