package agent

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Address is where an agent is reached: a unix socket (QEMU's chardev of
// the agent's virtio-serial port, on the host) or AF_VSOCK (CID, port).
type Address struct {
	Unix      string
	CID, Port uint32
}

// ParseAddress reads "unix:PATH" or "vsock:CID:PORT".
func ParseAddress(s string) (Address, error) {
	kind, rest, ok := strings.Cut(s, ":")
	switch {
	case ok && kind == "unix" && rest != "":
		return Address{Unix: rest}, nil
	case ok && kind == "vsock":
		c, p, ok := strings.Cut(rest, ":")
		cid, err1 := strconv.ParseUint(c, 0, 32)
		port, err2 := strconv.ParseUint(p, 0, 32)
		if ok && err1 == nil && err2 == nil {
			return Address{CID: uint32(cid), Port: uint32(port)}, nil
		}
	}
	return Address{}, fmt.Errorf("%q: want unix:PATH or vsock:CID:PORT: %w", s, ErrAddress)
}

func (a Address) String() string {
	if a.Unix != "" {
		return "unix:" + a.Unix
	}
	return fmt.Sprintf("vsock:%d:%d", a.CID, a.Port)
}

// DialConn opens a raw connection to a.
func (a Address) DialConn(ctx context.Context) (net.Conn, error) {
	if a.Unix != "" {
		var d net.Dialer
		return d.DialContext(ctx, "unix", a.Unix)
	}
	return dialVsock(ctx, a.CID, a.Port)
}

// Dial connects to the agent at addr ("unix:PATH" or "vsock:CID:PORT") and
// authenticates; the client redials a lost connection when it next asks.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = a.String()
	}
	if cfg.Redial == nil {
		cfg.Redial = a.DialConn
	}
	dctx, cancel := withDefault(ctx)
	defer cancel()
	c, err := a.DialConn(dctx)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", a, err)
	}
	return NewClient(dctx, c, cfg)
}
