package wire

import (
	"bufio"
	"io"
	"net"
)

// ReadVectors fills every buffer of bufs, in order, with the next bytes of
// the stream: first whatever br already holds, then straight from conn with
// vectored reads where the platform has them, so pages land in their final
// place without an intermediate copy. br must be a reader over conn.
func ReadVectors(br *bufio.Reader, conn net.Conn, bufs [][]byte) error {
	rest := make([][]byte, 0, len(bufs))
	for _, b := range bufs {
		if len(b) > 0 {
			rest = append(rest, b)
		}
	}
	for len(rest) > 0 && br.Buffered() > 0 {
		n, err := br.Read(rest[0][:min(len(rest[0]), br.Buffered())])
		if err != nil {
			return err
		}
		if rest[0] = rest[0][n:]; len(rest[0]) == 0 {
			rest = rest[1:]
		}
	}
	if len(rest) == 0 {
		return nil
	}
	if ok, err := readvFull(conn, rest); ok {
		return err
	}
	for _, b := range rest {
		if _, err := io.ReadFull(conn, b); err != nil {
			return err
		}
	}
	return nil
}
