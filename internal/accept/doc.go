// Package accept is what every server of the project shares of its
// lifecycle.
//
// Backoff is the accept-error policy: a failed Accept is never fatal while
// the listener is open (a daemon out of descriptors serves again once some
// are free), and retries are paced so a persistent error does not spin.
//
// Group runs the accept loop with that policy and keeps a server's
// listeners and live connections: one goroutine per connection, and a
// Close (or Stop, for a server that drains its connections itself) after
// which no new connection is served, every listener is closed and, once
// Wait returns, every connection's goroutine has ended. What a connection
// is (a plain net.Conn, a unix connection, a session with its own state),
// how it is served and what a server logs stay the server's.
package accept
