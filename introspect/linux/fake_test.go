package linux

import (
	"fmt"
	"strings"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// fakeKernel is a synthetic linux.Target: one contiguous data region in the
// direct map plus a kernel text region, with a compact struct layout, and
// builders that lay out tasks, modules, the PID IDR and sys_call_table the
// way the kernel does.
type fakeKernel struct {
	base     uint64
	mem      []byte
	textBase uint64
	text     []byte
	syms     map[string]uint64
	off      map[string]uint64
	size     map[string]uint64
	holes    [][2]uint64 // unreadable [start, end)
	calls    int         // ReadVirt batches
	ranges   int         // ranges over all batches
	// onRead runs before batch number calls (1-based): a guest changing
	// under the walker.
	onRead func(calls int)
	// via, when set, is the reader batches go through instead of the fake's
	// own memory: a physmemtest.Faulty over space() fails chosen pages.
	via physmem.Reader
}

// fakeSpace is the fake's kernel virtual memory as a physmem.Reader, so
// readers that wrap one (physmemtest.Faulty) can sit under the walkers.
type fakeSpace struct{ k *fakeKernel }

func (s fakeSpace) Size() uint64 { return ^uint64(0) }

func (s fakeSpace) ReadPhys(rs []physmem.Range) error {
	bad := 0
	for i := range rs {
		r := &rs[i]
		r.Err = s.k.read(r.Addr, r.Buf)
		if r.Err != nil {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d: %w", bad, len(rs), physmem.ErrPartial)
	}
	return nil
}

// space is the fake's memory as a reader.
func (k *fakeKernel) space() physmem.Reader { return fakeSpace{k} }

const (
	fakeBase     = 0xffff888000100000
	fakeTextBase = 0xffffffff81000000
	fakeTextSize = 4 * 4096
	fakeTaskSize = 0x1c0 // not a divisor of 4096: some task spans straddle pages
)

func newFake() *fakeKernel {
	k := &fakeKernel{
		base: fakeBase, textBase: fakeTextBase, text: make([]byte, fakeTextSize),
		syms: map[string]uint64{},
		off: map[string]uint64{
			"task_struct.tasks": 0x40, "task_struct.mm": 0x50, "task_struct.pid": 0x58,
			"task_struct.tgid": 0x5c, "task_struct.real_parent": 0x60, "task_struct.pid_links": 0x68,
			"task_struct.thread_group": 0xa8, "task_struct.thread_node": 0xb8,
			"task_struct.real_cred": 0xc8, "task_struct.cred": 0xd0, "task_struct.comm": 0xd8,
			"task_struct.signal": 0xe8,
			"cred.uid":           4, "signal_struct.thread_head": 16,
			"module.list": 8, "module.name": 24, "module.core_layout.base": 0x140,
			"module.core_layout.size": 0x148, "module.init_layout.base": 0x150, "module.init_layout.size": 0x158,
			"pid.tasks": 16, "pid.numbers": 80, "upid.nr": 0,
			"pid_namespace.idr.idr_rt.xa_head": 8,
			"xa_node.shift":                    0, "xa_node.slots": 40,
		},
		size: map[string]uint64{"task_struct": fakeTaskSize, "module": 0x300, "module_memory": 48},
	}
	for i := range k.text {
		k.text[i] = byte(i * 7)
	}
	k.syms["_stext"] = fakeTextBase
	return k
}

func (k *fakeKernel) Symbol(name string) (uint64, error) {
	if v, ok := k.syms[name]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("symbol %s: not found", name)
}

func (k *fakeKernel) Offset(typ, member string) (uint64, error) {
	if v, ok := k.off[typ+"."+member]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("%s has no member %s", typ, member)
}

func (k *fakeKernel) Size(typ string) (uint64, error) {
	if v, ok := k.size[typ]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("no type %s", typ)
}

func (k *fakeKernel) TextRange() (uint64, uint64, error) {
	return k.textBase, k.textBase + uint64(len(k.text)), nil
}

func (k *fakeKernel) ReadVirt(rs []physmem.Range) error {
	k.calls++
	k.ranges += len(rs)
	if k.onRead != nil {
		k.onRead(k.calls)
	}
	if k.via != nil {
		return k.via.ReadPhys(rs)
	}
	return fakeSpace{k}.ReadPhys(rs)
}

func (k *fakeKernel) read(addr uint64, buf []byte) error {
	end := addr + uint64(len(buf))
	if end < addr {
		return physmem.ErrOutOfRange
	}
	for _, h := range k.holes {
		if addr < h[1] && end > h[0] {
			return physmem.ErrOutOfRange
		}
	}
	switch {
	case addr >= k.base && end <= k.base+uint64(len(k.mem)):
		copy(buf, k.mem[addr-k.base:])
	case addr >= k.textBase && end <= k.textBase+uint64(len(k.text)):
		copy(buf, k.text[addr-k.textBase:])
	default:
		return physmem.ErrOutOfRange
	}
	return nil
}

// alloc returns n zeroed bytes of the data region, 64-byte aligned.
func (k *fakeKernel) alloc(n int) uint64 {
	at := (len(k.mem) + 63) &^ 63
	k.mem = append(k.mem, make([]byte, at+n-len(k.mem))...)
	return k.base + uint64(at)
}

func (k *fakeKernel) w64(addr, v uint64) { le.PutUint64(k.mem[addr-k.base:], v) }
func (k *fakeKernel) w32(addr uint64, v uint32) {
	le.PutUint32(k.mem[addr-k.base:], v)
}
func (k *fakeKernel) wbytes(addr uint64, b []byte) { copy(k.mem[addr-k.base:], b) }
func (k *fakeKernel) r64(addr uint64) uint64       { return le.Uint64(k.mem[addr-k.base:]) }
func (k *fakeKernel) o(name string) uint64 {
	v, ok := k.off[name]
	if !ok {
		panic("fake layout lacks " + name)
	}
	return v
}

// circular links list_heads into one circular list, in order.
func (k *fakeKernel) circular(links ...uint64) {
	for i, l := range links {
		k.w64(l, links[(i+1)%len(links)])
		k.w64(l+8, links[(i+len(links)-1)%len(links)])
	}
}

// task creates a task_struct with its own cred; parent 0 means itself.
func (k *fakeKernel) task(pid, tgid int32, parent uint64, uid uint32, comm string, mm uint64) uint64 {
	t := k.alloc(fakeTaskSize)
	if parent == 0 {
		parent = t
	}
	cred := k.alloc(64)
	k.w32(cred+k.o("cred.uid"), uid)
	k.w32(t+k.o("task_struct.pid"), uint32(pid))
	k.w32(t+k.o("task_struct.tgid"), uint32(tgid))
	k.w64(t+k.o("task_struct.real_parent"), parent)
	k.w64(t+k.o("task_struct.real_cred"), cred)
	k.w64(t+k.o("task_struct.cred"), cred)
	k.w64(t+k.o("task_struct.mm"), mm)
	var c [16]byte
	copy(c[:15], comm)
	k.wbytes(t+k.o("task_struct.comm"), c[:])
	return t
}

// group makes leader's thread group (signal->thread_head and the older
// thread_group list) hold leader and threads.
func (k *fakeKernel) group(leader uint64, threads ...uint64) {
	sig := k.alloc(64)
	links := []uint64{sig + k.o("signal_struct.thread_head")}
	grp := []uint64{}
	for _, t := range append([]uint64{leader}, threads...) {
		k.w64(t+k.o("task_struct.signal"), sig)
		links = append(links, t+k.o("task_struct.thread_node"))
		grp = append(grp, t+k.o("task_struct.thread_group"))
	}
	k.circular(links...)
	k.circular(grp...)
}

// taskList sets init_task and links the leaders on its tasks list.
func (k *fakeKernel) taskList(initTask uint64, leaders ...uint64) {
	k.syms["init_task"] = initTask
	links := []uint64{initTask + k.o("task_struct.tasks")}
	for _, t := range leaders {
		links = append(links, t+k.o("task_struct.tasks"))
	}
	k.circular(links...)
}

// pidIDR builds init_pid_ns with an IDR holding a struct pid per task and
// returns the struct pid addresses by pid number.
func (k *fakeKernel) pidIDR(tasks ...uint64) map[uint64]uint64 {
	entries := map[uint64]uint64{}
	for _, t := range tasks {
		nr := uint64(le.Uint32(k.mem[t+k.o("task_struct.pid")-k.base:]))
		p := k.alloc(128)
		k.w64(p+k.o("pid.tasks"), t+k.o("task_struct.pid_links"))
		k.w32(p+k.o("pid.numbers")+k.o("upid.nr"), uint32(nr))
		entries[nr] = p
	}
	ns := k.alloc(64)
	k.syms["init_pid_ns"] = ns
	k.w64(ns+k.o("pid_namespace.idr.idr_rt.xa_head"), k.xarray(entries))
	return entries
}

// xarray builds an xarray tree (XA_CHUNK_SHIFT 6) and returns xa_head.
func (k *fakeKernel) xarray(entries map[uint64]uint64) uint64 {
	var maxIdx uint64
	for i := range entries {
		maxIdx = max(maxIdx, i)
	}
	if len(entries) == 1 && entries[0] != 0 {
		return entries[0]
	}
	if len(entries) == 0 {
		return 0
	}
	shift := 0
	for maxIdx>>(shift+6) != 0 {
		shift += 6
	}
	return k.xaNode(entries, shift, 0) | 2
}

func (k *fakeKernel) xaNode(entries map[uint64]uint64, shift int, first uint64) uint64 {
	n := k.alloc(40 + 64*8 + 24)
	k.mem[n-k.base+k.o("xa_node.shift")] = byte(shift)
	for s := uint64(0); s < 64; s++ {
		lo := first + s<<shift
		if shift == 0 {
			if e, ok := entries[lo]; ok {
				k.w64(n+k.o("xa_node.slots")+s*8, e)
			}
			continue
		}
		hi := lo + 1<<shift
		for i := range entries {
			if i >= lo && i < hi {
				k.w64(n+k.o("xa_node.slots")+s*8, k.xaNode(entries, shift-6, lo)|2)
				break
			}
		}
	}
	return n
}

// modules creates struct modules and links them on the modules list.
func (k *fakeKernel) modules(mods ...[3]uint64) []uint64 {
	head := k.alloc(16)
	k.syms["modules"] = head
	links := []uint64{head}
	var out []uint64
	for i, m := range mods {
		a := k.alloc(int(k.size["module"]))
		k.wbytes(a+k.o("module.name"), []byte(fmt.Sprintf("mod%d\x00", i)))
		if _, ok := k.off["module.mem"]; ok {
			k.w64(a+k.o("module.mem")+k.o("module_memory.base"), m[0])
			k.w32(a+k.o("module.mem")+k.o("module_memory.size"), uint32(m[1]))
			// data region right after text
			e1 := a + k.o("module.mem") + k.size["module_memory"]
			k.w64(e1+k.o("module_memory.base"), m[0]+m[1])
			k.w32(e1+k.o("module_memory.size"), uint32(m[2]))
		} else {
			k.w64(a+k.o("module.core_layout.base"), m[0])
			k.w32(a+k.o("module.core_layout.size"), uint32(m[1]+m[2]))
		}
		links = append(links, a+k.o("module.list"))
		out = append(out, a)
	}
	k.circular(links...)
	return out
}

// memArrayLayout switches struct module to the 6.4+ mem[] layout.
func (k *fakeKernel) memArrayLayout() {
	for name := range k.off {
		if strings.HasPrefix(name, "module.core_layout") || strings.HasPrefix(name, "module.init_layout") {
			delete(k.off, name)
		}
	}
	k.off["module.mem"] = 0x140
	k.off["module_memory.base"] = 0
	k.off["module_memory.size"] = 8
}

// syscallTable builds sys_call_table with n entries into kernel text.
func (k *fakeKernel) syscallTable(n int) uint64 {
	tab := k.alloc(n * 8)
	for i := 0; i < n; i++ {
		k.w64(tab+uint64(i)*8, k.textBase+uint64(i%1000)*16)
	}
	k.syms["sys_call_table"] = tab
	return tab
}

// world is a small kernel: init_task, kthreadd, init, a shell with two
// threads, and a daemon; the PID IDR holds them all.
type world struct {
	k                                           *fakeKernel
	swapper, kthreadd, init, sh, t1, t2, daemon uint64
	pids                                        map[uint64]uint64 // struct pid by number
}

func newWorld() *world {
	k := newFake()
	w := &world{k: k}
	w.swapper = k.task(0, 0, 0, 0, "swapper/0", 0)
	w.init = k.task(1, 1, w.swapper, 0, "init", 0xffff888012340000)
	w.kthreadd = k.task(2, 2, w.swapper, 0, "kthreadd", 0)
	w.sh = k.task(100, 100, w.init, 1000, "sh", 0xffff888012350000)
	w.t1 = k.task(101, 100, w.init, 1000, "sh", 0xffff888012350000)
	w.t2 = k.task(102, 100, w.init, 1000, "sh-worker", 0xffff888012350000)
	w.daemon = k.task(200, 200, w.init, 0, "daemon-with-a-long-name", 0xffff888012360000)
	k.group(w.swapper)
	k.group(w.init)
	k.group(w.kthreadd)
	k.group(w.sh, w.t1, w.t2)
	k.group(w.daemon)
	k.taskList(w.swapper, w.init, w.kthreadd, w.sh, w.daemon)
	w.pids = k.pidIDR(w.init, w.kthreadd, w.sh, w.t1, w.t2, w.daemon)
	return w
}

// unlink removes task from the tasks list as list_del does (a rootkit's
// hiding step).
func (w *world) unlink(task uint64) {
	k := w.k
	l := task + k.o("task_struct.tasks")
	next, prev := k.r64(l), k.r64(l+8)
	k.w64(prev, next)
	k.w64(next+8, prev)
}
