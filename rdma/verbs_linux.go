//go:build linux && cgo && rdma

package rdma

/*
#cgo CFLAGS: -O2
#cgo LDFLAGS: -libverbs
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <infiniband/verbs.h>

// ibv_get_device_list is a macro when RDMA_STATIC_PROVIDERS is defined (static
// link); going through a C wrapper registers the built-in providers.
static struct ibv_device **vt_device_list(int *n) { return ibv_get_device_list(n); }

// ibv_query_port is a macro over a static inline.
static int vt_query_port(struct ibv_context *c, uint8_t p, struct ibv_port_attr *a) { return ibv_query_port(c, p, a); }

// First RoCE v2 GID whose address is IPv4-mapped (::ffff:a.b.c.d), or -1.
static int vt_rocev2_ipv4_gid(struct ibv_context *c, uint8_t port, int tbl_len, uint8_t *out) {
	for (int i = 0; i < tbl_len; i++) {
		struct ibv_gid_entry e;
		if (ibv_query_gid_ex(c, port, i, &e, 0)) continue;
		if (e.gid_type != IBV_GID_TYPE_ROCE_V2) continue;
		uint8_t *r = e.gid.raw;
		int mapped = 1;
		for (int k = 0; k < 10; k++) if (r[k]) mapped = 0;
		if (mapped && r[10] == 0xff && r[11] == 0xff) { memcpy(out, r, 16); return i; }
	}
	return -1;
}

static struct ibv_qp *vt_create_qp(struct ibv_pd *pd, struct ibv_cq *cq, int depth) {
	struct ibv_qp_init_attr ia;
	memset(&ia, 0, sizeof ia);
	ia.send_cq = cq; ia.recv_cq = cq; ia.qp_type = IBV_QPT_RC; ia.sq_sig_all = 0;
	ia.cap.max_send_wr = depth; ia.cap.max_recv_wr = 1;
	ia.cap.max_send_sge = 1; ia.cap.max_recv_sge = 1;
	return ibv_create_qp(pd, &ia);
}

static int vt_to_init(struct ibv_qp *qp, uint8_t port, int access) {
	struct ibv_qp_attr a; memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_INIT; a.pkey_index = 0; a.port_num = port; a.qp_access_flags = access;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE|IBV_QP_PKEY_INDEX|IBV_QP_PORT|IBV_QP_ACCESS_FLAGS);
}

// RoCE: the address vector is global (GRH) with the peer's GID and our GID index.
static int vt_to_rtr(struct ibv_qp *qp, uint8_t port, uint32_t dqpn, uint32_t rpsn,
                     const uint8_t *dgid, int sgid_idx, int mtu, uint8_t max_dest_rd) {
	struct ibv_qp_attr a; memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTR; a.path_mtu = (enum ibv_mtu)mtu; a.dest_qp_num = dqpn; a.rq_psn = rpsn;
	a.max_dest_rd_atomic = max_dest_rd; a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1; memcpy(a.ah_attr.grh.dgid.raw, dgid, 16);
	a.ah_attr.grh.sgid_index = sgid_idx; a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.sl = 0; a.ah_attr.port_num = port;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE|IBV_QP_AV|IBV_QP_PATH_MTU|IBV_QP_DEST_QPN|
	                     IBV_QP_RQ_PSN|IBV_QP_MAX_DEST_RD_ATOMIC|IBV_QP_MIN_RNR_TIMER);
}

// timeout 14 = 4.096 us * 2^14 = 67 ms per try, 7 retries: a dead peer ends
// every chain with RETRY_EXC_ERR in about half a second.
static int vt_to_rts(struct ibv_qp *qp, uint32_t spsn, uint8_t max_rd) {
	struct ibv_qp_attr a; memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTS; a.sq_psn = spsn; a.timeout = 14; a.retry_cnt = 7; a.rnr_retry = 7;
	a.max_rd_atomic = max_rd;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE|IBV_QP_SQ_PSN|IBV_QP_TIMEOUT|IBV_QP_RETRY_CNT|
	                     IBV_QP_RNR_RETRY|IBV_QP_MAX_QP_RD_ATOMIC);
}

// A queue pair in the error state flushes its outstanding work requests and
// takes no more responses, so nothing lands in buffers given back to callers.
static int vt_to_err(struct ibv_qp *qp) {
	struct ibv_qp_attr a; memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_ERR;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE);
}

#define VT_MAX_CHAIN 256

// One chain of n page-sized READs or WRITEs = one ibv_post_send = one
// doorbell. Only the last WR is signalled; a failing WR and the ones flushed
// after it complete with an error status regardless. wr_id is the index in
// the chain. The arrays are Go memory without Go pointers.
static int vt_post_chain(struct ibv_qp *qp, int write, int n, const uint64_t *laddr, const uint32_t *lkey,
                         const uint64_t *raddr, uint32_t rkey, uint32_t len) {
	struct ibv_send_wr wr[VT_MAX_CHAIN], *bad = NULL;
	struct ibv_sge sge[VT_MAX_CHAIN];
	if (n < 1 || n > VT_MAX_CHAIN) return EINVAL;
	for (int i = 0; i < n; i++) {
		sge[i].addr = laddr[i]; sge[i].length = len; sge[i].lkey = lkey[i];
		memset(&wr[i], 0, sizeof wr[i]);
		wr[i].wr_id = i; wr[i].sg_list = &sge[i]; wr[i].num_sge = 1;
		wr[i].opcode = write ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
		wr[i].send_flags = (i == n-1) ? IBV_SEND_SIGNALED : 0;
		wr[i].wr.rdma.remote_addr = raddr[i]; wr[i].wr.rdma.rkey = rkey;
		wr[i].next = (i == n-1) ? NULL : &wr[i+1];
	}
	return ibv_post_send(qp, wr, &bad);
}

// Reap up to max (<= 64) completions; copies out the fields Go needs.
static int vt_poll(struct ibv_cq *cq, int max, uint64_t *wrid, int *status) {
	struct ibv_wc wc[64];
	if (max > 64) max = 64;
	int n = ibv_poll_cq(cq, max, wc);
	for (int i = 0; i < n; i++) { wrid[i] = wc[i].wr_id; status[i] = wc[i].status; }
	return n;
}
*/
import "C"

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
)

