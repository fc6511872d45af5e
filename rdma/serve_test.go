package rdma

import (
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
)

func TestResponderForOff(t *testing.T) {
	r, err := ResponderFor("off", zerolog.Nop())
	if err != nil || r != nil {
		t.Fatalf("off: responder %v err %v, want TCP only (a nil interface)", r, err)
	}
}

// Without a usable device "auto" serves TCP only; a named device that does
// not exist is an error, never a silent fallback.
func TestResponderForNoDevice(t *testing.T) {
	if devs, _ := Discover(); len(devs) > 0 && Built {
		t.Skip("this host has RDMA devices: auto would serve one (see the integration tests)")
	}
	r, err := ResponderFor("auto", zerolog.Nop())
	if err != nil || r != nil {
		t.Fatalf("auto without a device: responder %v err %v, want TCP only", r, err)
	}
	if _, err := ResponderFor("nosuchdev0", zerolog.Nop()); err == nil {
		t.Fatal("a named device that does not exist was accepted")
	} else if !Built && !errors.Is(err, fabric.ErrNoRDMA) {
		t.Errorf("named device in a build without RDMA: %v, want ErrNoRDMA", err)
	}
}
