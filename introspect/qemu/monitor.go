package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrMonitor reports a QMP command QEMU refused or answered unexpectedly.
var ErrMonitor = errors.New("qemu monitor command failed")

// Monitor is a QMP connection to one QEMU process. Commands are serialised;
// a Monitor is safe for concurrent use.
type Monitor struct {
	s *session
}

// Dial connects to the QMP unix socket at path (QEMU started with
// -qmp unix:PATH,server=on,wait=off) and performs the capabilities
// handshake. QMP serves one client at a time: Close when done.
func Dial(ctx context.Context, path string) (*Monitor, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	s, err := openSession(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("qemu: qmp handshake on %s: %w", path, err)
	}
	return &Monitor{s: s}, nil
}

// Close ends the QMP session.
func (m *Monitor) Close() error { return m.s.close() }

// run executes one QMP command and decodes its "return" into ret (if not
// nil). A command cut short by ctx closes the Monitor.
func (m *Monitor) run(ctx context.Context, ret any, execute string, args any) error {
	raw, err := m.s.execute(ctx, execute, args)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("qemu: %s: %w", execute, ctx.Err())
		}
		if errors.Is(err, ErrMonitor) {
			return fmt.Errorf("qemu: %s: %w", execute, err)
		}
		return fmt.Errorf("qemu: %s: %w: %w", execute, ErrMonitor, err)
	}
	if ret == nil {
		return nil
	}
	if err := json.Unmarshal(raw, ret); err != nil {
		return fmt.Errorf("qemu: %s: return %.80q: %w", execute, raw, ErrMonitor)
	}
	return nil
}

// Execute runs any QMP command with args (nil for none) and returns its
// raw "return" value.
func (m *Monitor) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	var ret json.RawMessage
	err := m.run(ctx, &ret, command, args)
	return ret, err
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
// paging.KernelCR3Candidates), and its CR4.
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
