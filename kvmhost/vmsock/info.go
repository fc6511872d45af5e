package vmsock

import (
	"encoding/binary"
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// VMInfo is what the runtime tells an IDS about its VM.
type VMInfo struct {
	VM       string             // the VM's id
	Layout   []fabric.PhysRange // backed guest-physical ranges, sorted, page aligned
	CR3, CR4 uint64             // control registers of the boot CPU, from the image
	RAMSize  uint64             // size of the RAM memfd: offset == guest-physical address
	Subhosts []Subhost          // the sub-hosts holding this VM's remote pages
	// QMP is the QMP socket of the VMM running the guest, when a live VMM
	// (QEMU) runs it: readers take the registers (CR3, CR4) from there, as
	// they change. Sent as an optional trailing field, only when set, so
	// frames without it stay what earlier readers parse.
	QMP string
}

// Subhost is one sub-host and this VM's credentials there.
type Subhost struct {
	ID   uint8  // the sub-host id location words carry
	Addr string // control address, host:port
	VM   string // the VM id the region is opened as
	Key  []byte // the pre-shared key of VM at that sub-host
}

// Bounds on the parts of an info frame.
const (
	maxName     = 255
	maxKey      = 1024
	maxRanges   = 4096
	maxSubhosts = 256
	// maxInfoPayload is the largest info frame AppendInfo can produce.
	maxInfoPayload = 2 + maxName + 4*8 + 4 + maxRanges*16 + 2 + maxSubhosts*(1+2+maxName+2+maxName+2+maxKey) + 2 + maxName
)

// Validate checks the bounds and invariants of the info frame.
func (v VMInfo) Validate() error {
	switch {
	case len(v.VM) > maxName:
		return fmt.Errorf("vm info: vm id of %d bytes over %d: %w", len(v.VM), maxName, fabric.ErrProtocol)
	case len(v.Layout) > maxRanges:
		return fmt.Errorf("vm info: %d ranges over %d: %w", len(v.Layout), maxRanges, fabric.ErrProtocol)
	case len(v.QMP) > maxName:
		return fmt.Errorf("vm info: qmp path of %d bytes over %d: %w", len(v.QMP), maxName, fabric.ErrProtocol)
	case len(v.Subhosts) > maxSubhosts:
		return fmt.Errorf("vm info: %d sub-hosts over %d: %w", len(v.Subhosts), maxSubhosts, fabric.ErrProtocol)
	}
	var prev uint64
	for i, r := range v.Layout {
		if r.Start >= r.End || r.Start < prev || r.End > v.RAMSize {
			return fmt.Errorf("vm info: range %d [%#x, %#x) is empty, unsorted, overlapping or beyond ram size %#x: %w",
				i, r.Start, r.End, v.RAMSize, fabric.ErrProtocol)
		}
		prev = r.End
	}
	var seen [maxSubhosts]bool
	for _, s := range v.Subhosts {
		switch {
		case seen[s.ID]:
			return fmt.Errorf("vm info: sub-host id %d twice: %w", s.ID, fabric.ErrProtocol)
		case len(s.Addr) > maxName || len(s.VM) > maxName || len(s.Key) > maxKey:
			return fmt.Errorf("vm info: sub-host %d: address, vm id or key too long: %w", s.ID, fabric.ErrProtocol)
		}
		seen[s.ID] = true
	}
	return nil
}

// AppendInfo appends the info frame payload of v after validating it.
func AppendInfo(b []byte, v VMInfo) ([]byte, error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	b = appendBytes(b, []byte(v.VM))
	b = binary.BigEndian.AppendUint64(b, v.RAMSize)
	b = binary.BigEndian.AppendUint64(b, v.CR3)
	b = binary.BigEndian.AppendUint64(b, v.CR4)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v.Layout)))
	for _, r := range v.Layout {
		b = binary.BigEndian.AppendUint64(b, r.Start)
		b = binary.BigEndian.AppendUint64(b, r.End)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v.Subhosts)))
	for _, s := range v.Subhosts {
		b = append(b, s.ID)
		b = appendBytes(b, []byte(s.Addr))
		b = appendBytes(b, []byte(s.VM))
		b = appendBytes(b, s.Key)
	}
	if v.QMP != "" {
		b = appendBytes(b, []byte(v.QMP))
	}
	return b, nil
}

func appendBytes(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// ParseInfo decodes and validates an info frame payload.
func ParseInfo(p []byte) (VMInfo, error) {
	d := decoder{p: p}
	var v VMInfo
	v.VM = string(d.bytes(maxName))
	v.RAMSize, v.CR3, v.CR4 = d.u64(), d.u64(), d.u64()
	n := d.u32()
	if n > maxRanges || uint64(n)*16 > uint64(len(d.p)) {
		return VMInfo{}, fmt.Errorf("vm info: %d ranges in %d bytes: %w", n, len(d.p), fabric.ErrProtocol)
	}
	if n > 0 {
		v.Layout = make([]fabric.PhysRange, n)
	}
	for i := range v.Layout {
		v.Layout[i] = fabric.PhysRange{Start: d.u64(), End: d.u64()}
	}
	ns := d.u16()
	if ns > maxSubhosts || uint64(ns)*7 > uint64(len(d.p)) {
		return VMInfo{}, fmt.Errorf("vm info: %d sub-hosts in %d bytes: %w", ns, len(d.p), fabric.ErrProtocol)
	}
	if ns > 0 {
		v.Subhosts = make([]Subhost, ns)
	}
	for i := range v.Subhosts {
		s := &v.Subhosts[i]
		s.ID = d.u8()
		s.Addr = string(d.bytes(maxName))
		s.VM = string(d.bytes(maxName))
		s.Key = append([]byte(nil), d.bytes(maxKey)...)
	}
	if d.err == nil && len(d.p) > 0 {
		if v.QMP = string(d.bytes(maxName)); d.err == nil && v.QMP == "" {
			d.err = fmt.Errorf("empty qmp path: %w", fabric.ErrProtocol)
		}
	}
	if d.err != nil {
		return VMInfo{}, fmt.Errorf("vm info: %w", d.err)
	}
	if len(d.p) != 0 {
		return VMInfo{}, fmt.Errorf("vm info: %d trailing bytes: %w", len(d.p), fabric.ErrProtocol)
	}
	if err := v.Validate(); err != nil {
		return VMInfo{}, err
	}
	return v, nil
}

// decoder reads big-endian fields; the first short read sets err and every
// later read returns zero.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.p) < n {
		d.err = fmt.Errorf("%d bytes left, need %d: %w", len(d.p), n, fabric.ErrProtocol)
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *decoder) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// bytes reads a length-prefixed field of at most limit bytes.
func (d *decoder) bytes(limit int) []byte {
	n := int(d.u16())
	if d.err == nil && n > limit {
		d.err = fmt.Errorf("field of %d bytes over %d: %w", n, limit, fabric.ErrProtocol)
	}
	if n == 0 {
		return nil
	}
	return d.take(n)
}