// Built reports whether this binary carries the verbs binding.
const Built = true

// maxChain is the longest WR chain vt_post_chain accepts.
const maxChain = C.VT_MAX_CHAIN

const (
	accessLocalWrite  = C.IBV_ACCESS_LOCAL_WRITE
	accessRemoteRead  = C.IBV_ACCESS_REMOTE_READ
	accessRemoteWrite = C.IBV_ACCESS_REMOTE_WRITE
)

// device is an open verbs context on one port with its RoCE v2 GID.
type device struct {
	name    string
	ctx     *C.struct_ibv_context
	port    C.uint8_t
	gidIdx  int
	gid     [16]byte
	mtu     uint8 // enum ibv_mtu
	maxRd   int   // max_qp_rd_atom: reads this device serves per QP
	maxInit int   // max_qp_init_rd_atom: reads this device issues per QP
	maxWR   int
}

func openDevice(name string) (*device, error) {
	var n C.int
	list := C.vt_device_list(&n)
	if list == nil {
		return nil, fmt.Errorf("rdma device %q: ibv_get_device_list: %w", name, fabric.ErrNoRDMA)
	}
	defer C.ibv_free_device_list(list)
	var ctx *C.struct_ibv_context
	for _, d := range unsafe.Slice(list, int(n)) {
		if C.GoString(C.ibv_get_device_name(d)) == name {
			ctx = C.ibv_open_device(d)
			if ctx == nil {
				return nil, fmt.Errorf("rdma device %q: ibv_open_device failed: %w", name, fabric.ErrNoRDMA)
			}
			break
		}
	}
	if ctx == nil {
		return nil, fmt.Errorf("rdma device %q not found among %d verbs devices: %w", name, int(n), fabric.ErrNoRDMA)
	}
	d := &device{name: name, ctx: ctx, port: 1}
	if err := d.query(); err != nil {
		C.ibv_close_device(ctx)
		return nil, err
	}
	return d, nil
}

