// Command vmemtrans is the VMemTrans ops CLI and daemon launcher.
//
// Daemons: `subhost` (the sub-host agent serving VM regions over the control
// protocol, with one-sided RDMA where a device exists). Benchmarks: `bench
// fetch` (page fetches against a bare TCP stream and ping-pong between the
// same endpoints). Discovery: `devices`. IDS commands over guest memory: `ps`,
// `lsmod`, `check syscalls|kernel-text|hidden-tasks` on an image, a QEMU dump
// or a live QEMU guest. Every command that prints data takes `--json`; logs
// go to stderr through zerolog and are quiet unless --log-level says otherwise.
package main
