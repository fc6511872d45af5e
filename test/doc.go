// Package test holds VMemTrans's end-to-end tests, the QEMU rig (SoftRoCE,
// vsock and a real Debian guest under TCG, in rig/), the committed guest
// memory fixtures with the scripts that regenerate them, and benchmarks.
//
// Tests that need hardware this host lacks (RDMA, KVM, vsock) skip with a
// hint naming the make target that runs them for real; integration tests are
// named TestIntegration*.
package test
