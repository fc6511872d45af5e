package kvmhost

import (
	"bytes"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

func TestStamp(t *testing.T) {
	p := make([]byte, fabric.PageSize)
	Stamp(p, 0x1234, 99)
	if !IsStamped(p) || !VerifyStamp(0x1234, p) || StampSeq(p) != 99 {
		t.Fatal("fresh stamp does not verify")
	}
	for i, b := range p {
		if b < 0x80 {
			t.Fatalf("byte %d = %#x has no high bit", i, b)
		}
	}
	if VerifyStamp(0x1235, p) {
		t.Fatal("stamp verifies for another gfn")
	}
	// A copy torn between seq 99 and seq 100 at any word boundary never verifies.
	q := make([]byte, fabric.PageSize)
	Stamp(q, 0x1234, 100)
	for cut := 8; cut < fabric.PageSize; cut += 8 {
		torn := append(append([]byte(nil), q[:cut]...), p[cut:]...)
		if VerifyStamp(0x1234, torn) && !bytes.Equal(torn, p) && !bytes.Equal(torn, q) {
			t.Fatalf("torn copy at %d verifies", cut)
		}
		torn = append(append([]byte(nil), p[:cut]...), q[cut:]...)
		if VerifyStamp(0x1234, torn) && !bytes.Equal(torn, p) && !bytes.Equal(torn, q) {
			t.Fatalf("torn copy (old head) at %d verifies", cut)
		}
	}
	if IsStamped(make([]byte, fabric.PageSize)) {
		t.Fatal("zero page looks stamped")
	}
}
