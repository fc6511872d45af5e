// Package linux walks Linux kernel objects and runs IDS checks over a
// linux.Target: a running kernel seen from outside, with symbols at their
// runtime addresses, BTF type layout and batched virtual reads.
//
// Contract of every walker here:
//   - Batched: round trips, not bytes, are what cost on a remote page
//     fabric. Tasks first fetches every task_struct the PID IDR names in one
//     batch (the IDR tree costs one batch per level), then follows the task
//     list through those copies, reading only tasks the IDR does not name
//     (init_task); thread lists are walked in lockstep, one batch per step
//     for all groups; fields behind pointers (parent, credentials) come in
//     one batch for all tasks. A list with no such index (modules) costs one
//     batch per element, each reading every field the walk needs.
//   - Bounded: Options.MaxObjects caps every walk (ErrLimit).
//   - Cycle-safe: a visited set stops a list or tree that loops (ErrCycle).
//     A live guest changes under the walker, so a walk can see a torn list.
//   - Garbage-tolerant: a pointer that is not a plausible kernel address or
//     cannot be read stops that walk with ErrBadPointer / ErrUnreadable and
//     returns what was found so far; a bad field of one object is recorded in
//     that object's Err and the others are still reported. Nothing panics on
//     any memory contents (fuzzed).
//   - No silent false negatives: every read an answer depends on that failed
//     is in the returned error, so a nil error means the answer is complete.
//     A check that could not read what it needs says so (the CLI exits 1)
//     rather than reporting clean, and an incomplete walk is not turned into
//     findings either (tasks past a broken task list are not "hidden").
//
// Checks: CheckSyscalls (every sys_call_table entry points into kernel text;
// the owners of the ones that do not), HashText/CompareText (SHA-256 per
// kernel text page against a baseline recorded on the same boot: KASLR and
// boot-time patching make text differ between boots), and HiddenTasks (tasks
// reachable from the PID namespace's IDR but missing from the task list).
//
// Addresses marshal to JSON as "0x..." hex strings: they exceed 2^53, where
// JSON numbers lose precision in many consumers.
package linux
