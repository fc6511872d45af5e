package qemu

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// ErrRegisters reports "info registers" output the parser cannot use.
var ErrRegisters = errors.New("unparsable register dump")

// Registers is one vCPU's state as "info registers" prints it.
type Registers struct {
	CPU                int
	RIP, RSP, RFlags   uint64
	FSBase, GSBase     uint64
	CR0, CR2, CR3, CR4 uint64
	EFER               uint64
	CPL                int
	Halted             bool
}

var (
	cpuHeader = regexp.MustCompile(`(?m)^CPU#(\d+)`)
	hexField  = regexp.MustCompile(`\b(RIP|RSP|RFL|CR0|CR2|CR3|CR4|EFER)=([0-9a-fA-F]+)`)
	segBase   = regexp.MustCompile(`(?m)^(FS|GS) =[0-9a-fA-F]{4} ([0-9a-fA-F]+)`)
	intField  = regexp.MustCompile(`\b(CPL|HLT)=(\d+)`)
)

// ParseRegisters parses the output of "info registers" (one CPU, no header)
// or "info registers -a" (a "CPU#n" header before each). Every CPU must
// show CR0, CR3 and CR4.
func ParseRegisters(text string) ([]Registers, error) {
	type block struct {
		cpu  int
		text string
	}
	var blocks []block
	heads := cpuHeader.FindAllStringSubmatchIndex(text, -1)
	if len(heads) == 0 {
		blocks = []block{{0, text}}
	}
	for i, h := range heads {
		end := len(text)
		if i+1 < len(heads) {
			end = heads[i+1][0]
		}
		n, err := strconv.Atoi(text[h[2]:h[3]])
		if err != nil {
			return nil, fmt.Errorf("qemu: registers: cpu number %q: %w", text[h[2]:h[3]], ErrRegisters)
		}
		blocks = append(blocks, block{n, text[h[1]:end]})
	}
	out := make([]Registers, 0, len(blocks))
	for _, b := range blocks {
		r, err := parseBlock(b.text)
		if err != nil {
			return nil, fmt.Errorf("qemu: registers of cpu %d: %w", b.cpu, err)
		}
		r.CPU = b.cpu
		out = append(out, r)
	}
	return out, nil
}

func parseBlock(text string) (Registers, error) {
	var r Registers
	seen := map[string]bool{}
	for _, m := range hexField.FindAllStringSubmatch(text, -1) {
		if len(m[2]) > 16 {
			return r, fmt.Errorf("%s=%s is wider than 64 bits: %w", m[1], m[2], ErrRegisters)
		}
		v, _ := strconv.ParseUint(m[2], 16, 64) // the regex admits hex digits only
		seen[m[1]] = true
		switch m[1] {
		case "RIP":
			r.RIP = v
		case "RSP":
			r.RSP = v
		case "RFL":
			r.RFlags = v
		case "CR0":
			r.CR0 = v
		case "CR2":
			r.CR2 = v
		case "CR3":
			r.CR3 = v
		case "CR4":
			r.CR4 = v
		case "EFER":
			r.EFER = v
		}
	}
	for _, need := range []string{"CR0", "CR3", "CR4"} {
		if !seen[need] {
			return r, fmt.Errorf("no %s: %w", need, ErrRegisters)
		}
	}
	for _, m := range segBase.FindAllStringSubmatch(text, -1) {
		v, err := strconv.ParseUint(m[2], 16, 64)
		if err != nil {
			return r, fmt.Errorf("%s base %q: %w", m[1], m[2], ErrRegisters)
		}
		if m[1] == "FS" {
			r.FSBase = v
		} else {
			r.GSBase = v
		}
	}
	for _, m := range intField.FindAllStringSubmatch(text, -1) {
		v, err := strconv.Atoi(m[2])
		if err != nil {
			continue
		}
		if m[1] == "CPL" {
			r.CPL = v
		} else {
			r.Halted = v != 0
		}
	}
	return r, nil
}
