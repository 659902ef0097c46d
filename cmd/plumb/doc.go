// Command plumb is plumb's one binary: a production member, a client with
// etcdctl's flags and output, and the simulator's command line.
//
//	plumb node serve --name etcd1 --initial-cluster ...    # a member (package server)
//	plumb kv put|get|del|watch, lease ..., lock, elect,    # a client, over etcd's Go client
//	      member list|add|remove|promote|update, endpoint health|status
//	plumb sim run scenarios/partition.yaml --seed 7        # a simulated run, checked (package sim)
//	plumb snapshot restore backup.db --data-dir D ...      # a backup into a new cluster's data dir (server.Restore)
//
// Run through a link named etcd it is `plumb node serve`, and through one
// named etcdctl plumb's client commands under etcdctl's names, refusing the
// ones it lacks (personality.go); --version prints etcd's lines.
//
// What belongs here: wiring and printing. Each command parses its flags
// (urfave/cli), calls the package that does the work and prints what comes
// back: node.go hands server.Settings to server.Resolve and runs the
// member until a signal; sim.go loads scenario files (faults.Load), runs
// sim.Run per seed, prints the summary or, with --json, one sim.Summary per
// line, and saves a failed run's history, porcupine view and trace
// (linearizability.WriteJSON, WriteHTML, and the seed run again with its
// trace written); client*.go speak to any etcd v3 server through clientv3.
// What does not: anything that decides what a member, a simulation or a
// check does. Keeping it out of here is what lets the tests and the wasm
// runner (package wasm) drive the very same code, and what keeps this
// package free to be untidy with the outside world: it reads the wall
// clock (to report a run's speed), the environment, files and signals, and
// exits with a status.
//
// Exit status, for every command: 0 on success; 1 when a simulated check
// failed or a run could not be judged, when a server answered a client
// command with an error, or when a member could not start or stopped on
// its own; 2 on bad input (flags, arguments, a scenario file). The client
// commands keep etcdctl's other codes where etcdctl uses them: lease
// timetolive, list and keep-alive exit 2 when the server fails them, kv
// watch 5 when the server cancels the watch and 3 when -i's stdin ends,
// and lock with a command exits with the command's status. run returns
// the status instead of exiting, so tests call it directly.
//
// Imports: anything, from the project and outside (server, sim, faults,
// linearizability; urfave/cli, clientv3). Nothing imports this package
// (deps_test.go at the root enforces it).
package main
