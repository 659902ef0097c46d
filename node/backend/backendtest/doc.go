// Package backendtest is the conformance suite for backend.Backend
// implementations, in the way testing/fstest checks any fs.FS: the memory
// Backend and the bbolt one run the same tests, so the state machine above
// them cannot tell them apart.
//
// What belongs here: Run and the tests it runs, nothing an implementation
// needs at run time. Imports: node/backend and the standard library only.
package backendtest
