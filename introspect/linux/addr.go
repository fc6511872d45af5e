package linux

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Addr is a kernel virtual address. It marshals to JSON as a "0x..." string
// and unmarshals from that or from a number.
type Addr uint64

func (a Addr) String() string { return fmt.Sprintf("%#x", uint64(a)) }

// MarshalJSON encodes the address as a hex string.
func (a Addr) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON accepts "0x..." strings and plain numbers.
func (a *Addr) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n uint64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("address %s: want hex string or number", b)
		}
		*a = Addr(n)
		return nil
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		return fmt.Errorf("address %q: %w", s, err)
	}
	*a = Addr(v)
	return nil
}

// kernelPointer tells whether p can be the address of a kernel object: in
// the kernel half (4- or 5-level paging) and aligned to align bytes.
func kernelPointer(p uint64, align uint64) bool {
	return p >= 0xff00000000000000 && p&(align-1) == 0
}
