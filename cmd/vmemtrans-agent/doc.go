// Command vmemtrans-agent is the in-guest agent of self paging: run as
// root inside the VM, it answers authenticated requests from the IDS on
// the main host ("make these guest frames resident") by reading each frame
// through the guest kernel's /proc/kcore, so the VMM's own fault path
// pages it in. It listens on AF_VSOCK (--vsock-port) and/or serves a
// virtio-serial port (--serial), with the pre-shared key of --key-file.
// Build it static (CGO_ENABLED=0) to drop it into any guest.
package main
