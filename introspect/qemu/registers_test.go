package qemu_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/qemu"
)

func sample(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("testdata/info-registers-2cpu.txt")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseRegistersAllCPUs(t *testing.T) {
	regs, err := qemu.ParseRegisters(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 2 {
		t.Fatalf("%d CPUs, want 2", len(regs))
	}
	c0, c1 := regs[0], regs[1]
	if c0.CPU != 0 || c0.CR3 != 0x1944000 || c0.CR0 != 0x80050033 || c0.CR4 != 0x6f0 || c0.CR2 != 0x7f2c3a1b8000 {
		t.Errorf("cpu0 control registers: %+v", c0)
	}
	if c0.RIP != 0xffffffff9b80ac0e || c0.RSP != 0xffffffff9c603e18 || c0.GSBase != 0xffff890d7ec00000 || c0.EFER != 0xd01 {
		t.Errorf("cpu0 general registers: %+v", c0)
	}
	if !c0.Halted || c0.CPL != 0 || c0.RFlags != 0x246 {
		t.Errorf("cpu0 state: %+v", c0)
	}
	if c1.CPU != 1 || c1.CR3 != 0x4a0d805 || c1.CPL != 3 || c1.Halted || c1.FSBase != 0x7f2c3a39e740 {
		t.Errorf("cpu1: %+v", c1)
	}
}

func TestParseRegistersSingleCPU(t *testing.T) {
	text := sample(t)
	one := text[strings.Index(text, "RAX="):strings.Index(text, "\nCPU#1")]
	regs, err := qemu.ParseRegisters(one)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 1 || regs[0].CPU != 0 || regs[0].CR3 != 0x1944000 {
		t.Fatalf("single-CPU output: %+v", regs)
	}
}

func TestParseRegistersRejects(t *testing.T) {
	cases := map[string]string{
		"empty":      "",
		"no cr3":     "CR0=80050033 CR2=0 CR4=000006f0\n",
		"error text": "unknown command: 'info registres'\n",
		"too wide":   "CR0=80050033 CR2=0 CR3=00000000000000001944000 CR4=6f0\n",
		"second cpu": sample(t) + "\nCPU#2\nRAX=0000000000000000\n",
	}
	for name, text := range cases {
		if _, err := qemu.ParseRegisters(text); !errors.Is(err, qemu.ErrRegisters) {
			t.Errorf("%s: err %v, want ErrRegisters", name, err)
		}
	}
}

func FuzzParseRegisters(f *testing.F) {
	f.Add(sample(f))
	f.Add("CR0=1 CR3=2 CR4=3")
	f.Add("CPU#99999999999999999999\nCR0=1")
	f.Fuzz(func(t *testing.T, text string) {
		regs, err := qemu.ParseRegisters(text)
		if err != nil {
			if !errors.Is(err, qemu.ErrRegisters) {
				t.Fatalf("error %v does not wrap ErrRegisters", err)
			}
			return
		}
		if len(regs) == 0 {
			t.Fatal("no error and no CPUs")
		}
	})
}