func (d *device) query() error {
	var da C.struct_ibv_device_attr
	if rc := C.ibv_query_device(d.ctx, &da); rc != 0 {
		return fmt.Errorf("rdma device %s: ibv_query_device: %w", d.name, syscall.Errno(rc))
	}
	var pa C.struct_ibv_port_attr
	if rc := C.vt_query_port(d.ctx, d.port, &pa); rc != 0 {
		return fmt.Errorf("rdma device %s: ibv_query_port: %w", d.name, syscall.Errno(rc))
	}
	if pa.state != C.IBV_PORT_ACTIVE {
		return fmt.Errorf("rdma device %s port %d is not active (state %d): %w", d.name, d.port, pa.state, fabric.ErrNoRDMA)
	}
	d.gidIdx = int(C.vt_rocev2_ipv4_gid(d.ctx, d.port, C.int(pa.gid_tbl_len), (*C.uint8_t)(&d.gid[0])))
	if d.gidIdx < 0 {
		return fmt.Errorf("rdma device %s: no RoCE v2 IPv4 GID (no IPv4 address on its netdev?): %w", d.name, fabric.ErrNoRDMA)
	}
	d.mtu = uint8(pa.active_mtu)
	d.maxRd = min(int(da.max_qp_rd_atom), 255)
	d.maxInit = min(int(da.max_qp_init_rd_atom), 255)
	d.maxWR = int(da.max_qp_wr)
	return nil
}

func (d *device) close() {
	if d.ctx != nil {
		C.ibv_close_device(d.ctx)
		d.ctx = nil
	}
}

// pdHandle is a protection domain; files without cgo name it through this.
type pdHandle = *C.struct_ibv_pd

func freePD(pd pdHandle) { C.ibv_dealloc_pd(pd) }

func (d *device) allocPD() (pdHandle, error) {
	pd := C.ibv_alloc_pd(d.ctx)
	if pd == nil {
		return nil, fmt.Errorf("rdma device %s: ibv_alloc_pd failed", d.name)
	}
	return pd, nil
}

// mr is a registered memory region over memory outside the Go heap.
type mr struct {
	mr  *C.struct_ibv_mr
	buf []byte
}

func regMR(pd *C.struct_ibv_pd, buf []byte, access C.int) (*mr, error) {
	if len(buf) == 0 || uintptr(unsafe.Pointer(&buf[0]))%fabric.PageSize != 0 {
		return nil, errors.New("rdma register: region empty or not page aligned")
	}
	m := C.ibv_reg_mr(pd, unsafe.Pointer(&buf[0]), C.size_t(len(buf)), access)
	if m == nil {
		return nil, fmt.Errorf("rdma register %d bytes: ibv_reg_mr failed (RLIMIT_MEMLOCK too low?)", len(buf))
	}
	return &mr{mr: m, buf: buf}, nil
}

func (m *mr) lkey() uint32 { return uint32(m.mr.lkey) }
func (m *mr) rkey() uint32 { return uint32(m.mr.rkey) }
func (m *mr) addr() uint64 { return uint64(uintptr(unsafe.Pointer(&m.buf[0]))) }

func (m *mr) dereg() {
	if m != nil && m.mr != nil {
		C.ibv_dereg_mr(m.mr)
		m.mr = nil
	}
}

// qpair is one RC queue pair with its own completion queue.
type qpair struct {
	qp  *C.struct_ibv_qp
	cq  *C.struct_ibv_cq
	psn uint32
}

