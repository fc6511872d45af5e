package fabric

import (
	"errors"
	"fmt"
	"strings"
)

// Method is how Memory reads pages that live on a sub-host.
type Method int

const (
	// MethodProxy fetches remote pages straight from the sub-hosts; the VM
	// is untouched.
	MethodProxy Method = iota
	// MethodSelf asks the VM's runtime (the Exchanger) to page remote
	// frames in, then reads them locally. A frame the Exchanger fails is
	// read by proxy instead and counted in ExchangeFallbacks, so the reader
	// still gets the page (as an unresponsive in-guest agent would be
	// handled) and the failure stays visible.
	MethodSelf
	// MethodAdaptive is proxy paging with a main-host cache of fetched
	// pages keyed by (GFN, location word).
	MethodAdaptive
)

// ErrBadMethod reports an unknown method or one without what it needs.
var ErrBadMethod = errors.New("invalid read method")

var methodNames = [...]string{MethodProxy: "proxy", MethodSelf: "self", MethodAdaptive: "adaptive"}

// String is the method's name as ParseMethod accepts it.
func (m Method) String() string {
	if m < 0 || int(m) >= len(methodNames) {
		return fmt.Sprintf("method(%d)", int(m))
	}
	return methodNames[m]
}

func (m Method) check() (Method, error) {
	if m < 0 || int(m) >= len(methodNames) {
		return m, fmt.Errorf("method %d: %w", int(m), ErrBadMethod)
	}
	return m, nil
}

// ParseMethod reads "proxy", "self" or "adaptive" (any case).
func ParseMethod(s string) (Method, error) {
	for m, name := range methodNames {
		if strings.EqualFold(s, name) {
			return Method(m), nil
		}
	}
	return 0, fmt.Errorf("method %q: want proxy, self or adaptive: %w", s, ErrBadMethod)
}

// Set lets a Method be a command-line flag (pflag.Value).
func (m *Method) Set(s string) error {
	v, err := ParseMethod(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Type names the flag's value type.
func (m *Method) Type() string { return "method" }
