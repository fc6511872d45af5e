package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// ErrMonitor reports a QMP command QEMU refused or answered unexpectedly.
var ErrMonitor = errors.New("qemu monitor command failed")

// Monitor is a QMP connection to one QEMU process. Commands are serialised;
// a Monitor is safe for concurrent use.
type Monitor struct {
	mon *qmp.SocketMonitor
}

// Dial connects to the QMP unix socket at path (QEMU started with
// -qmp unix:PATH,server=on,wait=off) and performs the capabilities
// handshake. QMP serves one client at a time: Close when done.
func Dial(ctx context.Context, path string) (*Monitor, error) {
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	mon, err := qmp.NewSocketMonitor("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("qemu: dial qmp %s: %w", path, err)
	}
	m := &Monitor{mon: mon}
	if _, err := m.do(ctx, "handshake", mon.Connect); err != nil {
		mon.Disconnect()
		return nil, fmt.Errorf("qemu: qmp handshake on %s: %w", path, err)
	}
	return m, nil
}

// Close ends the QMP session.
func (m *Monitor) Close() error { return m.mon.Disconnect() }

// do runs f, giving up when ctx ends: go-qemu has no cancellation, so the
// connection is closed to unblock f and the Monitor is unusable afterwards.
func (m *Monitor) do(ctx context.Context, what string, f func() error) (struct{}, error) {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return struct{}{}, err
	case <-ctx.Done():
		m.mon.Disconnect()
		<-done
		return struct{}{}, fmt.Errorf("qemu: %s: %w", what, ctx.Err())
	}
}

// run executes one QMP command and decodes its "return" into ret (if not nil).
func (m *Monitor) run(ctx context.Context, ret any, execute string, args any) error {
	cmd, err := json.Marshal(qmp.Command{Execute: execute, Args: args})
	if err != nil {
		return fmt.Errorf("qemu: encode %s: %w", execute, err)
	}
	var raw []byte
	if _, err := m.do(ctx, execute, func() (err error) { raw, err = m.mon.Run(cmd); return err }); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("qemu: %s: %w: %w", execute, ErrMonitor, err)
	}
	if ret == nil {
		return nil
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return fmt.Errorf("qemu: %s: response %q: %w", execute, raw, ErrMonitor)
	}
	if err := json.Unmarshal(resp.Return, ret); err != nil {
		return fmt.Errorf("qemu: %s: return %q: %w", execute, resp.Return, ErrMonitor)
	}
	return nil
}

// HumanCommand runs a human-monitor (HMP) command line and returns its text.
func (m *Monitor) HumanCommand(ctx context.Context, line string) (string, error) {
	var out string
	err := m.run(ctx, &out, "human-monitor-command", map[string]string{"command-line": line})
	return out, err
}

// Registers returns every vCPU's registers.
func (m *Monitor) Registers(ctx context.Context) ([]Registers, error) {
	text, err := m.HumanCommand(ctx, "info registers -a")
	if err != nil {
		return nil, err
	}
	return ParseRegisters(text)
}

// CR3 returns the first vCPU's CR3, raw (PCID and PTI bits included; see
// paging.KernelCR3), and its CR4.
func (m *Monitor) CR3(ctx context.Context) (cr3, cr4 uint64, err error) {
	regs, err := m.Registers(ctx)
	if err != nil {
		return 0, 0, err
	}
	return regs[0].CR3, regs[0].CR4, nil
}

// Pause stops the vCPUs (QMP "stop").
func (m *Monitor) Pause(ctx context.Context) error { return m.run(ctx, nil, "stop", nil) }

// Resume restarts the vCPUs (QMP "cont").
func (m *Monitor) Resume(ctx context.Context) error { return m.run(ctx, nil, "cont", nil) }

// Status is the VM run state from query-status.
type Status struct {
	Running bool   `json:"running"`
	Status  string `json:"status"` // "running", "paused", ...
}

// Status returns the VM run state.
func (m *Monitor) Status(ctx context.Context) (Status, error) {
	var s Status
	err := m.run(ctx, &s, "query-status", nil)
	return s, err
}

// DumpGuestMemory writes guest memory and vCPU notes to path as an ELF core
// (paging=false), waiting until QEMU has finished. path is opened by QEMU,
// so it must be absolute and writable by the QEMU process.
func (m *Monitor) DumpGuestMemory(ctx context.Context, path string) error {
	return m.run(ctx, nil, "dump-guest-memory", map[string]any{"paging": false, "protocol": "file:" + path})
}
