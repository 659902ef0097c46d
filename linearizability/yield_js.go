//go:build js

package linearizability

import "runtime"

// yield lets other goroutines run. Under js/wasm there is one thread, so
// porcupine's checker goroutines would otherwise never give its timeout
// timer (or anything else) a turn, and a hard history would never time out.
func yield() { runtime.Gosched() }