func (d *device) newQP(pd *C.struct_ibv_pd, depth int, access C.int) (*qpair, error) {
	cq := C.ibv_create_cq(d.ctx, C.int(depth+1), nil, nil, 0)
	if cq == nil {
		return nil, fmt.Errorf("rdma device %s: ibv_create_cq(%d) failed", d.name, depth+1)
	}
	qp := C.vt_create_qp(pd, cq, C.int(depth))
	if qp == nil {
		C.ibv_destroy_cq(cq)
		return nil, fmt.Errorf("rdma device %s: ibv_create_qp(depth %d) failed", d.name, depth)
	}
	q := &qpair{qp: qp, cq: cq, psn: randPSN()}
	if rc := C.vt_to_init(qp, d.port, access); rc != 0 {
		q.destroy()
		return nil, fmt.Errorf("rdma queue pair to INIT: %w", syscall.Errno(rc))
	}
	return q, nil
}

func (q *qpair) info() control.QP { return control.QP{QPN: uint32(q.qp.qp_num), PSN: q.psn} }

// connect moves the queue pair to RTR then RTS towards the peer's queue pair.
func (d *device) connect(q *qpair, peer control.QP, peerGID [16]byte, mtu uint8, destRd, initRd int) error {
	if rc := C.vt_to_rtr(q.qp, d.port, C.uint32_t(peer.QPN), C.uint32_t(peer.PSN), (*C.uint8_t)(&peerGID[0]),
		C.int(d.gidIdx), C.int(mtu), C.uint8_t(destRd)); rc != 0 {
		return fmt.Errorf("rdma queue pair %d to RTR: %w", q.qp.qp_num, syscall.Errno(rc))
	}
	if rc := C.vt_to_rts(q.qp, C.uint32_t(q.psn), C.uint8_t(initRd)); rc != 0 {
		return fmt.Errorf("rdma queue pair %d to RTS: %w", q.qp.qp_num, syscall.Errno(rc))
	}
	return nil
}

// fail moves the queue pair to the error state: its outstanding requests are
// flushed and late responses are dropped.
func (q *qpair) fail() {
	if q.qp != nil {
		C.vt_to_err(q.qp)
	}
}

func (q *qpair) destroy() {
	if q.qp != nil {
		C.ibv_destroy_qp(q.qp)
		q.qp = nil
	}
	if q.cq != nil {
		C.ibv_destroy_cq(q.cq)
		q.cq = nil
	}
}

// postChain posts one chain; laddr, lkey and raddr have one element per WR.
func (q *qpair) postChain(write bool, laddr []uint64, lkey []uint32, raddr []uint64, rkey uint32) error {
	w := C.int(0)
	if write {
		w = 1
	}
	rc := C.vt_post_chain(q.qp, w, C.int(len(laddr)), (*C.uint64_t)(&laddr[0]), (*C.uint32_t)(&lkey[0]),
		(*C.uint64_t)(&raddr[0]), C.uint32_t(rkey), fabric.PageSize)
	if rc != 0 {
		return fmt.Errorf("rdma ibv_post_send of %d work requests: %w", len(laddr), syscall.Errno(rc))
	}
	return nil
}

// poll reaps completions into wrid/status and returns how many.
func (q *qpair) poll(wrid []uint64, status []int32) (int, error) {
	n := C.vt_poll(q.cq, C.int(min(len(wrid), len(status))), (*C.uint64_t)(&wrid[0]), (*C.int)(unsafe.Pointer(&status[0])))
	if n < 0 {
		return 0, fmt.Errorf("rdma ibv_poll_cq failed: %w", fabric.ErrPeer)
	}
	return int(n), nil
}

func statusString(s int32) string { return C.GoString(C.ibv_wc_status_str(uint32(s))) }

const (
	wcSuccess      = int32(C.IBV_WC_SUCCESS)
	wcRemAccessErr = int32(C.IBV_WC_REM_ACCESS_ERR)
	wcFlushErr     = int32(C.IBV_WC_WR_FLUSH_ERR)
)

func randPSN() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:]) & 0xffffff
}

// mmapPages returns n zeroed pages outside the Go heap.
func mmapPages(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n*fabric.PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("rdma mmap %d pages: %w", n, err)
	}
	return b, nil
}
