package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// session is one QMP connection: newline-delimited JSON, the greeting, the
// capabilities negotiation, then one command at a time, skipping events.
//
// go-qemu's qmp.SocketMonitor hands callers the bufio.Scanner's internal
// buffer, which its listener overwrites with the next line (an event such as
// STOP arrives right after "stop" returns): a data race that corrupts
// replies (digitalocean/go-qemu#226, open). Every line read here is a fresh
// slice, owned by the caller.
type session struct {
	mu     sync.Mutex
	conn   net.Conn
	r      *bufio.Reader
	nextID uint64
	broken bool
}

// qmpReply is any line QEMU sends after the greeting.
type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	ID    json.RawMessage `json:"id"`
}

// maxLine bounds one QMP line; "info registers -a" of many vCPUs is a few
// KiB, a dump's progress a few bytes.
const maxLine = 16 << 20

func openSession(ctx context.Context, path string) (*session, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	var greeting struct {
		QMP *json.RawMessage `json:"QMP"`
	}
	line, err := s.readLine(ctx)
	if err == nil {
		if json.Unmarshal(line, &greeting) != nil || greeting.QMP == nil {
			err = fmt.Errorf("greeting %.80q is not QMP: %w", line, ErrMonitor)
		}
	}
	if err == nil {
		_, err = s.execute(ctx, "qmp_capabilities", nil)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// execute sends one command and returns its "return" value. Commands are
// serialised; replies carrying another id are skipped. A command interrupted
// by ctx closes the session: a half-read line would desynchronise it.
func (s *session) execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := fmt.Sprintf("vmemtrans-%d", s.nextID)
	msg := map[string]any{"execute": command, "id": id}
	if args != nil {
		msg["arguments"] = args
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", command, err)
	}
	if err := s.withDeadline(ctx, func() error { _, err := s.conn.Write(append(b, '\n')); return err }); err != nil {
		return nil, err
	}
	for {
		line, err := s.readLine(ctx)
		if err != nil {
			return nil, err
		}
		var rep qmpReply
		if err := json.Unmarshal(line, &rep); err != nil {
			return nil, fmt.Errorf("reply %.80q: %w", line, ErrMonitor)
		}
		if rep.Event != "" {
			continue
		}
		if len(rep.ID) > 0 && string(rep.ID) != `"`+id+`"` {
			continue
		}
		if rep.Error != nil {
			return nil, fmt.Errorf("%s: %s: %w", rep.Error.Class, rep.Error.Desc, ErrMonitor)
		}
		if rep.Return == nil {
			return nil, fmt.Errorf("reply %.80q has no return: %w", line, ErrMonitor)
		}
		return rep.Return, nil
	}
}

// readLine returns the next line as a fresh slice.
func (s *session) readLine(ctx context.Context) ([]byte, error) {
	var line []byte
	err := s.withDeadline(ctx, func() error {
		for {
			chunk, err := s.r.ReadSlice('\n')
			line = append(line, chunk...)
			if err == bufio.ErrBufferFull && len(line) < maxLine {
				continue
			}
			if err == bufio.ErrBufferFull {
				return fmt.Errorf("line longer than %d bytes: %w", maxLine, ErrMonitor)
			}
			return err
		}
	})
	return line, err
}

// withDeadline runs one blocking I/O step under ctx: its deadline becomes the
// connection's, and cancellation interrupts the step at once.
func (s *session) withDeadline(ctx context.Context, io func() error) error {
	deadline, _ := ctx.Deadline()
	if err := s.conn.SetDeadline(deadline); err != nil {
		return err
	}
	if s.broken {
		return fmt.Errorf("session closed after an interrupted command: %w", ErrMonitor)
	}
	stop := context.AfterFunc(ctx, func() { s.conn.SetDeadline(time.Unix(1, 0)) })
	err := io()
	interrupted := !stop() || ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)
	if !interrupted {
		return err
	}
	// A line may have been cut in half: the stream cannot be trusted again.
	s.broken = true
	s.conn.Close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return context.DeadlineExceeded // the connection's deadline is ctx's
}

func (s *session) close() error { return s.conn.Close() }
